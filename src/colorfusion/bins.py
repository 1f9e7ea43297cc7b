"""Quantized ab colour classes, their prior, rebalancing weights, soft-encoding.

The classification head of the colorizer (Zhang et al., "Colorful Image
Colorization", 2016) predicts, for each pixel, a distribution over a few
hundred ab colours. `ABBins` defines those colours and what the loss needs:

- `centers`: the ab plane on a grid of 10 (ab units), restricted to points
  inside the sRGB gamut (for some lightness L), keeping the `num_bins` most
  frequent in the fitting photos;
- `prior`: the empirical share of pixels whose nearest bin is each bin;
- `prior_smoothed`: the same, from the ab histogram smoothed with a Gaussian
  of `sigma` ab units;
- `weights`: class-rebalancing weights `((1 - lam) * prior_smoothed +
  lam / Q) ** -1`, scaled so that `sum(prior * weights) == 1` (the average
  pixel keeps weight 1, rare colours get more);
- `soft_encode`: each ab value as Gaussian weights (`sigma`) over its 5
  nearest bins, written with `keras.ops` so it runs inside the loss on any
  backend.

Bins travel with the model: `get_config()` is plain JSON-able lists, stored
in the classification head's config, and `save` / `load` write the same
dict to a small JSON file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
from keras import ops
from tqdm.auto import tqdm

from colorfusion import color, io
from colorfusion.errors import UsageError

# Photos shipped inside scikit-image (no download): the fallback prior.
DEFAULT_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")

# Fine ab histogram: 1 ab unit per cell, covering [-128, 127] on both axes.
_FINE = 256
_FINE_OFFSET = 128

# CIE Lab (D65, as OpenCV) -> linear sRGB, used only to decide which grid
# points are inside the gamut: color.lab_to_rgb clips, so it cannot tell.
_WHITE_D65 = np.array([0.950456, 1.0, 1.088754])
_LINEAR_SRGB_FROM_XYZ = np.array([
    [3.2404542, -1.5371385, -0.4985314],
    [-0.9692660, 1.8760108, 0.0415560],
    [0.0556434, -0.2040259, 1.0572252],
])


def in_srgb_gamut(ab: np.ndarray, levels: int = 1001, tol: float = 1e-6) -> np.ndarray:
    """Whether each ab pair is an sRGB colour for at least one L in [0, 100].

    Args:
        ab: array (..., 2) in ab units.
        levels: number of L values tried, evenly spaced over [0, 100].
        tol: slack on the linear RGB range [0, 1].

    Returns:
        bool array of shape (...).
    """
    ab = np.asarray(ab, np.float64)
    lightness = np.linspace(0.0, 100.0, levels)[:, None]
    flat = ab.reshape(-1, 2)
    fy = (lightness + 16.0) / 116.0  # (levels, 1)
    f = np.stack([fy + flat[None, :, 0] / 500.0, np.broadcast_to(fy, (levels, len(flat))),
                  fy - flat[None, :, 1] / 200.0], axis=-1)
    delta = 6.0 / 29.0
    xyz = np.where(f > delta, f**3, 3 * delta**2 * (f - 4.0 / 29.0)) * _WHITE_D65
    rgb = xyz @ _LINEAR_SRGB_FROM_XYZ.T
    inside = np.all((rgb >= -tol) & (rgb <= 1.0 + tol), axis=-1).any(axis=0)
    return inside.reshape(ab.shape[:-1])


def _grid_steps(grid: float) -> np.ndarray:
    """The grid's steps along a or b (ab = step x grid) covering the fine histogram."""
    fine = np.arange(_FINE, dtype=np.float64) - _FINE_OFFSET
    return np.arange(np.floor(fine[0] / grid), np.ceil(fine[-1] / grid) + 1)


def gamut_grid(grid: float = 10) -> np.ndarray:
    """The ab points of a grid of step `grid` that are sRGB colours: where bins can sit, (N, 2).

    `len(gamut_grid(grid))` is the most bins `ABBins.fit` can make on that grid.
    """
    _check_positive("grid", grid)
    steps = _grid_steps(grid)
    grid_ab = np.stack(np.meshgrid(steps * grid, steps * grid, indexing="ij"), -1).reshape(-1, 2)
    return grid_ab[in_srgb_gamut(grid_ab)]


def _check_positive(name, value):
    if not value > 0:
        raise ValueError(f"{name} must be positive. Received: {name}={value!r}")


class ABBins:
    """Quantized ab colours with their prior and rebalancing weights.

    Args:
        centers: (Q, 2) bin centres in ab units.
        prior: (Q,) empirical probability of each bin (sums to 1).
        prior_smoothed: (Q,) Gaussian-smoothed prior; by default `prior`
            smoothed over the bin centres with a Gaussian of `sigma`.
        weights: (Q,) rebalancing weights; by default computed from
            `prior_smoothed` and `lam`.
        grid: spacing of the ab grid the centres lie on.
        sigma: Gaussian width (ab units) for smoothing and soft-encoding.
        lam: mix of the uniform distribution into the prior (0: full
            rebalancing, 1: none).
        neighbors: how many nearest bins soft-encoding spreads over.

    Example:
        bins = ABBins.fit([rgb_uint8_photo, ...], num_bins=200)
        bins.save("bins.json"); bins = ABBins.load("bins.json")
        z = bins.soft_encode(ab / 128)   # (..., Q), keras tensor
    """

    def __init__(self, centers, prior, prior_smoothed=None, weights=None,
                 grid=10, sigma=5.0, lam=0.5, neighbors=5):
        centers = np.asarray(centers, np.float32)
        if centers.ndim != 2 or centers.shape[1] != 2 or len(centers) < 1:
            raise ValueError(f"centers must have shape (Q, 2). Received: centers.shape={centers.shape}")
        _check_positive("grid", grid)
        _check_positive("sigma", sigma)
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lam must be in [0, 1]. Received: lam={lam!r}")
        if not 1 <= int(neighbors) <= len(centers):
            raise ValueError(f"neighbors must be in [1, {len(centers)}]. Received: neighbors={neighbors!r}")
        q = len(centers)
        self.centers = centers
        self.grid, self.sigma, self.lam, self.neighbors = float(grid), float(sigma), float(lam), int(neighbors)
        self.prior = self._vector("prior", prior, q)
        if prior_smoothed is None:
            d2 = np.sum((centers[:, None] - centers[None]) ** 2, axis=-1)
            prior_smoothed = np.exp(-d2 / (2 * self.sigma**2)) @ self.prior
            prior_smoothed /= prior_smoothed.sum()
        self.prior_smoothed = self._vector("prior_smoothed", prior_smoothed, q)
        if weights is None:
            weights = rebalancing_weights(self.prior, self.prior_smoothed, self.lam)
        self.weights = self._vector("weights", weights, q)

    @staticmethod
    def _vector(name, value, q):
        value = np.asarray(value, np.float32)
        if value.shape != (q,):
            raise ValueError(f"{name} must have shape ({q},). Received: {name}.shape={value.shape}")
        if not np.all(np.isfinite(value)) or np.any(value < 0):
            raise ValueError(f"{name} must be finite and non-negative. Received: {name}={value!r}")
        return value

    @property
    def num_bins(self) -> int:
        return len(self.centers)

    def __repr__(self):
        return f"ABBins(num_bins={self.num_bins}, grid={self.grid:g}, sigma={self.sigma:g}, lam={self.lam:g})"

    # === Fitting ===

    @classmethod
    def fit(cls, images, num_bins=200, grid=10, sigma=5.0, lam=0.5):
        """Fit bins to an iterable of uint8 RGB images (any sizes)."""
        return cls.from_histogram(_fine_histograms(images), num_bins=num_bins, grid=grid, sigma=sigma, lam=lam)

    @classmethod
    def fit_files(cls, paths, max_side=256, progress=True, **kwargs):
        """Fit bins to image files, skipping unreadable ones with a warning.

        Args:
            paths: image file paths.
            max_side: images are downscaled to this longer side first (fast,
                and the colour distribution barely changes).
            progress: show a tqdm progress bar.
            **kwargs: passed to `fit` (num_bins, grid, sigma, lam).

        Raises:
            UsageError: none of the files could be read (the user's files, not a misuse of the API).
        """
        paths = list(paths)
        read = []

        def images():
            for path in tqdm(paths, desc="fitting ab bins", unit="img", disable=not progress):
                try:
                    rgb = io.read_rgb(path, max_side=max_side)
                except io.ImageReadError as e:
                    tqdm.write(f"warning: skipping {e}", file=sys.stderr)
                    continue
                read.append(path)
                yield rgb

        hist = _fine_histograms(images())
        if paths and not read:
            raise UsageError(f"none of the {len(paths)} files could be read as a photo (each is named above)")
        return cls.from_histogram(hist, **kwargs)

    @classmethod
    def default(cls, num_bins=200, **kwargs):
        """Bins fitted on the colour photos that ship with scikit-image."""
        import skimage.data  # its photos only when these default bins are asked for (slow import)

        images = (io.resize_to_max_side(getattr(skimage.data, name)(), 256) for name in DEFAULT_PHOTOS)
        return cls.fit(images, num_bins=num_bins, **kwargs)

    @classmethod
    def from_histogram(cls, hist, num_bins=200, grid=10, sigma=5.0, lam=0.5):
        """Fit bins to a (256, 256) histogram of integer ab (index = ab + 128)."""
        hist = np.asarray(hist, np.float64)
        if hist.shape != (_FINE, _FINE):
            raise ValueError(f"hist must have shape ({_FINE}, {_FINE}). Received: hist.shape={hist.shape}")
        if hist.sum() <= 0:
            raise ValueError("Cannot fit ab bins: no pixels were given.")
        _check_positive("grid", grid)
        _check_positive("sigma", sigma)
        fine = np.arange(_FINE, dtype=np.float64) - _FINE_OFFSET
        steps = _grid_steps(grid)
        candidates = gamut_grid(grid)
        if not 1 <= num_bins <= len(candidates):
            raise ValueError(
                f"num_bins must be in [1, {len(candidates)}] (in-gamut points on a grid of {grid:g}). "
                f"Received: num_bins={num_bins!r}"
            )
        # Count each fine cell towards the grid point it rounds to.
        cell = np.rint(fine / grid).astype(int) - int(steps[0])
        coarse = np.zeros((len(steps), len(steps)))
        np.add.at(coarse, (cell[:, None], cell[None, :]), hist)
        cidx = np.rint(candidates / grid).astype(int) - int(steps[0])
        counts = coarse[cidx[:, 0], cidx[:, 1]]
        # Most frequent first; ties (e.g. unseen colours) nearest to gray first.
        order = np.lexsort((np.hypot(candidates[:, 0], candidates[:, 1]), -counts))
        centers = candidates[order[:num_bins]]
        # Prior over the kept bins: every pixel goes to its nearest bin.
        fine_ab = np.stack(np.meshgrid(fine, fine, indexing="ij"), -1).reshape(-1, 2)
        nearest = _nearest(fine_ab, centers)
        prior = np.bincount(nearest, weights=hist.ravel(), minlength=num_bins)
        smooth = cv2.GaussianBlur(hist.astype(np.float32), (0, 0), sigmaX=sigma, borderType=cv2.BORDER_CONSTANT)
        prior_smoothed = np.bincount(nearest, weights=smooth.ravel().astype(np.float64), minlength=num_bins)
        return cls(centers, prior / prior.sum(), prior_smoothed / prior_smoothed.sum(),
                   grid=grid, sigma=sigma, lam=lam)

    # === Encoding ===

    def nearest(self, ab) -> np.ndarray:
        """Index of the nearest bin for each ab value (..., 2), numpy."""
        ab = np.asarray(ab, np.float32)
        return _nearest(ab.reshape(-1, 2), self.centers).reshape(ab.shape[:-1])

    def _squared_distances(self, ab_scaled):
        ab = ops.cast(ab_scaled, "float32") * color.AB_SCALE
        centers = ops.convert_to_tensor(self.centers, dtype="float32")
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2: one matmul, no (..., Q, 2) tensor.
        d2 = (ops.sum(ops.square(ab), axis=-1, keepdims=True) - 2.0 * ops.matmul(ab, ops.transpose(centers))
              + ops.sum(ops.square(centers), axis=-1))
        return ops.maximum(d2, 0.0)

    def encode(self, ab_scaled):
        """Soft-encoding (..., Q) and nearest-bin rebalancing weight (...).

        Args:
            ab_scaled: ab / 128, shape (..., 2), any backend tensor or array.
        """
        d2 = self._squared_distances(ab_scaled)
        top, _ = ops.top_k(-d2, k=self.neighbors)
        d2_min, d2_kth = -top[..., :1], -top[..., -1:]
        # Distances relative to the nearest bin: the nearest gets exp(0) = 1,
        # so far-off colours never underflow to an all-zero encoding.
        soft = ops.exp((d2_min - d2) / (2.0 * self.sigma**2)) * ops.cast(d2 <= d2_kth, "float32")
        soft = soft / ops.sum(soft, axis=-1, keepdims=True)
        weights = ops.take(ops.convert_to_tensor(self.weights, dtype="float32"), ops.argmin(d2, axis=-1))
        return soft, weights

    def soft_encode(self, ab_scaled):
        """Gaussian weights over the `neighbors` nearest bins, (..., Q); sums to 1."""
        return self.encode(ab_scaled)[0]

    # === Config and files ===

    def get_config(self) -> dict:
        return {
            "centers": self.centers.tolist(),
            "prior": self.prior.tolist(),
            "prior_smoothed": self.prior_smoothed.tolist(),
            "weights": self.weights.tolist(),
            "grid": self.grid,
            "sigma": self.sigma,
            "lam": self.lam,
            "neighbors": self.neighbors,
        }

    @classmethod
    def from_config(cls, config: dict) -> ABBins:
        return cls(**config)

    def save(self, path) -> Path:
        """Write the bins as a small JSON file, atomically."""
        with io.atomic_write(path, "w") as f:
            json.dump({"format": "colorfusion.ABBins", "version": 1, **self.get_config()}, f)
        return Path(path)

    @classmethod
    def load(cls, path) -> ABBins:
        with open(path) as f:
            config = json.load(f)
        if config.pop("format", None) != "colorfusion.ABBins":
            raise ValueError(f"Not an ABBins file. Received: path={str(path)!r}")
        config.pop("version", None)
        return cls.from_config(config)


def rebalancing_weights(prior, prior_smoothed, lam=0.5) -> np.ndarray:
    """w ~ ((1 - lam) * prior_smoothed + lam / Q)^-1 with sum(prior * w) = 1."""
    prior = np.asarray(prior, np.float64)
    mixed = (1.0 - lam) * np.asarray(prior_smoothed, np.float64) + lam / len(prior)
    weights = 1.0 / mixed
    return weights / np.sum(prior * weights)


def _fine_histogram(rgb) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"Expected an RGB image (H, W, 3). Received: shape={rgb.shape}")
    ab = color.rgb_to_lab(rgb)[..., 1:].reshape(-1, 2)
    idx = np.clip(np.rint(ab).astype(np.int64) + _FINE_OFFSET, 0, _FINE - 1)
    return np.bincount(idx[:, 0] * _FINE + idx[:, 1], minlength=_FINE * _FINE).astype(np.float64)


def _fine_histograms(images) -> np.ndarray:
    """The (256, 256) histogram of integer ab over all pixels of an iterable of RGB images."""
    hist = np.zeros(_FINE * _FINE, np.float64)
    for rgb in images:
        hist += _fine_histogram(rgb)
    return hist.reshape(_FINE, _FINE)


def _nearest(ab: np.ndarray, centers: np.ndarray, chunk: int = 65536) -> np.ndarray:
    centers = np.asarray(centers, np.float32)
    out = np.empty(len(ab), np.int64)
    for start in range(0, len(ab), chunk):
        part = np.asarray(ab[start:start + chunk], np.float32)
        d2 = np.sum(part**2, 1, keepdims=True) - 2 * part @ centers.T + np.sum(centers**2, 1)
        out[start:start + chunk] = np.argmin(d2, axis=1)
    return out
