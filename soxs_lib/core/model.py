"""The compiled kernel's inputs (``FrameModel``) and outputs
(``StackResult``), and its finish step over whole arrays in numpy
(``finish``), for a combiner other than the kernel: CPL's, in the PyEsoRex
recipe."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from soxs_lib.config import flags

# rows of the per-frame table (``FrameModel.table``)
SCALE, OFFSET, SATV, LEVEL, FSIGMA = range(5)
# entries of the set's constants (``FrameModel.constants``)
KFRAME, KSTACK, ITERATIONS, S_T2, LBAR, NFRAMES = range(6)


@dataclass
class FrameModel:
    """What the kernel needs to know about each frame and the set."""

    scale: np.ndarray      # (N,) electrons per raw unit
    offset: np.ndarray     # (N,) electrons added after scaling
    satv: np.ndarray       # (N,) raw value at and above which a sample is saturated
    level: np.ndarray      # (N,) clipped median level of each frame, electrons
    fsigma: np.ndarray     # (N,) robust sigma of each frame, electrons
    s_t: float             # temporal noise of one frame, electrons
    lbar: float            # median of the frame levels, electrons

    def table(self) -> np.ndarray:
        """(5, N) float64: the rows SCALE, OFFSET, SATV, LEVEL, FSIGMA."""
        return np.ascontiguousarray(np.stack(
            [self.scale, self.offset, self.satv, self.level, self.fsigma]), np.float64)

    def constants(self, kframe: float, kstack: float, iterations: int) -> np.ndarray:
        """float64 array indexed by KFRAME, KSTACK, ITERATIONS, S_T2, LBAR, NFRAMES."""
        return np.array([kframe, kstack, iterations, float(self.s_t) ** 2,
                         float(self.lbar), len(self.scale)], np.float64)


@dataclass
class StackResult:
    """The kernel's output per pixel."""

    flux: np.ndarray
    err: np.ndarray
    nused: np.ndarray
    qual: np.ndarray
    nrej: np.ndarray


def finish(mean, nused, nvalid, qual, pix_var, const) -> StackResult:
    """The kernel's finish step over whole arrays, in numpy: FLUX, ERR, QUAL
    and the counts from a mean made by another combiner (CPL's).

    Parameters
    ----------
    mean : array-like
        The combined mean, e- (anything where ``nused`` is 0).
    nused : array-like
        Samples the combiner kept per pixel.
    nvalid : numpy.ndarray
        Valid samples (finite, not saturated) per pixel.
    qual : numpy.ndarray
        BADINPUT and SATURATED flags per pixel.
    pix_var : numpy.ndarray or float
        Variance of the master bias, e-^2 (0 without one).
    const : numpy.ndarray
        ``FrameModel.constants(...)`` (S_T2, LBAR and NFRAMES are used).

    Returns
    -------
    StackResult
        As the kernel's: NaN, NODATA and LOWCOVER where no sample was kept.
    """
    m = np.asarray(nused).astype(np.uint16)
    with np.errstate(divide="ignore", invalid="ignore"):
        flux = np.where(m > 0, np.asarray(mean, np.float32), np.float32(np.nan))
        err = np.sqrt((const[S_T2] + np.maximum(flux - const[LBAR], 0.0)) / m + pix_var)
    lowcover = 2 * m.astype(np.int32) < const[NFRAMES]
    q = (qual | np.where(lowcover, flags.LOWCOVER, 0)
         | np.where(m == 0, flags.NODATA, 0)).astype(np.uint8)
    return StackResult(flux.astype(np.float32), err.astype(np.float32), m, q,
                       (nvalid - np.minimum(m, nvalid)).astype(np.uint16))
