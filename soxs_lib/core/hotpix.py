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
    either side.  One bracket (or one partition) serves both."""
    n = x.size
    k = (n - 1) // 2
    got = bracket(x, k, n // 2)
    if got is None:
        x.partition((k, k + 1) if n > 1 else k)
        below, band = 0, x              # the ranks hold, x[:k] <= x[k] <= x[k + 1:]
    else:
        below, band = got               # sorted
    j = k - below
    mid = float(band[j])
    plain = mid if n % 2 else 0.5 * (mid + float(band[j + 1]))
    if got is None:
        equal = int(np.count_nonzero(x == mid))
        less = int(np.count_nonzero(x[:k] < mid))
        upper, lower = x[k + 1:], x[:k]
    else:                               # every value equal to mid is in the band
        lo, hi = np.searchsorted(band, mid, "left"), np.searchsorted(band, mid, "right")
        equal, less = int(hi - lo), below + int(lo)
        upper = band[hi:hi + 1] if hi < band.size else x
        lower = band[lo - 1:lo] if lo > 0 else x
    if equal < max(2, n // 1000):
        return plain, plain
    upper = upper[upper > mid]
    lower = lower[lower < mid]
    steps = [v for v in ((upper.min() - mid) if upper.size else None,
                         (mid - lower.max()) if lower.size else None) if v is not None]
    if not steps:
        return mid, plain
    w = float(min(steps))
    return mid - w / 2 + w * (n / 2 - less) / equal, plain


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
