"""colorfusion: automatic colorization of grayscale photographs with Keras 3.

The public API, imported lazily (the first use of a name imports Keras, not
`import colorfusion`):

    from colorfusion import train, Colorizer, colorize_folder, evaluate

    result = train("photos/", "runs/exp1", epochs=30, encoder="mobilenet", encoder_weights="imagenet")
    colorizer = Colorizer.from_path("runs/exp1")
    rgb = colorizer("old_photo.jpg")                  # uint8 RGB at the photo's own size
    colorize_folder(["scans/"], "colorized/", colorizer)
    colorize_dataset(["scans/"], "colorized/", address="auto")   # the same job on a Ray cluster's workers
    report = evaluate(colorizer, "held_out/", "report/")
    rgb = Colorizer.pretrained()("car.jpg", hints=[(320, 140, "#c0392b")])  # colour hints
    Colorizer.pretrained().colorize_video("film.mp4", "film_colour.mp4")   # steady from frame to frame
    export_model("pretrained", "colorfusion.onnx", format="onnx", size=(256, 352))  # to run without Keras

The pieces, for a training loop of your own: `ColorizationGenerator`,
`build_colorizer`, `RebalancedCrossEntropy` (with `ABBins`),
`ColorizationPreview`, `Embedder` / `EmbeddingCache`, `inference_model`.
docs/architecture.md maps every module and its job.
"""

import importlib
import os

# Environment defaults, set once before albumentations or TensorFlow can be
# imported: albumentations otherwise asks the network for a newer version at
# import, and TensorFlow logs its C++ start-up at INFO level.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.4.0"

# public name -> module that defines it
_API = {
    "train": "training",
    "TrainConfig": "config",
    "Colorizer": "inference.colorizer",
    "colorize_folder": "inference.batch",
    "colorize_dataset": "distributed",
    "load_model": "loading",
    "export_model": "export",
    "ExportedModel": "export",
    "evaluate": "evaluation",
    "evaluate_hints": "evaluation",
    "build_colorizer": "model",
    "inference_model": "model",
    "ColorizationGenerator": "generator",
    "ABBins": "bins",
    "RebalancedCrossEntropy": "losses",
    "Embedder": "embeddings",
    "EmbeddingCache": "embeddings",
    "ColorizationPreview": "callbacks",
}

__all__ = ["__version__", *_API]


def __getattr__(name):
    if name in _API:
        value = getattr(importlib.import_module(f"colorfusion.{_API[name]}"), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'colorfusion' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))
