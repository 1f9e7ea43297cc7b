"""The public API of `colorfusion/__init__.py`: the names, lazily imported."""

import subprocess
import sys
from pathlib import Path

import pytest

import colorfusion


def test_public_names_are_the_objects_of_their_modules():
    from colorfusion import (ABBins, ColorizationGenerator, ColorizationPreview, Colorizer, Embedder,
                             EmbeddingCache, RebalancedCrossEntropy, TrainConfig, build_colorizer, colorize_folder,
                             evaluate, inference_model, load_model, train)
    from colorfusion import bins, callbacks, colorize, embeddings, evaluation, generator, losses, model, training

    assert train is training.train and TrainConfig is training.TrainConfig
    assert Colorizer is colorize.Colorizer and colorize_folder is colorize.colorize_folder
    assert load_model is colorize.load_model and evaluate is evaluation.evaluate
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
    """Each module of the package -> the package modules it imports at its top level."""
    import ast

    package = Path(colorfusion.__file__).parent
    graph = {}
    for path in package.glob("*.py"):
        imported = set()
        for node in ast.parse(path.read_text()).body:  # top level only: imports inside functions are deliberate
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("colorfusion"):
                names = [node.module.split(".")[1]] if "." in node.module else [a.name for a in node.names]
                imported.update(names)
            elif isinstance(node, ast.Import):
                imported.update(a.name.split(".")[1] for a in node.names if a.name.startswith("colorfusion."))
        graph[path.stem] = imported & {p.stem for p in package.glob("*.py")}
    return graph


def test_the_package_has_at_most_20_modules_and_no_import_cycle():
    graph = package_imports()
    assert len(graph) <= 20, sorted(graph)
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
    assert "color" in graph["generator"]  # the parser sees the imports it should
