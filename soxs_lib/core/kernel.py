"""Per-pixel clipping and combining of a dark stack, and a sort of float32
values: the compiled core (``kernel.c``, built as ``soxs_lib.core._kernel``)
and its contract.  Its inputs and outputs are in ``model``.

``clip_and_combine`` is a pure array function: one block of pixels of all
frames in, the master's FLUX/ERR/QUAL out.  For each pixel, the valid samples
(finite, below saturation) are converted to electrons, then:

1. frame clipping: a sample is a rogue pixel of its own frame when
   ``|x - L_f| > k_frame * s_f`` (the frame's clipped median level ``L_f`` and
   robust sigma ``s_f``).  It is rejected when it also departs by more than
   ``k_frame * sigma`` from the median of the pixel's non-rogue samples (of all
   samples if every one is rogue).  A hot pixel is rogue in every frame but
   consistent along its stack, so it keeps all its samples; a cosmic-ray hit
   is rejected even when hits share a pixel in half of the frames.
2. stacked clipping: iteratively reject ``|x - median| > k_stack * sigma``
   until nothing changes or the iterations run out.
3. the master is the mean of the surviving samples, added in frame order
   whether the pixel is finished from a scan of its samples or clipped.

Every median is the one a sort gives (``median``).

The robust sigma of a pixel stack is the noise model
``sqrt(s_t^2 + max(median - L, 0))``: the temporal noise of one frame measured
from frame differences, plus the Poisson noise of the pixel's excess dark
signal, in electrons.  Unlike a scatter measured on a handful of samples it is
not inflated by the outliers it must reject.  ERR is the noise model at the
master's value divided by the square root of the number of surviving samples.

The core is plain C with POSIX threads called through ctypes, which releases
the GIL for the call: a process loads it in a millisecond, nothing compiles
at run time, and a process that ran it may fork.
"""

from __future__ import annotations

import ctypes
from importlib.util import find_spec

import numpy as np

from soxs_lib.config import flags
from soxs_lib.core.model import FSIGMA, ITERATIONS, KFRAME, KSTACK, LBAR, LEVEL, NFRAMES, \
    OFFSET, S_T2, SATV, SCALE, FrameModel

_LIBRARY = "soxs_lib.core._kernel"
_P, _I64, _F64, _U8 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double, ctypes.c_uint8


class _Set(ctypes.Structure):
    # kernel.c's soxs_set, field for field
    _fields_ = [("scale", _P), ("offset", _P), ("satv", _P), ("level", _P), ("fsigma", _P),
                ("nframes", _I64), ("iterations", _I64), ("kframe", _F64),
                ("kstack", _F64), ("s_t2", _F64), ("lbar", _F64), ("saturated", _U8),
                ("badinput", _U8), ("nodata", _U8), ("lowcover", _U8)]


class _Block(ctypes.Structure):
    # kernel.c's soxs_block, field for field
    _fields_ = [("rows", _P), ("stride", _P), ("type", _P), ("offset", _P), ("var", _P),
                ("flux", _P), ("err", _P), ("used", _P), ("rejected", _P), ("qual", _P),
                ("nrows", _I64), ("ncol", _I64)]


# how a frame's values may be stored: kernel.c's codes (its enum's order)
_STORED = {np.dtype(t): code for code, t in
           enumerate(("=f4", ">f4", ">f8", "u1", ">i2", ">i4", ">i8"))}


def stored(dtype) -> bool:
    """Whether the kernel reads values stored as ``dtype`` (native float32
    and FITS's big-endian types: every BITPIX)."""
    return np.dtype(dtype) in _STORED


def _load() -> ctypes.CDLL:
    spec = find_spec(_LIBRARY)
    if spec is None or not spec.origin:
        raise ImportError(f"{_LIBRARY}, soxs_mdark's compiled kernel, is not built: install "
                          "the package (pip install ., or make install in a checkout), "
                          "which compiles soxs_lib/core/kernel.c")
    lib = ctypes.CDLL(spec.origin)
    lib.soxs_clip_and_combine.argtypes = [ctypes.POINTER(_Set), ctypes.POINTER(_Block),
                                          ctypes.c_int]
    lib.soxs_sort_float32.argtypes = [_P, _I64, _P]
    lib.soxs_band_float32.argtypes = [_P, _I64, ctypes.c_float, ctypes.c_float, _P, _I64,
                                      ctypes.POINTER(_I64)]
    lib.soxs_band_float32.restype = _I64
    lib.soxs_median.argtypes = [_P, _I64, _P]
    lib.soxs_median.restype = _F64
    return lib


_lib = _load()


def _address(a: np.ndarray, dtype, size: int) -> int:
    """Where ``a``'s ``size`` values of ``dtype`` start; a ValueError unless
    it holds exactly that, contiguous."""
    if a.dtype != dtype or a.size != size or not a.flags.c_contiguous:
        raise ValueError(f"the kernel takes {size} contiguous {np.dtype(dtype)} values, "
                         f"not {a.size} {a.dtype} ones (contiguous: {a.flags.c_contiguous})")
    return a.ctypes.data


class StackSet:
    """A set of frames and its clipping, as the kernel reads them.

    Parameters
    ----------
    model : FrameModel
        Per-frame conversion to electrons, saturation, levels and noise.
    clipping : tuple
        (frame_clipping_sigma, stacked_clipping_sigma,
        stacked_clipping_iterations).
    """

    def __init__(self, model: FrameModel, clipping: tuple):
        self.frames, const = model.table(), model.constants(*clipping)   # kept alive here
        n = self.frames.shape[1]
        rows = {name: _address(self.frames[row], np.float64, n) for name, row in
                (("scale", SCALE), ("offset", OFFSET), ("satv", SATV), ("level", LEVEL),
                 ("fsigma", FSIGMA))}
        self.c = _Set(**rows, nframes=int(const[NFRAMES]), iterations=int(const[ITERATIONS]),
                      kframe=const[KFRAME], kstack=const[KSTACK], s_t2=const[S_T2],
                      lbar=const[LBAR], saturated=flags.SATURATED, badinput=flags.BADINPUT,
                      nodata=flags.NODATA, lowcover=flags.LOWCOVER)

    @property
    def nframes(self) -> int:
        """The number of frames."""
        return self.c.nframes


def clip_and_combine(kset: StackSet, rows: list, c0: int, pix: tuple, out: tuple,
                     threads: int) -> None:
    """Clip and combine a block of rows of all frames.

    Each work item of up to 512 pixels of a row is read from each frame and
    scanned frame by frame; a pixel that nothing can clip is finished from
    the scan, the others are gathered and clipped one by one.

    Parameters
    ----------
    kset : StackSet
        The frames and the clipping.
    rows : list of numpy.ndarray
        Per frame, the block's rows, (R, columns) in the stored type
        (``stored``: native float32 or big-endian FITS values), BSCALE and
        BZERO not applied; each row's values contiguous.  Electrons are
        ``value * scale[f] + offset[f] - pix[0][p]`` of the value as
        float32, and a value at or above the frame's saturation value is
        saturated.
    c0 : int
        The first column of the region: each row's ``C`` columns from it
        are stacked, ``C`` the length of the outputs' rows.
    pix : tuple of numpy.ndarray
        (offset, variance): a master bias's offset (e-) and variance (e-^2)
        per pixel, float32, (R, C) each.
    out : tuple of numpy.ndarray
        Written, (R, C) each: FLUX and ERR (float32), samples used and
        rejected (uint16), QUAL (uint8).
    threads : int
        Threads to run on, this one among them.

    Raises
    ------
    ValueError
        Not one block of rows per frame, a type the kernel does not read,
        or an array not of its type and size, or not contiguous.
    MemoryError
        The kernel found no memory for its scratch.
    """
    nrows, ncol = out[0].shape
    if len(rows) != kset.nframes:
        raise ValueError(f"the kernel takes {kset.nframes} frames, not {len(rows)}")
    for r in rows:
        if r.dtype not in _STORED or r.shape[0] != nrows or r.shape[1] < c0 + ncol \
                or r.strides[1] != r.dtype.itemsize:
            raise ValueError(f"the kernel takes {nrows} rows of at least {c0 + ncol} "
                             f"contiguous values, not {r.shape} of {r.dtype}")
    firsts = (_P * len(rows))(*(r.ctypes.data + c0 * r.dtype.itemsize for r in rows))
    strides = (_I64 * len(rows))(*(r.strides[0] for r in rows))
    types = (ctypes.c_int32 * len(rows))(*(_STORED[r.dtype] for r in rows))
    size = nrows * ncol
    arrays = [(pix[0], np.float32, size), (pix[1], np.float32, size),
              (out[0], np.float32, size), (out[1], np.float32, size),
              (out[2], np.uint16, size), (out[3], np.uint16, size), (out[4], np.uint8, size)]
    block = _Block(ctypes.addressof(firsts), ctypes.addressof(strides),
                   ctypes.addressof(types), *(_address(*a) for a in arrays), nrows, ncol)
    if _lib.soxs_clip_and_combine(ctypes.byref(kset.c), ctypes.byref(block), int(threads)):
        raise MemoryError("the stacking kernel found no memory for its scratch")


def sort_float32(x: np.ndarray) -> np.ndarray:
    """The values of ``x`` sorted, as ``numpy.sort`` sorts finite values.

    A least-significant-digit radix sort (three passes of 11 bits): on the
    sizes the frame statistics sort, several times quicker than numpy's
    comparison sort (see the benchmark).  -0.0 comes before 0.0, which numpy
    leaves in any order, and is equal to it in every sum, median and
    comparison the statistics make.

    Parameters
    ----------
    x : numpy.ndarray
        1-D values; float32 ones are radix-sorted, others go to numpy.
        NaN are not expected (the statistics drop them first).

    Returns
    -------
    numpy.ndarray
        A new sorted array of the same type.

    Raises
    ------
    MemoryError
        No memory for the sort's keys.
    """
    if x.dtype != np.float32 or x.ndim != 1:
        return np.sort(x)
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    if _lib.soxs_sort_float32(x.ctypes.data, x.size, out.ctypes.data):
        raise MemoryError(f"no memory to sort {x.size} values")
    return out


def band(x: np.ndarray, lo, hi, cap: int) -> tuple:
    """The values of ``x`` within [lo, hi], and how many lie below.

    Parameters
    ----------
    x : numpy.ndarray
        1-D values, NaN-free; float32 ones are scanned in one compiled
        pass, others by numpy.
    lo, hi : float
        The band, ends included (of ``x``'s type).
    cap : int
        The most values wanted.

    Returns
    -------
    below : int
        Values less than ``lo``.
    size : int
        Values within the band.
    inside : numpy.ndarray or None
        Those values in their order; None if there are more than ``cap``.
    """
    if x.dtype != np.float32 or x.ndim != 1:
        inside = (x >= lo) & (x <= hi)
        size = int(np.count_nonzero(inside))
        return int(np.count_nonzero(x < lo)), size, x[inside] if size <= cap else None
    x = np.ascontiguousarray(x)
    cap = max(0, min(cap, x.size))
    out, below = np.empty(cap + 1, np.float32), _I64()
    size = _lib.soxs_band_float32(x.ctypes.data, x.size, lo, hi, out.ctypes.data, cap,
                                  ctypes.byref(below))
    return below.value, size, out[:size] if size <= cap else None


def median(v: np.ndarray) -> float:
    """The median of ``v`` as the kernel finds it for a pixel's samples:
    the one a sort gives, by bisection and rank (``v`` is not moved).

    Parameters
    ----------
    v : numpy.ndarray
        1-D float64 values, finite, at least one.

    Returns
    -------
    float
    """
    v, band = np.ascontiguousarray(v, np.float64), np.empty(len(v))
    return _lib.soxs_median(v.ctypes.data, v.size, band.ctypes.data)
