"""Old-photo damage of a lightness map: what a scan of an old print carries, and the clean photo never had.

The photos people colorize are scans of old prints and films: grainy,
faded (lifted blacks, dimmed whites, low contrast), soft, scratched, dusty
and often saved as JPEG. A model that never saw a scratch paints it (a red
line, a blue blotch, a yellow halo). Training shows it the damage on its
input, L, while the target colour stays the clean photo's, so it learns to
colour through the damage instead of colouring the damage; the benchmark
(`benchmarks/bench_old_photos.py`) scores models on photos damaged the same
way for every model.

The operations, in the order a print ages and is scanned:

| name      | what                                                         | how                              |
|-----------|--------------------------------------------------------------|----------------------------------|
| grain     | film grain: noise, a little coarser than a pixel             | albumentations `GaussNoise`      |
| blur      | a soft lens or print                                         | albumentations `GaussianBlur`    |
| fading    | blacks lifted, whites dimmed, a gamma: low contrast          | a tone curve                     |
| scratches | thin bright or dark lines, straight or curved                | anti-aliased polylines, blended  |
| dust      | specks and small blobs, bright or dark                       | anti-aliased ellipses, blended   |
| jpeg      | block artefacts of a scan saved small                        | albumentations `ImageCompression`|

`Damage` holds the probability of each (and of any damage at all);
`TRAINING` is what training uses (`TrainConfig.damage` is the share of
examples damaged), `OLD_PRINT` what the benchmark uses. Sizes (line width,
speck radius, blur) scale with the photo's short side, 256 px being the
unit. Everything is drawn from one seed: the same seed gives the same
damage, whatever ran before and in whichever thread.

Example:

```python
l_old = damage_lightness(l, seed=7, damage=OLD_PRINT)   # L (H, W) in [0, 100] -> damaged L, float32
```
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import albumentations as A
import cv2
import numpy as np

OPERATIONS = ("grain", "blur", "fading", "scratches", "dust", "jpeg")  # the order they are applied in
UNIT_SIDE = 256  # sizes below are in pixels of a photo whose short side is this


@dataclass(frozen=True)
class Damage:
    """How likely each damage is; `probability` is the chance a photo is damaged at all.

    A damaged photo gets each operation with its own probability (at least
    one: when none is drawn, one is chosen at random).
    """

    probability: float = 1.0
    grain: float = 0.6
    blur: float = 0.4
    fading: float = 0.6
    scratches: float = 0.4
    dust: float = 0.5
    jpeg: float = 0.5

    def __post_init__(self):
        for name in ("probability", *OPERATIONS):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1]. Received: {name}={value!r}")

    def with_probability(self, probability: float) -> Damage:
        return replace(self, probability=float(probability))


TRAINING = Damage()  # `TrainConfig.damage` sets its `probability`
OLD_PRINT = Damage(probability=1.0, grain=1.0, blur=0.7, fading=1.0, scratches=0.8, dust=0.9, jpeg=1.0)


def damage_lightness(lightness: np.ndarray, seed, damage: Damage = OLD_PRINT) -> np.ndarray:
    """`lightness` (H, W) in [0, 100] as an old print's scan would show it; float32, a new array.

    Args:
        seed: an int or a sequence of ints (e.g. `[run_seed, photo, 3]`);
            the same seed gives the same damage.
        damage: the probabilities (`Damage`).

    Returns:
        The damaged L. An undamaged draw returns an exact copy.
    """
    lightness = np.asarray(lightness, np.float32)
    if lightness.ndim != 2:
        raise ValueError(f"lightness must be (H, W). Received: shape={lightness.shape}")
    rng = np.random.default_rng(seed)
    if rng.random() >= damage.probability:
        return lightness.copy()
    chosen = [name for name in OPERATIONS if rng.random() < getattr(damage, name)]
    if not chosen:
        chosen = [OPERATIONS[rng.integers(len(OPERATIONS))]]
    # uint8 gray: the form a scan takes, and the one JPEG and the albumentations operations expect.
    gray = np.clip(np.rint(lightness * (255 / 100)), 0, 255).astype(np.uint8)
    scale = min(gray.shape) / UNIT_SIDE
    for name in OPERATIONS:
        if name in chosen:
            gray = _OPERATIONS[name](gray, rng, scale)
    return gray.astype(np.float32) * np.float32(100 / 255)


# === The operations: (gray uint8 (H, W), rng, scale) -> gray uint8 (H, W) ===


def _albumentations(transform, gray: np.ndarray, rng) -> np.ndarray:
    pipeline = A.Compose([transform], seed=int(rng.integers(2**31)))
    return pipeline(image=gray[..., None])["image"][..., 0]


def _grain(gray, rng, scale):
    # noise_scale_factor < 1 draws the noise at a lower resolution: grains larger than a pixel.
    grain = A.GaussNoise(std_range=(0.02, 0.07), mean_range=(0, 0), noise_scale_factor=float(rng.uniform(0.5, 1)),
                         p=1.0)
    return _albumentations(grain, gray, rng)


def _blur(gray, rng, scale):
    sigma = float(rng.uniform(0.5, 1.6) * scale)
    kernel = 2 * int(np.ceil(3 * sigma)) + 1
    return _albumentations(A.GaussianBlur(blur_limit=(kernel, kernel), sigma_limit=(sigma, sigma), p=1.0), gray, rng)


def _fading(gray, rng, scale):
    black = rng.uniform(0, 70)  # lifted blacks
    white = rng.uniform(180, 255)  # dimmed whites
    gamma = rng.uniform(0.75, 1.3)
    levels = np.arange(256, dtype=np.float32) / 255
    curve = black + (white - black) * levels**gamma
    return cv2.LUT(gray, np.clip(np.rint(curve), 0, 255).astype(np.uint8))


def _blend_marks(gray, draw) -> np.ndarray:
    """Draw marks (anti-aliased, into a coverage map) and blend each pixel toward the marks' tone."""
    coverage = np.zeros(gray.shape, np.uint8)
    tones = np.zeros(gray.shape, np.uint8)
    draw(coverage, tones)
    alpha = coverage.astype(np.float32) / 255
    return np.clip(np.rint(gray * (1 - alpha) + tones * alpha), 0, 255).astype(np.uint8)


def _mark_tone(rng) -> int:
    """Bright (an emulsion scratched off a negative prints white) or dark (dirt, a scratch on the print)."""
    return int(rng.uniform(215, 255)) if rng.random() < 0.6 else int(rng.uniform(0, 45))


def _scratches(gray, rng, scale):
    height, width = gray.shape

    def draw(coverage, tones):
        for _ in range(int(rng.integers(1, 7))):
            length = rng.uniform(0.2, 1.0) * np.hypot(height, width)
            # Film scratches run along the film (near vertical); a print's go any way.
            angle = rng.normal(np.pi / 2, 0.15) if rng.random() < 0.5 else rng.uniform(0, np.pi)
            start = np.array([rng.uniform(0, width), rng.uniform(0, height)])
            end = start + length * np.array([np.cos(angle), np.sin(angle)])
            bend = rng.normal(0, 0.08 * length, 2) if rng.random() < 0.5 else np.zeros(2)
            t = np.linspace(0, 1, 24)[:, None]
            middle = (start + end) / 2 + bend
            points = (1 - t) ** 2 * start + 2 * (1 - t) * t * middle + t**2 * end  # a quadratic Bezier
            thickness = max(1, int(round(rng.uniform(0.6, 2.2) * scale)))
            strength = int(rng.uniform(140, 255))
            polyline = [np.rint(points * 16).astype(np.int32)]  # 4 fractional bits: smooth anti-aliased lines
            mark = np.zeros_like(coverage)
            cv2.polylines(mark, polyline, False, strength, thickness, cv2.LINE_AA, shift=4)
            cv2.polylines(tones, polyline, False, _mark_tone(rng), thickness + 2, cv2.LINE_8, shift=4)
            np.maximum(coverage, mark, out=coverage)

    return _blend_marks(gray, draw)


def _dust(gray, rng, scale):
    height, width = gray.shape

    def draw(coverage, tones):
        for _ in range(int(rng.integers(5, 60 * max(1.0, scale**2)))):
            centre = (int(rng.uniform(0, width) * 16), int(rng.uniform(0, height) * 16))
            radius = rng.uniform(0.4, 2.5) * scale * (3 if rng.random() < 0.08 else 1)  # now and then a blob
            axes = (max(8, int(radius * 16)), max(8, int(radius * rng.uniform(0.4, 1) * 16)))
            angle = float(rng.uniform(0, 180))
            strength = int(rng.uniform(120, 255))
            mark = np.zeros_like(coverage)
            cv2.ellipse(mark, centre, axes, angle, 0, 360, strength, -1, cv2.LINE_AA, shift=4)
            cv2.ellipse(tones, centre, (axes[0] + 16, axes[1] + 16), angle, 0, 360, _mark_tone(rng), -1,
                        cv2.LINE_8, shift=4)
            np.maximum(coverage, mark, out=coverage)

    return _blend_marks(gray, draw)


def _jpeg(gray, rng, scale):
    quality = int(rng.integers(25, 80))
    return _albumentations(A.ImageCompression(compression_type="jpeg", quality_range=(quality, quality), p=1.0),
                           gray, rng)


_OPERATIONS = {"grain": _grain, "blur": _blur, "fading": _fading, "scratches": _scratches, "dust": _dust,
               "jpeg": _jpeg}
