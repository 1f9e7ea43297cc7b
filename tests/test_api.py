"""The public API of `colorfusion/__init__.py`: the names, lazily imported."""

import subprocess
import sys

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
