"""Test environment: no network, no display, nothing written outside tmp."""

import os
import tempfile

import pytest

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


def pytest_report_header(config):
    import colorfusion

    return f"colorfusion {colorfusion.__version__} from {os.path.dirname(colorfusion.__file__)}"


def pytest_configure(config):
    # `make test-kaggle` tests the installed wheel: importing src/ instead would test the wrong thing.
    if os.environ.get("COLORFUSION_TESTS_IMPORT_INSTALLED"):
        import colorfusion

        source = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
        if os.path.abspath(colorfusion.__file__).startswith(source + os.sep):
            raise pytest.UsageError(f"colorfusion is imported from the source tree ({colorfusion.__file__}), "
                                    f"not from the installed wheel")


@pytest.fixture
def no_kaggle(tmp_path, monkeypatch):
    """No Kaggle credentials anywhere, no Kaggle mount, Keras cache in tmp."""
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "no-kaggle-input"
