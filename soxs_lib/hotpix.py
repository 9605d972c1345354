"""Hot (and cold) pixels of a master dark, recorded in QUAL."""

from __future__ import annotations

import numpy as np

from . import flags
from .stats import MAD_TO_SIGMA


def master_level(flux: np.ndarray, qual: np.ndarray):
    """Median and MAD-based sigma of the master over pixels with data."""
    good = flux[(qual & flags.NODATA) == 0]
    if good.size == 0:
        return np.nan, np.nan
    med = float(np.median(good))
    return med, MAD_TO_SIGMA * float(np.median(np.abs(good - med)))


def flag_hot_pixels(flux: np.ndarray, qual: np.ndarray, nsigma: float):
    """Set HOT (COLD) on pixels more than nsigma robust sigmas of the master
    above (below) its median.  The robust sigma of the master is the scale of
    its pixel-to-pixel scatter, so with the default threshold a pure-noise
    pixel is flagged with a probability of order 1e-7, not 1e-3 as a
    3-sigma cut would give."""
    med, sig = master_level(flux, qual)
    has = (qual & flags.NODATA) == 0
    excess = flux - med
    qual[has & (excess > nsigma * sig)] |= flags.HOT
    qual[has & (excess < -nsigma * sig)] |= flags.COLD
    # saturated in every frame of a dark: as hot as a pixel gets
    qual[((qual & flags.NODATA) != 0) & ((qual & flags.SATURATED) != 0)] |= flags.HOT
    return med, sig
