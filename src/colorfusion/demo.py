"""`make demo`: train a small model, colorize photos it never trained on, show before / after.

`run_demo()` (or `python -m colorfusion.demo`) takes the photos of
`datasets.data_source` (without downloading: the package-shipped photos
unless a folder is given), holds a few out, trains a small classification
model on the rest for a couple of minutes on a CPU, colorizes the held-out
photos from their B&W versions at full resolution, and writes
`before_after.png` beside the run folder.

Example:

```python
run = run_demo(out="demo_out")      # or: python -m colorfusion.demo --out demo_out [--data DIR]
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
from dataclasses import dataclass
from pathlib import Path

from colorfusion.cli import import_backend_quietly


@dataclass
class DemoResult:
    run_dir: Path
    grid: Path
    colorized: list
    train_files: list
    heldout: list
    weights: object
    encoder: str
    seconds: float


def say(line: str) -> None:
    """Print now: the demo's lines must come out in order with TensorFlow's unbuffered stderr."""
    print(line, flush=True)


def plan_epochs(n_train: int, batch_size: int, images: int = 1440, min_epochs: int = 3) -> tuple[int, int]:
    """(repeat, epochs): repeat a few photos so an epoch is 3 batches or more; `images` seen in all."""
    repeat = max(1, math.ceil(3 * batch_size / n_train))
    return repeat, max(min_epochs, round(images / (n_train * repeat)))


def run_demo(data=None, out="demo_out", *, image_size=None, width=0.5, batch_size=16, epochs=None,
             max_photos=240, weights="auto", encoder="mobilenet", seed=0, log=say) -> DemoResult:
    """Train a small model, colorize held-out photos, write a before / after grid.

    The recipe is the one `benchmarks/bench_quality.py` recommends for a CPU
    (classification head, a pretrained encoder frozen while the decoder
    learns, then fine-tuned), scaled down to a few minutes.

    Args:
        data: a folder of colour photos; None uses `data_source()` without
            downloading (the package-shipped photos off Kaggle).
        out: the demo folder: `run/` (the run folder), `bw/`, `colorized/`,
            `before_after.png`; a previous demo run in `out/run` is replaced.
        image_size: training size; None: 128 with a pretrained encoder, 64
            from scratch.
        epochs: None plans about 1440 training images in all (`plan_epochs`).
        max_photos: at most this many training photos (a big folder stays a
            few minutes).
        weights: encoder weights: "auto" (ImageNet when it can be downloaded
            or is cached, else none), "imagenet", None or a local `.h5` file.
            Without real weights the encoder is trained from scratch: a
            random pretrained-shaped encoder adds time, not semantics.
        encoder: the pretrained encoder (`backbones.ENCODER_BACKBONES`).
    """
    # Imported here, not at the top: `main()` first starts the backend without its start-up noise.
    from colorfusion import figures
    from colorfusion.backbones import choose_weights
    from colorfusion.colorize import Colorizer, colorize_folder
    from colorfusion.datasets import bw_inputs, data_source, subset
    from colorfusion.training import train

    start = time.time()
    out = Path(out)
    source = data_source(data, download=False, sample_dir=out / "photos", test_fraction=0.1, min_test=3,
                         seed=seed, log=log)
    train_files = subset(source.train, max_photos, seed)
    heldout = bw_inputs(source, out / "bw", count=6, log=log)
    chosen = choose_weights("imagenet" if weights == "auto" else weights, encoder, log=log)
    if chosen is None:
        encoder = "scratch"
        log("No pretrained weights: the encoder learns from scratch, and colours stay close to sepia")
    else:
        log(f"Encoder: {encoder} with {Path(chosen).name if chosen != 'imagenet' else 'ImageNet'} weights")
    image_size = image_size or (64 if encoder == "scratch" else 128)
    repeat, planned = plan_epochs(len(train_files), batch_size)
    epochs = epochs or planned
    run_dir = out / "run"
    if (run_dir / "config.json").is_file():
        log(f"Replacing the previous demo run in {run_dir}")
        shutil.rmtree(run_dir)
    log(f"Training a classification model ({image_size} px) on {len(train_files)} photos for {epochs} epochs "
        f"of {len(train_files) * repeat} random crops; validating on {len(source.test[:16])} held-out photos, "
        f"never trained on")
    train(train_files=train_files * repeat, val_files=source.test[:16], out=run_dir, head="classification",
          image_size=image_size, width=width, batch_size=batch_size, epochs=epochs, learning_rate=1e-3,
          encoder=encoder, encoder_weights=chosen, freeze_epochs=max(1, epochs // 2), embedding="encoder",
          lr_patience=8, preview_every=5, seed=seed, hardware="auto", show=False, verbose=2)
    colorizer = Colorizer.from_path(run_dir)
    report = colorize_folder([bw for bw, _ in heldout], out / "colorized", colorizer, overwrite=True,
                             progress=False, log=log)
    rows = [(bw, report.outputs[bw], original) for bw, original in heldout if bw in report.outputs]
    grid = figures.save_figure(figures.before_after_figure(rows, [Path(bw).stem for bw, *_ in rows]),
                               out / "before_after.png")
    result = DemoResult(run_dir, grid, report.written, train_files, [rgb for _, rgb in heldout], chosen,
                        encoder, time.time() - start)
    _summary(result, log)
    return result


def _summary(result: DemoResult, log) -> None:
    minutes, seconds = divmod(round(result.seconds), 60)
    log(f"\ncolorfusion demo done in {minutes} min {seconds:02d} s")
    log(f"  before / after grid: {result.grid}")
    log(f"  colorized photos:    {result.grid.parent / 'colorized'}  "
        f"({len(result.colorized)} photos the model never trained on)")
    log(f"  run folder:          {result.run_dir}  (best.keras, previews/, curves.png, history.csv)")
    log(f"Colorize your own B&W photos:  {_console_script()} colorize PHOTOS/ -o OUT/ --model {result.run_dir}")


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
    parser.add_argument("--epochs", type=int, help="epochs (default: planned for a few minutes on a CPU)")
    parser.add_argument("--image-size", type=int,
                        help="training size in pixels (default 128 with a pretrained encoder, 64 from scratch)")
    parser.add_argument("--width", type=float, default=0.5, help="decoder filter-count multiplier (default 0.5)")
    parser.add_argument("--max-photos", type=int, default=240, help="at most this many training photos (default 240)")
    parser.add_argument("--weights", default="auto",
                        help="encoder weights: auto (ImageNet when it can be had, else none; the default), "
                             "imagenet, none or a local .h5 file such as mobilenet_2_5_224_tf_no_top.h5")
    parser.add_argument("--encoder", default="mobilenet", help="pretrained encoder (default mobilenet)")
    args = parser.parse_args(argv)
    import_backend_quietly(training=True)
    from colorfusion.colorize import ModelLoadError
    from colorfusion.training import TrainingError

    try:
        run_demo(args.data or None, args.out, image_size=args.image_size, width=args.width, epochs=args.epochs,
                 max_photos=args.max_photos, weights=args.weights, encoder=args.encoder)
    except (FileNotFoundError, ValueError, TrainingError, ModelLoadError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
