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


# === Shared fixtures: photo folders, tiny models, the command line's subcommands ===

TINY_MODEL = dict(image_size=32, width=0.125, embedding_dim=None)  # untrained, weights=None: the tests' colorizer
PHOTO_COUNT = 8  # photos in a module's `photos` folder unless the module sets PHOTO_COUNT


@pytest.fixture(scope="module")
def photos(request, tmp_path_factory):
    """A folder of tiny generated colour photos (`photos.write_photos`), made once per test module.

    As many as the module's `PHOTO_COUNT` (8 when it sets none). Shared by the
    module's tests: a test that adds to the folder takes `photo_tree` instead.
    """
    from photos import write_photos

    folder = tmp_path_factory.mktemp("photos")
    write_photos(folder, count=getattr(request.module, "PHOTO_COUNT", PHOTO_COUNT))
    return folder


@pytest.fixture
def photo_tree(tmp_path):
    """A fresh folder `photos/` of this test's own, with three photos in `photos/sub/`: to add to, or write beside."""
    from photos import write_photos

    write_photos(tmp_path / "photos" / "sub", count=3)
    return tmp_path / "photos"


@pytest.fixture(scope="session")
def tiny_model():
    """`tiny_model(head="regression", hints=False, seed=None, **overrides)`: a new untrained colorizer.

    `TINY_MODEL` (32 px, width 0.125, no semantic branch) unless `overrides`
    say otherwise; `seed` makes its weights repeatable. Each call builds a new
    model (a fraction of a second), which the test may change freely.
    """

    def build(head="regression", hints=False, seed=None, **overrides):
        import keras

        from colorfusion import model as model_lib

        if seed is not None:
            keras.utils.set_random_seed(seed)
        return model_lib.build_colorizer(head=head, hints=hints, **{**TINY_MODEL, **overrides})

    return build


@pytest.fixture(scope="session")
def tiny_model_file(tiny_model, tmp_path_factory):
    """`tiny_model_file(head="regression", hints=False)`: that tiny colorizer (seed 0) as a .keras file.

    Saved once a session for each head and hints: tests read it, never write it.
    """
    saved = {}

    def path(head="regression", hints=False):
        if (head, hints) not in saved:
            file = tmp_path_factory.mktemp("tiny_model") / f"tiny_{head}{'_hints' if hints else ''}.keras"
            tiny_model(head, hints, seed=0).save(file)
            saved[head, hints] = file
        return saved[head, hints]

    return path


@pytest.fixture(scope="session")
def subparser():
    """`subparser(name)`: the argparse parser of the `colorfusion` subcommand `name`."""
    import argparse

    from colorfusion import cli

    def find(name) -> argparse.ArgumentParser:
        commands = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
        return commands.choices[name]

    return find
