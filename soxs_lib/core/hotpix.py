"""Hot (and cold) pixels of a master dark, recorded in QUAL."""

from __future__ import annotations

import numpy as np

from soxs_lib.config import flags
from soxs_lib.core.stats import MAD_TO_SIGMA, bracket, median


def grouped_median(x: np.ndarray) -> tuple[float, float]:
    """(grouped median, plain median) of the NaN-free ``x``, which it may
    reorder.

    A master of integer raw frames takes values on a grid (step gain/N); the
    plain median then snaps to the grid.  Like the median of grouped data, the
    grouped median places it inside the middle grid cell by the counts on
    either side.  Pixels that kept fewer samples (a cosmic ray clipped) lie
    on other, finer grids between the main one's points: the step is that of
    the main grid (the nearest values about as frequent as the middle one),
    and every value inside the cell counts, whatever its grid.  One bracket
    (or one partition) finds the middle value."""
    n = x.size
    k = (n - 1) // 2
    got = bracket(x, k, n // 2)
    if got is None:
        x.partition((k, k + 1) if n > 1 else k)
        mid = float(x[k])
        plain = mid if n % 2 else 0.5 * (mid + float(x[k + 1]))
    else:
        below, band = got               # sorted
        mid = float(band[k - below])
        plain = mid if n % 2 else 0.5 * (mid + float(band[k - below + 1]))
    equal = int(np.count_nonzero(x == mid))
    if equal < max(2, n // _TIE_FRACTION):
        return plain, plain
    w = _grid_step(x, mid)
    if w is None:
        return mid, plain
    lo, hi = mid - w / 2, mid + w / 2
    less = int(np.count_nonzero(x < lo))
    inside = int(np.count_nonzero(x < hi)) - less
    return lo + w * (n / 2 - less) / inside, plain


# a value held by at least one in this many is on the main grid (a tie);
# the finer grids of pixels that lost samples spread over many values, each
# far rarer
_TIE_FRACTION = 1000
_GRID_SAMPLE = 1 << 16       # values a strided sample looks at to find the step


def _grid_step(x: np.ndarray, mid: float) -> float | None:
    """The main grid's step at ``mid``: the distance to the nearest value on
    either side held by at least one in ``_TIE_FRACTION`` of an evenly
    strided sample of ``x``; None if there is none."""
    sample = x[::max(1, x.size // _GRID_SAMPLE)]
    values, counts = np.unique(sample, return_counts=True)
    frequent = values[(counts >= max(2, sample.size // _TIE_FRACTION)) & (values != mid)]
    return float(np.min(np.abs(frequent - mid))) if frequent.size else None


def master_level(flux: np.ndarray, qual: np.ndarray):
    """Median and MAD-based sigma of the master over pixels with data."""
    good = flux[(qual & flags.NODATA) == 0]        # a copy: free to reorder
    if good.size == 0:
        return np.nan, np.nan
    med, plain = grouped_median(good)
    dev = np.abs(good - np.float32(plain), out=good)
    return med, MAD_TO_SIGMA * median(dev)


def flag_hot_pixels(flux: np.ndarray, qual: np.ndarray, nsigma: float):
    """Set HOT (COLD) on pixels more than nsigma robust sigmas of the master
    above (below) its median.  The robust sigma of the master is the scale of
    its pixel-to-pixel scatter, so with the default threshold a pure-noise
    pixel is flagged with a probability of order 1e-7, not 1e-3 as a
    3-sigma cut would give.

    Parameters
    ----------
    flux : numpy.ndarray
        The master, e-; pixels flagged NODATA are ignored.  Not modified.
    qual : numpy.ndarray
        Its QUAL flags; HOT and COLD are set in place.
    nsigma : float
        hot_pixel_sigma.

    Returns
    -------
    median : float
        The master's median level (of pixels with data), e-.
    rms : float
        Its robust pixel-to-pixel scatter, e-.
    """
    med, sig = master_level(flux, qual)
    has = (qual & flags.NODATA) == 0
    excess = flux - med
    qual[has & (excess > nsigma * sig)] |= flags.HOT
    qual[has & (excess < -nsigma * sig)] |= flags.COLD
    # saturated in every frame of a dark: as hot as a pixel gets
    qual[((qual & flags.NODATA) != 0) & ((qual & flags.SATURATED) != 0)] |= flags.HOT
    return med, sig
