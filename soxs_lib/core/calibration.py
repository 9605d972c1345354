"""How a set's raw values become electrons on the detector's science region:
the gain, the region (binning), and the bias (a master bias or each frame's
overscan)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from soxs_lib.config import keywords as kw
from soxs_lib.config.detector import Detector, detector
from soxs_lib.config.errors import InputError


@dataclass
class Calibration:
    """How a set's raw values become electrons on the science region."""

    det: Detector
    gain: float                       # e-/ADU
    region: tuple                     # (row0, row1, col0, col1) of the science pixels
    pix_offset: np.ndarray | None     # master bias (e-) on the region, or None
    pix_var: np.ndarray | None        # its variance (e-^2)
    overscan: bool                    # bias level of each frame from its overscan


def _gain(fs, det: Detector) -> float:
    h = fs.first.header
    if kw.CONAD in h:
        g = float(h[kw.CONAD])
        if not np.isfinite(g) or g <= 0:
            raise InputError(f"{fs.first.path}: invalid {kw.CONAD} = {h[kw.CONAD]!r}")
        return g
    if kw.GAIN in h and float(h[kw.GAIN]) > 0:
        return 1.0 / float(h[kw.GAIN])
    return det.gain


def _region(fs, det: Detector):
    h = fs.first.header
    binx, biny = kw.binning(h, fs.arm)
    if binx < 1 or biny < 1:
        raise InputError(f"{fs.first.path}: invalid binning {binx}x{biny}")
    r0, r1, c0, c1 = det.science_region(binx, biny)
    nrow, ncol = fs.first.shape
    if r1 > nrow or c1 > ncol:
        raise InputError(
            f"{fs.first.path}: image is {ncol}x{nrow} pixels but the {det.arm} science "
            f"region at binning {binx}x{biny} needs at least {c1}x{r1}")
    return r0, r1, c0, c1


def calibration(fs) -> Calibration:
    """The set's gain, science region and bias (master bias or overscan).

    Parameters
    ----------
    fs : soxs_lib.io.frames.FrameSet
        The frames (``arm``, ``first``) and the master bias, read through
        ``fs.master_bias(region, gain)``.

    Returns
    -------
    Calibration

    Raises
    ------
    InputError
        An invalid gain or binning, frames too small for the science region,
        an unreadable master bias, or VIS frames without overscan and
        without a master bias.
    """
    det = detector(fs.arm)
    gain = _gain(fs, det)
    region = _region(fs, det)
    _, _, c0, c1 = region
    pix_offset = pix_var = None
    if fs.bias is not None:
        pix_offset, pix_var = fs.master_bias(region, gain)
    elif det.bias_from_overscan and c0 == 0 and c1 == fs.first.shape[1]:
        raise InputError(f"{fs.first.path}: no overscan columns to measure the bias "
                         f"level; add a {kw.BIAS_TAG} frame to the SOF")
    return Calibration(det, gain, region, pix_offset, pix_var,
                       det.bias_from_overscan and fs.bias is None)
