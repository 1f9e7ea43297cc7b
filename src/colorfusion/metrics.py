"""Colorization metrics: AuC (raw and class-rebalanced), PSNR, SSIM, colorfulness.

All metrics are numpy functions. Images follow one shape convention: a single
image is (H, W, C) and gives a float; a batch is (N, H, W, C) (any number of
leading axes) and gives an array of that leading shape, one value per image.
Averaging per-image values over a set of equally sized images gives the
pooled (dataset-level) figure that papers report.

- `auc` / `accuracy_curve`: the "raw accuracy" AuC of Zhang et al. 2016.
- `rebalanced_auc`: the same, pixels weighted by the inverse prior of their
  true colour bin (Zhang et al.'s class-rebalanced AuC, lambda = 0).
- `psnr` on uint8 RGB, capped at `max_db` for identical images.
- `ssim`: scikit-image's `structural_similarity` on uint8 RGB.
- `colorfulness`: Hasler and Suesstrunk's M3.
- `image_metrics`: all of them for one (true, predicted) pair of RGB images,
  which is what evaluation and the training callbacks call.

References:
    R. Zhang, P. Isola, A. A. Efros, "Colorful Image Colorization", ECCV 2016,
    section 3.1 and Table 1 ("AuC", non-rebalanced and rebalanced).
    D. Hasler, S. Suesstrunk, "Measuring colourfulness in natural images",
    Proc. SPIE 5007, Human Vision and Electronic Imaging VIII, 2003.
    Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality
    assessment: from error visibility to structural similarity", IEEE TIP 2004.
"""

from __future__ import annotations

import numpy as np

from colorfusion import color

DEFAULT_MAX_THRESHOLD = 150  # Zhang et al. sweep 0..150 Lab units
DEFAULT_MAX_PSNR_DB = 100.0
SSIM_WINDOW = 7  # scikit-image's default win_size


# === AuC of Zhang et al. 2016 ===


def _check_pair(true: np.ndarray, pred: np.ndarray, channels: int, what: str) -> None:
    if true.shape != pred.shape:
        raise ValueError(
            f"{what} arrays must have the same shape. Received: true.shape={true.shape}, pred.shape={pred.shape}"
        )
    if true.ndim < 3 or true.shape[-1] != channels:
        raise ValueError(
            f"Expected {what} of shape (H, W, {channels}) or (N, H, W, {channels}). Received: shape={true.shape}"
        )


def ab_error(ab_true: np.ndarray, ab_pred: np.ndarray) -> np.ndarray:
    """Per-pixel Euclidean distance in the ab plane, in Lab units (float64).

    Args:
        ab_true, ab_pred: arrays of the same shape (..., 2).

    Returns:
        Array of shape (...) .
    """
    ab_true = np.asarray(ab_true, np.float64)
    ab_pred = np.asarray(ab_pred, np.float64)
    if ab_true.shape != ab_pred.shape or ab_true.shape[-1:] != (2,):
        raise ValueError(
            "ab arrays must have the same shape (..., 2). "
            f"Received: ab_true.shape={ab_true.shape}, ab_pred.shape={ab_pred.shape}"
        )
    diff = ab_true - ab_pred
    return np.sqrt(np.einsum("...c,...c->...", diff, diff))


def accuracy_curve(ab_true, ab_pred, max_threshold: int = DEFAULT_MAX_THRESHOLD, weights=None) -> np.ndarray:
    """Fraction of pixels whose ab error is within t, for t = 0, 1, ..., max_threshold.

    A pixel counts at threshold t when its error e satisfies e <= t (Lab
    units). With integer thresholds that is ceil(e) <= t, so the whole curve
    comes from one weighted histogram of ceil(e) and a cumulative sum:
    O(pixels), not O(pixels x thresholds).

    Args:
        ab_true, ab_pred: (H, W, 2) for one image or (N, H, W, 2) for a batch.
        max_threshold: the last threshold (150 in Zhang et al.).
        weights: optional non-negative per-pixel weights of shape (H, W) or
            (N, H, W); the curve is then the weighted fraction.

    Returns:
        float64 array (max_threshold + 1,) for one image, (N, max_threshold + 1)
        for a batch; values in [0, 1], non-decreasing along the last axis.
    """
    ab_true = np.asarray(ab_true)
    ab_pred = np.asarray(ab_pred)
    _check_pair(ab_true, ab_pred, 2, "ab")
    if int(max_threshold) != max_threshold or max_threshold < 0:
        raise ValueError(f"max_threshold must be a non-negative integer. Received: max_threshold={max_threshold!r}")
    max_threshold = int(max_threshold)
    lead = ab_true.shape[:-3]
    n_images = int(np.prod(lead, dtype=np.int64))
    err = ab_error(ab_true, ab_pred).reshape(n_images, -1)
    if weights is None:
        w = np.ones_like(err)
    else:
        w = np.asarray(weights, np.float64)
        if w.shape != ab_true.shape[:-1]:
            raise ValueError(
                f"weights must have shape {ab_true.shape[:-1]}. Received: weights.shape={w.shape}"
            )
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("weights must be finite and non-negative.")
        w = w.reshape(n_images, -1)
    # Bin k holds pixels first counted at threshold k; bin max_threshold + 1
    # holds the ones never counted (and NaN errors, which count as misses).
    n_bins = max_threshold + 2
    first = np.ceil(np.nan_to_num(err, nan=np.inf))
    first = np.minimum(first, n_bins - 1).astype(np.int64)
    offsets = np.arange(n_images, dtype=np.int64)[:, None] * n_bins
    hist = np.bincount((first + offsets).ravel(), weights=w.ravel(), minlength=n_images * n_bins)
    hist = hist.reshape(n_images, n_bins)
    total = hist.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        curve = np.cumsum(hist[:, :-1], axis=1) / total
    return curve.reshape(lead + (max_threshold + 1,))


def auc(ab_true, ab_pred, max_threshold: int = DEFAULT_MAX_THRESHOLD, weights=None):
    """Area under the ab accuracy curve of Zhang et al. 2016, in [0, 1].

    Zhang et al. count the pixels whose predicted ab is within an L2 distance
    t of the ground truth, sweep t from 0 to 150, integrate the area under
    that cumulative curve and normalise it. Here the curve is sampled at the
    151 integer thresholds t = 0..150 and the AuC is its mean (a Riemann sum
    with unit steps divided by the 151 samples), so:

    - a perfect prediction (every error 0) gives exactly 1;
    - an error of exactly e everywhere (0 <= e <= 150) gives
      (150 - ceil(e) + 1) / 151, e.g. e = 10 -> 141 / 151;
    - errors above 150 everywhere give 0.

    Args:
        ab_true, ab_pred: ab in Lab units, (H, W, 2) or (N, H, W, 2).
        max_threshold: the last threshold of the sweep.
        weights: optional per-pixel weights, (H, W) or (N, H, W).

    Returns:
        A float for one image, an (N,) array for a batch. An image whose
        weights are all zero gives NaN.

    Example:
        >>> ab = np.zeros((4, 4, 2))
        >>> auc(ab, ab + [6.0, 8.0])  # error 10 everywhere
        0.9337748344370861
    """
    value = accuracy_curve(ab_true, ab_pred, max_threshold, weights).mean(axis=-1)
    return float(value) if np.ndim(value) == 0 else value


def rebalanced_weights(ab_true, bins) -> np.ndarray:
    """Per-pixel weights 1 / prior(bin of the true ab) (lambda = 0).

    Args:
        ab_true: ab in Lab units, (..., 2).
        bins: any object with `nearest(ab) -> int indices` (numpy, ab of shape
            (P, 2) -> (P,)) and `prior`, an array (Q,) of bin probabilities;
            `colorfusion.bins.ABBins` is one. It is duck-typed.

    A true colour can fall in a bin whose prior is 0 (a colour never seen
    when the prior was estimated). 1 / 0 would make the AuC inf / NaN, so
    such pixels get the weight of the rarest bin that *was* seen
    (1 / smallest positive prior): they are at least that rare.

    Returns:
        float64 weights of shape ab_true.shape[:-1].
    """
    ab_true = np.asarray(ab_true)
    prior = np.asarray(bins.prior, np.float64).ravel()
    positive = prior[np.isfinite(prior) & (prior > 0)]
    if positive.size == 0:
        raise ValueError("bins.prior has no positive entry; cannot rebalance.")
    prior = np.where(np.isfinite(prior) & (prior > 0), prior, positive.min())
    index = np.asarray(bins.nearest(ab_true.reshape(-1, 2))).astype(np.int64).ravel()
    return (1.0 / prior[index]).reshape(ab_true.shape[:-1])


def rebalanced_auc(ab_true, ab_pred, bins, max_threshold: int = DEFAULT_MAX_THRESHOLD):
    """Class-rebalanced AuC of Zhang et al. 2016 (Table 1, "rebalanced").

    The same curve as `auc`, with each pixel weighted by the inverse prior
    probability of its true ab bin, so rare (saturated) colours count as much
    as common (desaturated) ones. See `rebalanced_weights` for bins with a
    zero prior.

    Args:
        ab_true, ab_pred: ab in Lab units, (H, W, 2) or (N, H, W, 2).
        bins: object with `.nearest(ab)` and `.prior` (e.g. `ABBins`).
        max_threshold: the last threshold of the sweep.

    Returns:
        A float for one image, an (N,) array for a batch.
    """
    weights = rebalanced_weights(ab_true, bins)
    return auc(ab_true, ab_pred, max_threshold, weights=weights)


# === RGB image metrics ===


def psnr(rgb_true, rgb_pred, max_db: float | None = DEFAULT_MAX_PSNR_DB):
    """Peak signal-to-noise ratio of uint8 RGB images, in dB.

    PSNR = 10 log10(255^2 / MSE), the MSE taken over all pixels and channels
    of an image.

    Identical images have MSE 0 and an infinite PSNR. An infinity poisons
    means and plots, so by default the value is capped at `max_db` = 100 dB
    (on an image of up to 51,000 pixels, about 226x226, any difference at
    all stays below the cap; one channel of one pixel off by 1 in a 256x256
    image would be 101.1 dB, so only identical or all-but-identical images
    reach it). Pass `max_db=None` to get `inf` instead.

    Args:
        rgb_true, rgb_pred: uint8, (H, W, 3) or (N, H, W, 3).
        max_db: cap, or None for no cap.

    Returns:
        A float for one image, an (N,) array for a batch.
    """
    rgb_true = np.asarray(rgb_true)
    rgb_pred = np.asarray(rgb_pred)
    _check_pair(rgb_true, rgb_pred, 3, "RGB")
    _check_uint8(rgb_true, rgb_pred)
    diff = rgb_true.astype(np.float64) - rgb_pred.astype(np.float64)
    mse = np.mean(diff * diff, axis=(-3, -2, -1))
    with np.errstate(divide="ignore"):
        value = 10.0 * np.log10(255.0**2 / mse)
    if max_db is not None:
        value = np.minimum(value, float(max_db))
    return float(value) if np.ndim(value) == 0 else value


def _check_uint8(*arrays: np.ndarray) -> None:
    for a in arrays:
        if a.dtype != np.uint8:
            raise ValueError(f"Expected uint8 RGB in [0, 255]. Received: dtype={a.dtype}")


def ssim_window(height: int, width: int) -> int:
    """The SSIM window side for an image: 7, or the largest odd side that fits."""
    side = min(SSIM_WINDOW, height, width)
    return side if side % 2 else side - 1


def ssim(rgb_true, rgb_pred):
    """Mean structural similarity of uint8 RGB images (scikit-image).

    `skimage.metrics.structural_similarity(..., channel_axis=-1,
    data_range=255)` with its defaults (7x7 uniform window, sample
    covariance), so the value equals scikit-image's.

    scikit-image refuses images smaller than the window. Here the window
    shrinks to the largest odd side that fits (5 or 3 for images with a side
    of 3 to 6 pixels). With a side of 1 or 2 pixels the window is 1x1: there
    is no structure left to compare, the sample covariance is undefined, and
    the value is the mean per-pixel luminance term (2 x y + C1) / (x^2 + y^2
    + C1) (population covariance), still 1 for identical images.

    Args:
        rgb_true, rgb_pred: uint8, (H, W, 3) or (N, H, W, 3).

    Returns:
        A float for one image, an (N,) array for a batch.
    """
    from skimage.metrics import structural_similarity  # import cost only when used

    rgb_true = np.asarray(rgb_true)
    rgb_pred = np.asarray(rgb_pred)
    _check_pair(rgb_true, rgb_pred, 3, "RGB")
    _check_uint8(rgb_true, rgb_pred)
    height, width = rgb_true.shape[-3:-1]
    if height == 0 or width == 0:
        raise ValueError(f"SSIM of an empty image. Received: shape={rgb_true.shape}")
    window = ssim_window(height, width)
    options = {"channel_axis": -1, "data_range": 255}
    if window < SSIM_WINDOW:
        options["win_size"] = window
    if window == 1:
        options["use_sample_covariance"] = False
    lead = rgb_true.shape[:-3]
    flat_true = rgb_true.reshape((-1,) + rgb_true.shape[-3:])
    flat_pred = rgb_pred.reshape((-1,) + rgb_pred.shape[-3:])
    values = np.array([structural_similarity(t, p, **options) for t, p in zip(flat_true, flat_pred)])
    values = values.reshape(lead)
    return float(values) if values.ndim == 0 else values


def colorfulness(rgb):
    """Colourfulness M3 of Hasler and Suesstrunk (2003).

    With rg = R - G and yb = (R + G) / 2 - B over the pixels of an image,

        M3 = sqrt(sd(rg)^2 + sd(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)

    (population standard deviations). Any gray image (R = G = B) gives 0;
    the authors rate about 33 "moderately", 59 "quite" and 82 "highly"
    colourful.

    Args:
        rgb: RGB in [0, 255] (uint8, or float already in [0, 255]),
            (H, W, 3) or (N, H, W, 3).

    Returns:
        A float for one image, an (N,) array for a batch.
    """
    rgb = np.asarray(rgb, np.float64)
    if rgb.ndim < 3 or rgb.shape[-1] != 3:
        raise ValueError(f"Expected RGB of shape (H, W, 3) or (N, H, W, 3). Received: shape={rgb.shape}")
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    axes = (-2, -1)
    spread = np.sqrt(rg.var(axis=axes) + yb.var(axis=axes))
    centre = np.sqrt(rg.mean(axis=axes) ** 2 + yb.mean(axis=axes) ** 2)
    value = spread + 0.3 * centre
    return float(value) if np.ndim(value) == 0 else value


BLOTCH_VIVID = 40.0  # chroma (Lab units) of a colour painted vivid
BLOTCH_GRAY = 15.0  # chroma under which the truth counts as gray


def blotch_counts(rgb_true, rgb_pred) -> tuple[int, int]:
    """(pixels painted vivid where the truth is gray, pixels where the truth is gray) of uint8 RGB pairs.

    Vivid: chroma sqrt(a^2 + b^2) of the prediction >= `BLOTCH_VIVID`; gray:
    the truth's < `BLOTCH_GRAY`. Their ratio, pooled over photos, is the
    "blotch" of old-photo colorization: a speck, a scratch or a faded sky
    turned red or blue. Counts, so that a benchmark pools them over photos.
    """
    rgb_true, rgb_pred = np.asarray(rgb_true), np.asarray(rgb_pred)
    _check_pair(rgb_true, rgb_pred, 3, "RGB")
    _check_uint8(rgb_true, rgb_pred)

    def chroma(rgb):
        ab = color.split_lab(color.rgb_to_lab(rgb))[1]
        return np.hypot(ab[..., 0], ab[..., 1])

    gray = chroma(rgb_true) < BLOTCH_GRAY
    return int(np.count_nonzero(gray & (chroma(rgb_pred) >= BLOTCH_VIVID))), int(np.count_nonzero(gray))


# === Everything for one pair ===


def image_metrics(rgb_true, rgb_pred, bins=None) -> dict:
    """All metrics for one pair of uint8 RGB images of the same size.

    ab comes from `colorfusion.color.rgb_to_lab` of each image, so the AuC
    compares the colours actually shown (after gamut clipping), the same way
    for every model.

    Args:
        rgb_true: the original, uint8 (H, W, 3).
        rgb_pred: the colorization, uint8 (H, W, 3).
        bins: optional `ABBins`-like object; adds "rebalanced_auc".

    Returns:
        dict of floats: "auc", "rebalanced_auc" (only with `bins`), "psnr"
        (dB, capped at 100), "ssim", "colorfulness" (of the prediction) and
        "colorfulness_true" (of the original).

    Example:
        >>> rgb = np.full((8, 8, 3), 128, np.uint8)
        >>> image_metrics(rgb, rgb)["auc"]
        1.0
    """
    rgb_true = np.asarray(rgb_true)
    rgb_pred = np.asarray(rgb_pred)
    if rgb_true.ndim != 3:
        raise ValueError(f"image_metrics takes one image (H, W, 3). Received: shape={rgb_true.shape}")
    _check_pair(rgb_true, rgb_pred, 3, "RGB")
    _check_uint8(rgb_true, rgb_pred)
    ab_true = color.split_lab(color.rgb_to_lab(rgb_true))[1]
    ab_pred = color.split_lab(color.rgb_to_lab(rgb_pred))[1]
    result = {"auc": auc(ab_true, ab_pred)}
    if bins is not None:
        result["rebalanced_auc"] = rebalanced_auc(ab_true, ab_pred, bins)
    result["psnr"] = psnr(rgb_true, rgb_pred)
    result["ssim"] = ssim(rgb_true, rgb_pred)
    result["colorfulness"] = colorfulness(rgb_pred)
    result["colorfulness_true"] = colorfulness(rgb_true)
    return result


# === Steadiness of a video (colorfusion.inference.video) ===

CDC_STEPS = (1, 2, 4)  # frame distances of the colour distribution consistency (TCVC, NTIRE 2023)


def color_histograms(rgb) -> np.ndarray:
    """(3, 256) float64: the normalized 256-bin histogram of each of R, G, B of a uint8 image."""
    rgb = np.asarray(rgb)
    _check_uint8(rgb)
    flat = rgb.reshape(-1, rgb.shape[-1])
    return np.stack([np.bincount(flat[:, c], minlength=256) for c in range(3)]).astype(np.float64) / len(flat)


def js_divergence(p, q) -> np.ndarray:
    """Jensen-Shannon divergence (natural log, in [0, ln 2]) of distributions along the last axis."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum(-1)
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum(-1)
    return 0.5 * (kl_p + kl_q)


def cdc(histograms, steps=CDC_STEPS, cuts=()) -> float:
    """Colour distribution consistency of a clip: lower is steadier.

    The Jensen-Shannon divergence of the R, G and B histograms of frames t
    and t + k, averaged over channels and frames, then over k in `steps`
    (Liu et al., "Temporally consistent video colorization with deep feature
    propagation and self-regularization learning" (TCVC); the NTIRE 2023
    video colorization challenge).

    Args:
        histograms: per frame, `color_histograms` (T, 3, 256), or uint8
            frames (T, H, W, 3).
        cuts: frames that start a new shot: pairs of frames on either side
            of one are left out (a cut changes the colours by design).
    """
    h = np.asarray(histograms)
    if h.ndim == 4:
        h = np.stack([color_histograms(frame) for frame in h])
    shot = np.cumsum(np.isin(np.arange(len(h)), list(cuts)))
    values = []
    for k in steps:
        same = shot[:-k] == shot[k:] if k < len(h) else np.zeros(0, bool)
        if same.any():
            values.append(js_divergence(h[:-k][same], h[k:][same]).mean())
    if not values:
        raise ValueError(f"cdc needs more than {min(steps)} frames. Received: {len(h)}")
    return float(np.mean(values))


def warping_error(previous, current, map_x, map_y, valid) -> float:
    """Mean squared difference (RGB in [0, 1]) of frame t warped onto frame t - 1 by the motion, where visible in both.

    Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018. The
    motion is the true one where it is known (synthetic clips), else a flow.

    Args:
        previous, current: uint8 frames t - 1 and t (H, W, 3).
        map_x, map_y: float32 (H, W): where each pixel of frame t - 1 is in frame t.
        valid: bool (H, W): the pixel is visible in both frames.
    """
    import cv2

    if not np.any(valid):
        return float("nan")
    warped = cv2.remap(np.asarray(current, np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    diff = (warped - np.asarray(previous, np.float32)) / 255.0
    return float((diff * diff).sum(-1)[valid].mean() / 3)
