"""The notebooks: conventions, Kaggle metadata, and every notebook executed with papermill.

Each notebook runs with tiny parameters (32 px photos in the Kaggle layout,
1 epoch, `WEIGHTS=None`) in a temporary folder; any cell error fails the
test, and each test checks the figures its notebook promises (saved as
files and shown inline). Notebooks 04 and 05 use the runs of 02 and 03.
The notebooks are plain `.ipynb` files, committed without outputs.
"""

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest
from photos import write_photos

from colorfusion import color, io

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["01_explore_data", "02_train_regression", "03_train_classification", "04_colorize_photos", "05_evaluate",
         "06_build_your_own", "07_colour_hints", "08_video"]
TINY_TRAINING = dict(IMAGE_SIZE=32, EPOCHS=1, BATCH_SIZE=4, WIDTH=0.125, WEIGHTS=None)


def load(name):
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


# === Conventions (fast) ===


@pytest.mark.parametrize("name", NAMES)
def test_notebook_has_a_title_cell_a_parameters_cell_and_setup_data_sections(name):
    nb = load(name)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is nb.cells[1]
    names = re.findall(r"^([A-Z_]+) = ", tagged[0].source, flags=re.M)
    assert names and "PACKAGE_SOURCE" in names
    headings = [line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()
                if line.startswith("## ")]
    assert headings[:2] == ["## Setup", "## Data"]


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_has_no_outputs_and_reads_well(name):
    nb = load(name)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    kinds = [c.cell_type for c in nb.cells]
    assert all(not (a == b == "markdown") for a, b in zip(kinds, kinds[1:])), "two markdown cells in a row"
    for cell in nb.cells:
        assert all(len(line) <= 120 for line in cell.source.splitlines()), cell.source
    imports = [line for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines()
               if line.startswith(("import ", "from "))]
    assert len(imports) == len(set(imports)), "a name is imported twice"
    assert "print(environment_line())" in nb.cells[4].source  # the setup says what it runs on


@pytest.mark.parametrize("name", NAMES)
def test_notebook_code_cells_stay_thin(name):
    for cell in load(name).cells:
        if cell.cell_type == "code" and "parameters" not in cell.metadata.get("tags", []):
            statements = [line for line in cell.source.splitlines()
                          if line.strip() and not line.lstrip().startswith(("#", "import ", "from "))]
            assert len(statements) <= 10, cell.source
            assert not re.search(r"^\s*(def|class) ", cell.source, flags=re.M), "logic belongs in src/colorfusion"


@pytest.mark.parametrize("name", ["02_train_regression", "03_train_classification"])
def test_kaggle_metadata_publishes_the_training_notebook_with_gpu_internet_and_dataset(name):
    folder = NOTEBOOKS / "kaggle" / name
    meta = json.loads((folder / "kernel-metadata.json").read_text())
    # `kaggle kernels push -p folder` reads code_file relative to the folder.
    assert (folder / meta["code_file"]).resolve() == (NOTEBOOKS / f"{name}.ipynb").resolve()
    assert meta["kernel_type"] == "notebook" and meta["language"] == "python"
    assert meta["enable_gpu"] is True and meta["enable_internet"] is True
    # Kaggle's "GPU T4 x2" (the multi-GPU path is written for it); enable_gpu alone gets the retired P100.
    assert meta["machine_shape"] == "NvidiaTeslaT4"
    assert "aayush9753/image-colorization-dataset" in meta["dataset_sources"]
    # Kaggle derives the slug from the title: they must agree.
    assert meta["id"].split("/")[1] == re.sub(r"[^a-z0-9]+", "-", meta["title"].lower()).strip("-")


def run_install_cell(kaggle_input, tmp_path, monkeypatch, installed=False):
    """Execute the notebooks' install cell against a fake /kaggle/input; return the pip commands it ran."""
    cell = next(c.source for c in load("02_train_regression").cells if "pip\", \"install" in c.source)
    cell = cell.replace('"/kaggle/input"', repr(str(kaggle_input))).replace(
        '"/tmp/colorfusion-src"', repr(str(tmp_path / "copy")))
    commands = []
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if installed else None)
    monkeypatch.setattr("subprocess.run", lambda command, check: commands.append(command))
    exec(cell, {"PACKAGE_SOURCE": "git+https://example.invalid/colorfusion.git"})
    return [command[-1] for command in commands]


def test_install_cell_does_nothing_where_colorfusion_is_installed(tmp_path, monkeypatch):
    assert run_install_cell(tmp_path, tmp_path, monkeypatch, installed=True) == []


def test_install_cell_prefers_an_attached_wheel_then_a_source_tree_then_package_source(tmp_path, monkeypatch):
    kaggle_input = tmp_path / "input"
    (kaggle_input / "image-colorization-dataset" / "data").mkdir(parents=True)
    assert run_install_cell(kaggle_input, tmp_path, monkeypatch) == ["git+https://example.invalid/colorfusion.git"]
    package = kaggle_input / "colorfusion-src" / "src" / "colorfusion"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    # A source tree is copied out of the read-only input before pip builds it.
    assert run_install_cell(kaggle_input, tmp_path, monkeypatch) == [str(tmp_path / "copy")]
    assert (tmp_path / "copy" / "src" / "colorfusion" / "__init__.py").is_file()
    wheel = kaggle_input / "colorfusion-wheel" / "colorfusion-0.1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"")
    assert run_install_cell(kaggle_input, tmp_path, monkeypatch) == [str(wheel)]


# === Execution (slow) ===


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder in the Kaggle dataset layout, tiny photos, and an environment kept in tmp."""
    root = tmp_path_factory.mktemp("notebooks")
    data = root / "dataset" / "data"
    write_photos(data / "train_color", count=10, seed=1, sizes=(40, 64))
    test_color = write_photos(data / "test_color", count=3, seed=2, sizes=(40, 64))
    for photo in test_color:  # the dataset's own B&W versions
        io.write_image(data / "test_black" / photo.name, color.gray_version(io.read_rgb(photo)))
    with pytest.MonkeyPatch.context() as env:
        for name, folder in (("COLORFUSION_CACHE", "cache"), ("XDG_CACHE_HOME", "xdg"), ("KERAS_HOME", "keras"),
                             ("MPLCONFIGDIR", "mpl")):
            env.setenv(name, str(root / folder))
        env.setenv("MPLBACKEND", "Agg")
        yield root


def execute(name, workspace, **parameters):
    import papermill

    out = workspace / "executed" / f"{name}.ipynb"
    out.parent.mkdir(exist_ok=True)
    parameters = {"DATA_DIR": str(workspace / "dataset"), **parameters}
    # "python3" resolves to the interpreter running the tests (jupyter_client
    # replaces a bare `python` in the kernelspec by sys.executable).
    papermill.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(out), parameters=parameters,
                               kernel_name="python3", cwd=str(workspace), progress_bar=False)
    return nbformat.read(out, as_version=4)


def images_shown(nb) -> int:
    return sum("image/png" in output.get("data", {}) for c in nb.cells for output in c.get("outputs", []))


def text_output(nb) -> str:
    return "".join(output.get("text", "") for c in nb.cells for output in c.get("outputs", []))


def assert_pngs(folder, names):
    for name in names:
        path = Path(folder) / name
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path


@pytest.fixture(scope="module")
def regression_run(workspace):
    run = workspace / "runs" / "regression"
    nb = execute("02_train_regression", workspace, RUN_DIR=str(run), ENCODER="scratch", EMBEDDING=None,
                 **TINY_TRAINING)
    return nb, run


@pytest.fixture(scope="module")
def classification_run(workspace):
    run = workspace / "runs" / "classification"
    # The notebook's default: fine-tune the model that ships in the package (INIT = "pretrained").
    nb = execute("03_train_classification", workspace, RUN_DIR=str(run), **TINY_TRAINING)
    return nb, run


@pytest.mark.slow
def test_explore_notebook_draws_photos_lab_channels_augmentations_and_bins(workspace):
    out = workspace / "explore"
    nb = execute("01_explore_data", workspace, IMAGE_SIZE=32, NUM_BINS=40, MAX_PHOTOS=6, OUT_DIR=str(out))
    assert_pngs(out / "figures", ["photos.png", "lab_channels.png", "augmentations.png", "ab_bins.png"])
    assert images_shown(nb) >= 4
    assert "Data: your folder" in text_output(nb)  # the data source is named


@pytest.mark.slow
def test_regression_notebook_trains_with_previews_inline_and_curves(regression_run):
    nb, run = regression_run
    for name in ("best.keras", "last.keras", "history.csv", "config.json"):
        assert (run / name).is_file(), name
    assert_pngs(run, ["previews/epoch_001.png", "curves.png", "figures/held_out.png"])
    assert json.loads((run / "config.json").read_text())["head"] == "regression"
    assert images_shown(nb) >= 3  # the epoch preview, the curves, the held-out photos


@pytest.mark.slow
def test_classification_notebook_trains_with_bins_previews_and_curves(classification_run):
    nb, run = classification_run
    assert (run / "bins.json").is_file() and (run / "best.keras").is_file()
    assert_pngs(run, ["figures/ab_bins.png", "previews/epoch_001.png", "curves.png", "figures/held_out.png"])
    from colorfusion.presets import read_pretrained_config

    config = json.loads((run / "config.json").read_text())
    shipped = read_pretrained_config()["architecture"]
    assert config["init"] == "pretrained" and config["head"] == "classification"
    assert (config["encoder"], config["width"], config["num_bins"]) == (shipped["encoder"], shipped["width"],
                                                                        shipped["num_bins"])
    assert images_shown(nb) >= 4


@pytest.mark.slow
def test_colorize_notebook_colorizes_bw_photos_and_sweeps_temperature(workspace, classification_run):
    out = workspace / "colorized"
    nb = execute("04_colorize_photos", workspace, MODEL=str(classification_run[1]), MAX_PHOTOS=3,
                 TEMPERATURES=[1.0, 0.38], OUT_DIR=str(out))
    # The dataset's own test_black photos are the inputs.
    assert sorted(p.name for p in (out / "colorized").iterdir()) == [f"photo_{i:02d}.png" for i in range(3)]
    assert_pngs(out / "figures", ["before_after.png", "temperature.png"])
    assert images_shown(nb) >= 2


@pytest.mark.slow
def test_evaluate_notebook_compares_both_models_with_baselines(workspace, regression_run, classification_run):
    out = workspace / "evaluation"
    models = {"regression": str(regression_run[1]), "classification": str(classification_run[1])}
    nb = execute("05_evaluate", workspace, MODELS=models, SIZE=32, OUT_DIR=str(out))
    for name in [*models, "pretrained"]:  # the shipped model is evaluated beside the runs
        summary = json.loads((out / name / "summary.json").read_text())
        assert summary["n_images"] == 3
    assert_pngs(out / "figures", ["metrics.png", "comparison.png"])
    table = text_output(nb)
    assert all(method in table for method in ("regression", "classification", "grayscale", "ground_truth"))
    assert images_shown(nb) >= 4  # metrics, comparison, two worst / best grids


@pytest.mark.slow
def test_build_your_own_notebook_trains_a_changed_model_with_previews(workspace):
    out = workspace / "own"
    nb = execute("06_build_your_own", workspace, IMAGE_SIZE=32, EPOCHS=2, BATCH_SIZE=4, WEIGHTS=None, NUM_BINS=40,
                 OUT_DIR=str(out))
    assert_pngs(out, ["previews/epoch_001.png", "previews/epoch_002.png", "curves.png", "figures/held_out.png"])
    import keras

    from colorfusion.model import model_info

    model = keras.saving.load_model(out / "model.keras", compile=False)
    assert "my_head_conv" in [layer.name for layer in model.layers]  # the change made in the notebook
    assert model_info(model)["head"] == "classification"
    assert images_shown(nb) >= 4  # two previews, the curves, the held-out photos


@pytest.mark.slow
def test_hints_notebook_shows_automatic_hinted_and_original_and_measures_the_curve(workspace):
    out = workspace / "hints"
    # The default model: the shipped one, which takes hints.
    nb = execute("07_colour_hints", workspace, CURVE_PHOTOS=3, COUNTS=[0, 2], SIZE=64, OUT_DIR=str(out))
    assert_pngs(out, ["hinted.png", "figures/hints.png", "figures/hint_curve.png", "confidence.png",
                      "figures/confidence.png", "with_reference.png", "figures/reference.png"])
    assert images_shown(nb) >= 4
    text = text_output(nb)
    assert "takes colour hints: True" in text and "2 points: rebalanced AuC" in text
    assert "click here first: [(" in text  # the unsure places, at least one


@pytest.mark.slow
def test_video_notebook_colorizes_a_clip_both_ways_shows_frames_and_plots_the_steadiness(workspace):
    pytest.importorskip("av")
    out = workspace / "video"
    # A 64 x 48 clip of 6 frames, made from the tiny photos; the shipped model at short side 64.
    nb = execute("08_video", workspace, WIDTH=64, HEIGHT=48, FRAMES=6, SHOW_FRAMES=[0, 5], INFERENCE_SIZE=64,
                 OUT_DIR=str(out))
    assert all((out / name).is_file() for name in ("clip.mp4", "colorized_none.mp4", "colorized_flow.mp4"))
    assert_pngs(out / "figures", ["frames.png", "steadiness.png"])
    assert images_shown(nb) >= 2
    text = text_output(nb)
    assert "none: CDC" in text and "flow: CDC" in text and "30000/1001" in text
