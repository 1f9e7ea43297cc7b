"""`make demo`: colorize photos with the model that ships in the package, show before / after.

`run_demo()` (or `python -m colorfusion.demo`) takes the photos of
`datasets.data_source` (without downloading: the photos that ship with
scikit-image and matplotlib unless a folder is given; the shipped model never
trained on them), turns them into B&W, colorizes them at full resolution
with `Colorizer.pretrained()` and writes `before_after.png`. Seconds on a
CPU, no network.

With `train=True` (`--train`) it first trains on most of the photos and
colorizes the few it held out: starting from the shipped model
(`init="pretrained"`, a short fine-tune, the default) or from a fresh
decoder (`init=None`, `--init none`).

Example:

```python
run = run_demo(out="demo_out")      # or: python -m colorfusion.demo --out demo_out [--data DIR] [--train]
run.grid                            # demo_out/before_after.png
```
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from colorfusion.errors import run_reporting_errors
from colorfusion.runs import RunFolder
from colorfusion.startup import import_backend_quietly


@dataclass
class DemoResult:
    run_dir: Path | None  # None: no training, the shipped model
    grid: Path
    colorized: list
    train_files: list
    heldout: list
    weights: object
    encoder: str
    seconds: float
    failed: list  # (photo, reason) of the photos that could not be colorized

    @property
    def ok(self) -> bool:
        """Every chosen photo colorized: the command's exit code (`errors.exit_code`) reads it."""
        return not self.failed


def say(line: str) -> None:
    """Print now: the demo's lines must come out in order with TensorFlow's unbuffered stderr."""
    print(line, flush=True)


def plan_epochs(n_train: int, batch_size: int, images: int = 1440, min_epochs: int = 3) -> tuple[int, int]:
    """(repeat, epochs): repeat a few photos so an epoch is 3 batches or more; `images` seen in all."""
    repeat = max(1, math.ceil(3 * batch_size / n_train))
    return repeat, max(min_epochs, round(images / (n_train * repeat)))


def run_demo(data=None, out="demo_out", *, train=False, init="pretrained", image_size=None, width=0.5,
             batch_size=16, epochs=None, max_photos=240, weights="auto", encoder="efficientnet_lite0", count=8, seed=0,
             log=say) -> DemoResult:
    """Colorize B&W versions of photos with the shipped model (or one trained here); write a before / after grid.

    Args:
        data: a folder of colour photos; None uses `data_source()` without
            downloading (the package-shipped photos off Kaggle).
        out: the demo folder: `bw/`, `colorized/`, `before_after.png`, and
            `run/` when training; a previous demo in `out` is replaced.
        train: train first (on all but a few held-out photos), then colorize
            the held-out ones with the trained model.
        init: with `train`: "pretrained" fine-tunes the shipped model (its
            architecture and bins); None trains a fresh decoder on
            `encoder` with `weights`.
        image_size: training size; None: 128 with a pretrained encoder, 64
            from scratch.
        epochs: None plans about 1440 training images in all (`plan_epochs`).
        max_photos: at most this many training photos (a big folder stays a
            few minutes).
        weights: with `train` and no `init`: encoder weights: "auto" (ImageNet
            when it can be had, else none), "imagenet", None or a local `.h5`
            file. Without real weights the encoder is trained from scratch.
        encoder: with `train` and no `init`: the pretrained encoder.
        count: photos colorized (held out, when training).
    """
    # Imported here, not at the top: `main()` first starts the backend without its start-up noise.
    from colorfusion import figures
    from colorfusion.datasets import bw_inputs, data_source
    from colorfusion.inference.batch import colorize_folder
    from colorfusion.inference.colorizer import Colorizer
    from colorfusion.model import model_info

    start = time.time()
    out = Path(out)
    # Without training there is no split to announce: every photo is colorized.
    source = data_source(data, download=False, sample_dir=out / "photos", test_fraction=0.1, min_test=3,
                         seed=seed, log=log if train else (lambda line: None))
    for stale in ("colorized", "bw"):
        shutil.rmtree(out / stale, ignore_errors=True)  # the demo's own outputs of a previous run
    run_dir, chosen = None, None
    if train:
        heldout = bw_inputs(source, out / "bw", count=count, log=log)
        run_dir, chosen = _train_demo(source, out, init, image_size, width, batch_size, epochs, max_photos, weights,
                                      encoder, seed, log)
        colorizer = Colorizer.from_path(run_dir)
        train_files = source.train
    else:
        # No training: every photo is new to the shipped model.
        everything = replace(source, test=list(source.test) + list(source.train))
        heldout = bw_inputs(everything, out / "bw", count=count, log=log)
        colorizer = Colorizer.pretrained()
        train_files = []
        log(f"Colorizing B&W versions of {source.where}, with the model that ships in colorfusion, which never "
            f"trained on them; short side {colorizer.size} px")
    report = colorize_folder([bw for bw, _ in heldout], out / "colorized", colorizer, overwrite=True,
                             progress=False, log=log)
    rows = [(bw, report.outputs[bw], original) for bw, original in heldout if bw in report.outputs]
    grid = figures.save_figure(figures.before_after_figure(rows, [Path(bw).stem for bw, *_ in rows]),
                               out / "before_after.png")
    result = DemoResult(run_dir, grid, report.written, train_files, [rgb for _, rgb in heldout], chosen,
                        model_info(colorizer.model).encoder, time.time() - start, report.failed)
    _summary(result, log)
    return result


def _train_demo(source, out, init, image_size, width, batch_size, epochs, max_photos, weights, encoder, seed, log):
    """Train the demo's run on the photos not held out; (run folder, encoder weights)."""
    from colorfusion.backbones import choose_weights
    from colorfusion.datasets import subset
    from colorfusion.training import train

    train_files = subset(source.train, max_photos, seed)
    if init:
        chosen, settings = None, dict(init=init, freeze_epochs=10_000)
        image_size = image_size or 128
        log(f"Fine-tuning the shipped model ({init}) at {image_size} px")
    else:
        chosen = choose_weights("imagenet" if weights == "auto" else weights, encoder, log=log)
        if chosen is None:
            encoder = "scratch"  # a random pretrained-shaped encoder adds time, not semantics
            log("No pretrained weights: the encoder learns from scratch, and colours stay close to sepia")
        else:
            log(f"Encoder: {encoder} with {Path(chosen).name if chosen != 'imagenet' else 'ImageNet'} weights")
        image_size = image_size or (64 if encoder == "scratch" else 128)
        settings = dict(head="classification", width=width, encoder=encoder, encoder_weights=chosen,
                        embedding="encoder")
    repeat, planned = plan_epochs(len(train_files), batch_size)
    epochs = epochs or planned
    run_dir = out / "run"
    if RunFolder(run_dir).config_file.is_file():
        log(f"Replacing the previous demo run in {run_dir}")
        shutil.rmtree(run_dir)
    log(f"Training on {len(train_files)} photos for {epochs} epochs of {len(train_files) * repeat} random crops; "
        f"validating on {len(source.test[:16])} held-out photos, never trained on")
    settings.setdefault("freeze_epochs", max(1, epochs // 2))
    train(train_files=train_files * repeat, val_files=source.test[:16], out=run_dir, image_size=image_size,
          batch_size=batch_size, epochs=epochs, learning_rate=1e-3 if not init else 1e-4, lr_patience=8,
          preview_every=5, seed=seed, hardware="auto", show=False, verbose=2, **settings)
    return run_dir, chosen


def _summary(result: DemoResult, log) -> None:
    minutes, seconds = divmod(round(result.seconds), 60)
    log(f"\ncolorfusion demo done in {minutes} min {seconds:02d} s")
    log(f"  before / after grid: {result.grid}")
    trained = "the model never trained on" if result.run_dir else "the shipped model never trained on"
    log(f"  colorized photos:    {result.grid.parent / 'colorized'}  ({len(result.colorized)} photos {trained})")
    model = ""
    if result.run_dir is not None:
        run = RunFolder(result.run_dir)
        files = ", ".join(path.name + ("/" if path == run.previews else "")
                          for path in (run.best, run.previews, run.curves, run.history_file))
        log(f"  run folder:          {result.run_dir}  ({files})")
        model = f" --model {result.run_dir}"
    log(f"Colorize your own B&W photos:  {_console_script()} colorize PHOTOS/ -o OUT/{model}")


def _console_script() -> str:
    """How to call `colorfusion` here: the venv's script (relative when below the current folder), or the name."""
    script = Path(sys.executable).parent / "colorfusion"
    if not script.is_file():
        return "colorfusion"
    relative = os.path.relpath(script)
    return str(script) if relative.startswith("..") else relative


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m colorfusion.demo", description=run_demo.__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder of colour photos (default: the package-shipped photos)")
    parser.add_argument("--out", default="demo_out", help="demo folder (default demo_out)")
    parser.add_argument("--count", type=int, default=8, help="photos to colorize (default 8)")
    parser.add_argument("--train", action="store_true",
                        help="train first (a few minutes on a CPU), then colorize held-out photos with that model")
    parser.add_argument("--init", default="pretrained",
                        help="with --train: pretrained (fine-tune the shipped model, the default) or none "
                             "(a fresh decoder on --encoder with --weights)")
    parser.add_argument("--epochs", type=int, help="with --train: epochs (default: planned for a few minutes)")
    parser.add_argument("--image-size", type=int, help="with --train: training size in pixels (default 128)")
    parser.add_argument("--width", type=float, default=0.5, help="with --init none: decoder width (default 0.5)")
    parser.add_argument("--max-photos", type=int, default=240, help="with --train: at most this many photos")
    parser.add_argument("--weights", default="auto",
                        help="with --init none: encoder weights: auto (ImageNet when it can be had, else none), "
                             "imagenet, none or a local .h5 file")
    parser.add_argument("--encoder", default="efficientnet_lite0", help="with --init none: the pretrained encoder")
    args = parser.parse_args(argv)
    import_backend_quietly(training=args.train)
    return run_reporting_errors(
        "demo", run_demo, args.data or None, args.out, train=args.train,
        init=None if args.init.lower() == "none" else args.init, image_size=args.image_size, width=args.width,
        epochs=args.epochs, max_photos=args.max_photos, weights=args.weights, encoder=args.encoder,
        count=args.count, expected=(FileNotFoundError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
