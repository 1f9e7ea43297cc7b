"""Write the notebooks of this folder from the cells below: `python notebooks/make_notebooks.py`.

The .ipynb files are what users open (locally, on Kaggle); this script is
where they are edited, so that a change is a readable diff. Run it after an
edit and commit both: tests/test_notebooks.py checks that they match.
Notebooks are written without outputs and with stable cell ids.
"""

from pathlib import Path
from textwrap import dedent

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

INSTALL = '''\
# On Kaggle colorfusion is not installed yet: install it from a wheel or a source tree attached as a
# dataset, else from PACKAGE_SOURCE. Where colorfusion is importable, this cell does nothing.
import importlib.util, shutil, subprocess, sys
from pathlib import Path

if importlib.util.find_spec("colorfusion") is None:
    wheels = sorted(Path("/kaggle/input").glob("**/colorfusion-*.whl"))
    trees = [p.parents[2] for p in Path("/kaggle/input").glob("**/src/colorfusion/__init__.py")]
    source = wheels[-1] if wheels else PACKAGE_SOURCE
    if trees and not wheels:  # pip builds a source tree in place, and /kaggle/input is read-only
        source = shutil.copytree(trees[0], "/tmp/colorfusion-src", dirs_exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", str(source)], check=True)
    importlib.invalidate_caches()'''

ENV = '''\
import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no version check over the network
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")'''

PACKAGE = 'PACKAGE_SOURCE = "git+https://github.com/<you>/colorfusion.git"  # pip source where colorfusion is not installed'

DATA_DIR = ('DATA_DIR = None  # colour photos (any folder, or the Kaggle layout); None: /kaggle/input, '
            'a kagglehub download, or photos shipped with scikit-image')

SOURCES = """\
`DATA_DIR`; the Kaggle dataset `aayush9753/image-colorization-dataset` under `/kaggle/input` (add it to the
notebook with *Add Input*); a download with `kagglehub` when Kaggle credentials exist; otherwise the
few colour photos that ship inside scikit-image and matplotlib (enough to run every cell, far too few
to learn colours)."""
DATA_SOURCES = "The photos come from the first of these that exists, and the next cell prints which: " + SOURCES


def md(text):
    return new_markdown_cell(dedent(text).strip())


def code(text, tags=()):
    cell = new_code_cell(dedent(text).strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def parameters(*lines):
    return code("\n".join(["# Parameters (papermill can override them: `papermill -p EPOCHS 5 ...`)", *lines,
                           PACKAGE]), tags=["parameters"])


def setup(imports):
    return [md("## Setup"), code(INSTALL), code(ENV + "\n" + dedent(imports).strip())]


def training_notebook(head, title, intro, extra_params, model_cells):
    run_dir = f"runs/{head}"
    return [
        md(f"# {title}\n\n{dedent(intro).strip()}"),
        parameters(
            DATA_DIR,
            f'HEAD = "{head}"',
            "IMAGE_SIZE = 256  # training crops are IMAGE_SIZE x IMAGE_SIZE",
            "EPOCHS = 20",
            "BATCH_SIZE = 16",
            "LEARNING_RATE = 1e-3",
            "WIDTH = 1.0  # multiplier of every filter count (0.25-0.5 on a CPU)",
            'BACKBONE = "inception_resnet_v2"  # the semantic branch (keras.applications)',
            'WEIGHTS = "imagenet"  # backbone weights: "imagenet" (downloads), None (random) or a local .h5 file',
            'EMBEDDING = "cache"  # "cache" (embed each photo once), "exact" (every batch) or None (no semantic branch)',
            *extra_params,
            "MAX_PHOTOS = None  # at most this many training photos (None: all)",
            "VAL_FRACTION = 0.1",
            "SEED = 0",
            f'RUN_DIR = "{run_dir}"  # the run folder; running the notebook again resumes it',
        ),
        *setup("""
            from pathlib import Path

            from colorfusion import datasets, plots, sources
            from colorfusion.bins import ABBins
            from colorfusion.colorize import Colorizer
            from colorfusion.model import build_colorizer
            from colorfusion.train import train

            run = Path(RUN_DIR)
        """),
        md("## Data\n\n" + DATA_SOURCES),
        code("source = sources.data_source(DATA_DIR)"),
        code("""
            photos = sources.subset(source.train, MAX_PHOTOS, SEED)
            train_files, val_files = datasets.split_files(photos, val_fraction=VAL_FRACTION, seed=SEED)
            print(f"{len(train_files)} training photos, {len(val_files)} validation photos")
        """),
        md("## Model"),
        *model_cells,
        md("""
            ## Train

            Every epoch ends with a preview of fixed validation photos (original | the grayscale input |
            the colorization, with its AuC and PSNR), shown below and saved in `RUN_DIR/previews/`.
            Checkpoints are written after every epoch: re-running this cell continues the run.
        """),
        code("""
            result = train(
                train_files=train_files, val_files=val_files, out=run, resume=(run / "state.json").exists(),
                head=HEAD, image_size=IMAGE_SIZE, epochs=EPOCHS, batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE,
                width=WIDTH, backbone=BACKBONE, weights=weights, embedding=EMBEDDING, seed=SEED, **extra,
                show=False, callbacks=[plots.ShowPreviews(run / "previews")],
            )
        """),
        md("Training curves: losses, the previews' AuC and PSNR, and the learning rate, per epoch."),
        code("""
            plots.show_image(result.paths["curves"])
            print({key: round(values[-1], 4) for key, values in result.history.items()})
        """),
        md("## Colorize\n\nThe best checkpoint on held-out photos it never saw. "
           "`04_colorize_photos.ipynb` does more (full resolution, B&W inputs, the decoding temperature)."),
        code("""
            colorizer = Colorizer.from_path(run)
            plots.show(plots.compare_figure(source.test[:4], {HEAD: colorizer}), run / "figures" / "held_out.png")
        """),
    ]


EXPLORE = [
    md("""
        # 01 Explore the data

        What the colorization network learns from, as figures (each also saved under `OUT_DIR/figures/`):
        the photos; their CIE Lab channels (the network sees the lightness L and predicts the colour ab);
        the training augmentations (geometry only: a colour augmentation would teach wrong colours);
        the distribution of ab colours, and the quantized ab bins with the rebalancing weights that the
        classification head (notebook 03) trains with.
    """),
    parameters(
        DATA_DIR,
        "IMAGE_SIZE = 256  # training crop size",
        "NUM_BINS = 200  # quantized ab colours of the classification head",
        "MAX_PHOTOS = 300  # photos used for the ab distribution and the bins",
        "SEED = 0",
        'OUT_DIR = "runs/explore"',
    ),
    *setup("""
        from pathlib import Path

        from colorfusion import io, plots, sources
        from colorfusion.bins import ABBins

        figures = Path(OUT_DIR) / "figures"
    """),
    md("## Data\n\n" + DATA_SOURCES),
    code("source = sources.data_source(DATA_DIR)"),
    code("""
        photos = sources.subset(source.train, MAX_PHOTOS, SEED)
        plots.show(plots.photo_grid(photos[:8], [p.name for p in photos[:8]]), figures / "photos.png")
    """),
    md("""
        ### Lab channels

        CIE Lab separates lightness **L** (0 to 100) from colour **a** (green to red) and **b** (blue to
        yellow). A B&W photo *is* an L channel: the network gets L and predicts a and b. The last panel is
        the target alone, the photo's ab at a constant lightness.
    """),
    code("""
        example = io.read_rgb(photos[0], max_side=1024)
        plots.show(plots.lab_channels_figure(example), figures / "lab_channels.png")
    """),
    md("""
        ### Augmentations

        Training crops: a random resized crop and a horizontal flip. Colour never changes, since colour
        is the target. Validation uses the centred square.
    """),
    code('plots.show(plots.augmentation_grid(example, IMAGE_SIZE, seed=SEED), figures / "augmentations.png")'),
    md("""
        ### The ab distribution and the bins

        Most pixels of natural photos are nearly gray (ab near 0), so a model trained to predict the
        average colour learns sepia. The classification head predicts a distribution over `NUM_BINS`
        quantized ab colours instead, and weighs each pixel's loss by how rare its colour is (Zhang et
        al. 2016): rare, saturated colours get weights well above 1, the common grays below 1.
    """),
    code("""
        bins = ABBins.fit_files(photos, max_side=IMAGE_SIZE, num_bins=NUM_BINS)
        hist = plots.ab_histogram(photos, max_side=IMAGE_SIZE)
        plots.show(plots.ab_bins_figure(hist, bins), figures / "ab_bins.png")
        print(f"{bins}: weights from {bins.weights.min():.2f} (commonest colour) to {bins.weights.max():.1f} (rarest)")
    """),
]

REGRESSION = training_notebook(
    "regression", "02 Train the regression head",
    """
    Trains the colorizer with the **regression** head: the network predicts a and b directly (tanh x 128)
    and is trained with the mean squared error. It learns fast and safely, and tends to desaturated,
    sepia-like colours: the average of all plausible colours is grayish. Previews of validation photos
    are shown after every epoch, the training curves at the end. The run folder `RUN_DIR` keeps the
    model (`best.keras`, `last.keras`), `history.csv`, `previews/` and `curves.png`; running the
    notebook again resumes the run. On Kaggle, switch the accelerator to a GPU.
    """,
    [],
    [
        md("""
            An encoder turns L into features at 1/8 size; a frozen ImageNet classifier (`BACKBONE`) looks at
            the same gray photo and its output is fused in at every position (the semantic branch); a decoder
            upsamples to ab. Without ImageNet weights (offline) the backbone is random and adds nothing.
        """),
        code("""
            weights = sources.choose_weights(WEIGHTS, BACKBONE)  # None, with a message, when ImageNet weights cannot be had
            extra = {}
            build_colorizer(IMAGE_SIZE, head=HEAD, embedding_dim=1000 if EMBEDDING else None, width=WIDTH).summary()
        """),
    ],
)

CLASSIFICATION = training_notebook(
    "classification", "03 Train the classification head",
    """
    Trains the colorizer with the **classification** head: for every pixel (at 1/4 size) the network
    predicts a distribution over `NUM_BINS` quantized ab colours, trained with a soft-encoded
    cross-entropy in which rare colours weigh more (Zhang et al. 2016). At inference the distribution is
    decoded by its annealed mean (temperature 0.38): more vivid colours than the regression head.
    Previews of validation photos are shown after every epoch, the training curves at the end. The run
    folder `RUN_DIR` keeps the model, its `bins.json`, `history.csv`, `previews/` and `curves.png`;
    running the notebook again resumes the run. On Kaggle, switch the accelerator to a GPU.
    """,
    ["NUM_BINS = 200  # quantized ab colours"],
    [
        md("""
            The bins are fitted on the training photos: the `NUM_BINS` most frequent in-gamut ab colours on a
            grid of 10, their prior, and the rebalancing weights of the loss.
        """),
        code("""
            weights = sources.choose_weights(WEIGHTS, BACKBONE)  # None, with a message, when ImageNet weights cannot be had
            bins_file = run / "bins.json"  # a resumed run keeps its bins
            bins = ABBins.load(bins_file) if bins_file.exists() else ABBins.fit_files(train_files, max_side=IMAGE_SIZE, num_bins=NUM_BINS)
            plots.show(plots.ab_bins_figure(plots.ab_histogram(train_files[:300], IMAGE_SIZE), bins), run / "figures" / "ab_bins.png")
        """),
        code("""
            extra = {"num_bins": bins.num_bins, "bins": bins}
            build_colorizer(IMAGE_SIZE, head=HEAD, embedding_dim=1000 if EMBEDDING else None, width=WIDTH, bins=bins).summary()
        """),
    ],
)

COLORIZE = [
    md("""
        # 04 Colorize photos

        Colorizes a folder of B&W photos with a trained model (a run folder of notebook 02 or 03, or a
        `.keras` file), at their full resolution: the model predicts the colour at its own size, the colour
        is upsampled and joined with the photo's full-size lightness. Shows before / after figures, and
        the effect of the annealed-mean temperature of a classification model. Outputs and figures go to
        `OUT_DIR`.
    """),
    parameters(
        'MODEL = "runs/classification"  # a run folder (its best.keras) or a .keras file',
        "BW_DIR = None  # a folder of B&W photos; None: the dataset's test_black, or B&W copies of held-out photos",
        DATA_DIR,
        "MAX_PHOTOS = 6",
        "TEMPERATURES = [1.0, 0.6, 0.38, 0.2, 0.05]  # annealed mean: 1 is the mean, towards 0 the mode",
        'WEIGHTS = None  # backbone weights for the semantic branch; None: as the run recorded ("none": random)',
        'OUT_DIR = "runs/colorized"',
    ),
    *setup("""
        from pathlib import Path

        from colorfusion import datasets, io, plots, sources
        from colorfusion.colorize import Colorizer, colorize_folder
        from colorfusion.model import model_info

        out = Path(OUT_DIR)
    """),
    md("## Data\n\nB&W photos from `BW_DIR`; otherwise the held-out photos of the first of these that exists: "
       + SOURCES),
    code("""
        if BW_DIR:
            inputs = [(path, None) for path in datasets.find_images(BW_DIR)[:MAX_PHOTOS]]
        else:
            inputs = sources.bw_inputs(sources.data_source(DATA_DIR), out / "bw", count=MAX_PHOTOS)
        print(f"{len(inputs)} B&W photos to colorize, e.g. {inputs[0][0]}")
    """),
    md("## Model"),
    code("""
        colorizer = Colorizer.from_path(MODEL, weights=WEIGHTS)
        info = model_info(colorizer.model)
        print(f"{MODEL}: {info['head']} head, {info['image_size']} px, semantic branch: {bool(info['embedding_dim'])}")
    """),
    md("## Colorize\n\nThe whole folder, at full resolution, into `OUT_DIR/colorized/` (unreadable files are reported and skipped)."),
    code("""
        report = colorize_folder([bw for bw, _ in inputs], out / "colorized", colorizer, overwrite=True)
        rows, names = sources.colorized_rows(inputs, out / "colorized")
        plots.show(plots.before_after_figure(rows, names), out / "figures" / "before_after.png")
    """),
    md("""
        ## The annealed-mean temperature

        A classification model predicts a distribution over ab colours for each pixel. Its mean (T = 1) is
        safe but dull; its mode (T -> 0) is vivid but patchy. The annealed mean sharpens the distribution
        with a temperature T before taking the mean; Zhang et al. use T = 0.38. A regression model has no
        distribution: all columns are the same.
    """),
    code("""
        if info["head"] == "regression":
            print("A regression model: the temperature changes nothing.")
        images = [io.read_rgb(bw, max_side=512) for bw, _ in inputs[:3]]
        figure = plots.temperature_figure(colorizer.model, images, TEMPERATURES, embedder=colorizer.embedder)
        plots.show(figure, out / "figures" / "temperature.png")
    """),
]

EVALUATE = [
    md("""
        # 05 Evaluate

        Measures trained models against two baselines on held-out colour photos: `grayscale` (no colour
        at all: the floor to beat) and `ground_truth` (the photo itself: the ceiling of each metric).
        Metrics per photo at `SIZE` x `SIZE`: AuC of the per-pixel ab error (raw, and rebalanced towards
        rare colours, Zhang et al. 2016), PSNR, SSIM and colorfulness. Tables and figures go to `OUT_DIR`.
    """),
    parameters(
        'MODELS = {"regression": "runs/regression", "classification": "runs/classification"}  # name: run folder or .keras',
        "TEST_DIR = None  # colour photos to evaluate on; None: the held-out photos of the data source",
        DATA_DIR,
        "MAX_PHOTOS = 100",
        "SIZE = 256  # photos are compared at SIZE x SIZE (centre square)",
        'WEIGHTS = None  # backbone weights for the semantic branch; None: as each run recorded ("none": random)',
        "SEED = 0",
        'OUT_DIR = "runs/evaluation"',
    ),
    *setup("""
        from pathlib import Path

        from colorfusion import datasets, plots, sources
        from colorfusion.bins import ABBins
        from colorfusion.colorize import Colorizer
        from colorfusion.evaluate import evaluate, format_table

        out = Path(OUT_DIR)
    """),
    md("## Data\n\nColour photos from `TEST_DIR`; otherwise the held-out photos of the first of these that exists: "
       + SOURCES),
    code("""
        files = datasets.find_images(TEST_DIR) if TEST_DIR else sources.data_source(DATA_DIR).test
        files = sources.subset(files, MAX_PHOTOS, SEED)
        print(f"{len(files)} held-out photos")
    """),
    md("## Models"),
    code("""
        colorizers = {name: Colorizer.from_path(path, weights=WEIGHTS) for name, path in MODELS.items() if Path(path).exists()}
        print("evaluating:", ", ".join(colorizers), "| not found:", ", ".join(n for n in MODELS if n not in colorizers) or "none")
    """),
    md("""
        ## Evaluate

        The rebalanced AuC weighs each pixel by the rarity of its colour, with the same bins (fitted on
        these photos) for every model.
    """),
    code("""
        bins = ABBins.fit_files(files, max_side=SIZE, progress=False)
        reports = {name: evaluate(c, files, out / name, size=SIZE, bins=bins, progress=False) for name, c in colorizers.items()}
        baselines = next(iter(reports.values())).summary["methods"]
        methods = {**{name: r.summary["methods"]["model"] for name, r in reports.items()},
                   "grayscale": baselines["grayscale"], "ground_truth": baselines["ground_truth"]}
        print(format_table({"methods": methods}))
    """),
    code('plots.show(plots.metrics_figure(methods), out / "figures" / "metrics.png")'),
    md("The same photos through every model:"),
    code('plots.show(plots.compare_figure(files[:4], colorizers), out / "figures" / "comparison.png")'),
    md("Each model's worst and best photos by AuC (original | grayscale | colorized):"),
    code("""
        for name, report in reports.items():
            print(name)
            plots.show_image(report.paths["grid"])
    """),
]

NOTEBOOKS = {
    "01_explore_data.ipynb": EXPLORE,
    "02_train_regression.ipynb": REGRESSION,
    "03_train_classification.ipynb": CLASSIFICATION,
    "04_colorize_photos.ipynb": COLORIZE,
    "05_evaluate.ipynb": EVALUATE,
}


def build(cells):
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"  # stable ids: regenerating gives the same file
    return nb


def write_all(folder=HERE) -> list[Path]:
    paths = []
    for name, cells in NOTEBOOKS.items():
        path = Path(folder) / name
        nbformat.write(build(cells), path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for path in write_all():
        print(path)
