"""Test environment: no network, no display, nothing written outside tmp."""

import os
import tempfile

# Set before keras / albumentations / matplotlib are imported by any test.
_home = tempfile.mkdtemp(prefix="colorfusion-tests-")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("KERAS_HOME", os.path.join(_home, "keras"))
os.environ.setdefault("MPLCONFIGDIR", os.path.join(_home, "mpl"))
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# Embeddings and sample photos go to the temporary folder, never ~/.cache.
os.environ.setdefault("COLORFUSION_CACHE", os.path.join(_home, "colorfusion-cache"))
