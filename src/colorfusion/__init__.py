"""colorfusion: automatic colorization of grayscale photographs with Keras 3.

Modules, one job each, in the order data flows through them:

- `color`: sRGB <-> CIE Lab and the model-facing scalings
- `io`: read any image file as uint8 RGB; atomic writes
- `datasets`, `samples`, `sources`: find photos, splits, the Kaggle dataset,
  the photos shipped with scikit-image / matplotlib, where notebooks get data
- `augment`: geometric augmentation (colour never changes)
- `embeddings`, `embedding_cache`: the frozen ImageNet backbone and its on-disk cache
- `generator`: the Keras data generator (L in, ab / 128 out)
- `bins`, `layers`, `losses`, `model`: the network, its two heads and what it learns
- `metrics`, `callbacks`, `figures`: measuring and watching training
- `hardware`, `run_setup`, `train`: one call from photos to a run folder
- `model_files`, `fullres`, `colorize`, `evaluate`: loading models, full-resolution
  inference, evaluation
- `plots`, `demo`: notebook figures; `make demo`
- `cli`: the `colorfusion` command

Example:
    from colorfusion.train import train
    from colorfusion.colorize import Colorizer

    result = train("photos/", "runs/exp1", head="classification", epochs=20)
    rgb = Colorizer.from_path("runs/exp1")("old_photo.jpg")
"""

__version__ = "0.1.0"
