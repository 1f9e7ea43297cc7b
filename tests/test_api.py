"""The public API of `colorfusion/__init__.py`: the names, lazily imported."""

import subprocess
import sys
from pathlib import Path

import pytest

import colorfusion


def test_public_names_are_the_objects_of_their_modules():
    from colorfusion import (
        ABBins,
        ColorizationGenerator,
        ColorizationPreview,
        Colorizer,
        Embedder,
        EmbeddingCache,
        RebalancedCrossEntropy,
        TrainConfig,
        bins,
        build_colorizer,
        callbacks,
        colorize_folder,
        embeddings,
        evaluate,
        evaluation,
        generator,
        inference_model,
        load_model,
        loading,
        losses,
        model,
        train,
        training,
    )
    from colorfusion.inference import batch, colorizer

    assert train is training.train and TrainConfig is training.TrainConfig
    assert Colorizer is colorizer.Colorizer and colorize_folder is batch.colorize_folder
    assert load_model is loading.load_model and evaluate is evaluation.evaluate
    assert build_colorizer is model.build_colorizer and inference_model is model.inference_model
    assert ColorizationGenerator is generator.ColorizationGenerator and ABBins is bins.ABBins
    assert RebalancedCrossEntropy is losses.RebalancedCrossEntropy
    assert Embedder is embeddings.Embedder and EmbeddingCache is embeddings.EmbeddingCache
    assert ColorizationPreview is callbacks.ColorizationPreview
    assert callable(train) and callable(evaluate)  # functions, not the modules that define them
    assert set(colorfusion.__all__) >= {"train", "Colorizer", "colorize_folder", "evaluate", "build_colorizer"}


def test_importing_the_package_imports_no_backend_and_sets_the_environment_defaults():
    code = ("import os, sys; os.environ.pop('NO_ALBUMENTATIONS_UPDATE', None); import colorfusion; "
            "print('keras' in sys.modules, os.environ['NO_ALBUMENTATIONS_UPDATE'], colorfusion.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "1", colorfusion.__version__]


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'colourise'"):
        colorfusion.colourise  # noqa: B018


def package_imports() -> dict[str, set[str]]:
    """Each module of the package ("model", "inference.colorizer", "hints" for hints/__init__.py) -> the
    package modules it imports at its top level (imports inside functions are deliberate: a light start)."""
    import ast

    package = Path(colorfusion.__file__).parent

    def name_of(path: Path) -> str:
        parts = path.relative_to(package).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {name_of(path) for path in package.rglob("*.py")}
    graph = {}
    for path in package.rglob("*.py"):
        imported = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("colorfusion"):
                base = node.module.removeprefix("colorfusion").lstrip(".")
                for alias in node.names:  # `from colorfusion.x import y`: y may be a module of x
                    candidate = f"{base}.{alias.name}" if base else alias.name
                    imported.add(candidate if candidate in modules else base)
            elif isinstance(node, ast.Import):
                imported.update(a.name.removeprefix("colorfusion.") for a in node.names
                                if a.name.startswith("colorfusion."))
        graph[name_of(path)] = (imported & modules) - {name_of(path)}
    return graph


def test_the_package_has_no_import_cycle_and_its_layers_point_one_way():
    graph = package_imports()
    state = {}

    def visit(module, trail):
        if state.get(module) == "open":
            raise AssertionError("import cycle: " + " -> ".join(trail + [module]))
        if state.get(module) != "done":
            state[module] = "open"
            for other in graph[module]:
                visit(other, trail + [module])
            state[module] = "done"

    for module in graph:
        visit(module, [])
    assert not [m for m, imported in graph.items() if "cli" in imported], "nothing imports cli"
    for module, imported in graph.items():
        if module.startswith(("inference", "studio")):
            assert "training" not in imported and "callbacks" not in imported, f"{module} imports training"
    assert "color" in graph["generator"]  # the parser sees the imports it should
