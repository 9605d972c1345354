"""Robust frame statistics: frame clipping, bias level, temporal noise."""

from __future__ import annotations

import math

import numpy as np

MAD_TO_SIGMA = 1.482602218505602
SAMPLE_PIXELS = 1 << 18   # pixels per frame used for frame-level statistics


def truncation_factor(k: float) -> float:
    """Variance of a unit normal truncated to [-k, k]."""
    phi = math.exp(-0.5 * k * k) / math.sqrt(2 * math.pi)
    inside = math.erf(k / math.sqrt(2))
    return 1.0 - 2.0 * k * phi / inside


def clipped_stats(x: np.ndarray, sigma: float, iterations: int):
    """Iterative sigma clipping about the median.

    The first pass uses the MAD-based sigma, later ones the standard deviation
    of the kept values corrected for the truncation: unlike the MAD, it is not
    biased by integer (quantised) data.  Values rejected in one pass stay
    rejected.  Returns (median, sigma, number clipped, mean) of the kept
    finite values of ``x``."""
    x = np.asarray(x, np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.nan, np.nan, 0, np.nan
    keep = np.ones(x.size, bool)
    kept = x
    med = float(np.median(kept))
    s = MAD_TO_SIGMA * float(np.median(np.abs(kept - med)))
    corr = math.sqrt(truncation_factor(sigma))
    for _ in range(iterations):
        if s == 0.0:
            break
        new = keep & (np.abs(x - med) <= sigma * s)
        changed = new.sum() != keep.sum()
        keep = new
        kept = x[keep]
        med = float(np.median(kept))
        s = float(kept.std()) / corr
        if not changed:
            break
    return med, s, int(x.size - keep.sum()), float(kept.mean())


def sample_rows(r0: int, r1: int, ncol: int, target: int = SAMPLE_PIXELS) -> np.ndarray:
    """Evenly spaced rows of [r0, r1) holding about ``target`` pixels."""
    step = max(1, ((r1 - r0) * ncol) // target)
    return np.arange(r0, r1, step)


def temporal_noise(frames: list[np.ndarray], sigma: float, iterations: int):
    """Noise of one frame from differences of consecutive frames, so the
    fixed pattern cancels: clipped robust sigma of (a - b) / sqrt(2), for
    each consecutive pair; returns (median over pairs, per-pair values)."""
    per_pair = []
    for a, b in zip(frames[:-1], frames[1:]):
        _, s, _, _ = clipped_stats(a - b, sigma, iterations)
        per_pair.append(s / np.sqrt(2.0))
    return float(np.median(per_pair)), per_pair
