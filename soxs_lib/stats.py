"""Robust frame statistics: frame clipping, bias level, temporal noise."""

from __future__ import annotations

import numpy as np

MAD_TO_SIGMA = 1.482602218505602
SAMPLE_PIXELS = 1 << 18   # pixels per frame used for frame-level statistics


def clipped_stats(x: np.ndarray, sigma: float, iterations: int):
    """Iterative sigma clipping about the median with a MAD-based sigma.

    Returns (median, robust sigma, number of clipped values) of the finite
    values of ``x``; values rejected in one pass stay rejected."""
    x = np.asarray(x, np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.nan, np.nan, 0
    keep = np.ones(x.size, bool)
    med = s = np.nan
    for _ in range(iterations):
        kept = x[keep]
        med = float(np.median(kept))
        s = MAD_TO_SIGMA * float(np.median(np.abs(kept - med)))
        if s == 0.0:
            break
        new = keep & (np.abs(x - med) <= sigma * s)
        if new.sum() == keep.sum():
            break
        keep = new
    kept = x[keep]
    med = float(np.median(kept))
    s = MAD_TO_SIGMA * float(np.median(np.abs(kept - med)))
    return med, s, int(x.size - keep.sum())


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
        _, s, _ = clipped_stats(a - b, sigma, iterations)
        per_pair.append(s / np.sqrt(2.0))
    return float(np.median(per_pair)), per_pair
