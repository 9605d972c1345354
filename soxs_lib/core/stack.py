"""Per-pixel clipping and combining of a dark stack.

``clip_and_combine``, the compiled kernel, is a pure array function: one
block of pixels of all frames in, the master's FLUX/ERR/QUAL out.
``stack_frames`` is its only caller: it streams frames (``RawImage`` or the
in-memory ``ArrayImage``) through it block by block, so the memory used does
not grow with the number of frames beyond one block.

For each pixel, the valid samples (finite, below saturation) are converted
to electrons and sorted, then:

1. frame clipping: a sample is a rogue pixel of its own frame when
   ``|x - L_f| > k_frame * s_f`` (the frame's clipped median level ``L_f`` and
   robust sigma ``s_f``).  It is rejected when it also departs by more than
   ``k_frame * sigma`` from the median of the pixel's non-rogue samples (of all
   samples if every one is rogue).  A hot pixel is rogue in every frame but
   consistent along its stack, so it keeps all its samples; a cosmic-ray hit
   is rejected even when hits share a pixel in half of the frames.
2. stacked clipping: iteratively reject ``|x - median| > k_stack * sigma``
   until nothing changes or the iterations run out.
3. the master is the mean of the surviving samples.

The robust sigma of a pixel stack is the noise model
``sqrt(s_t^2 + max(median - L, 0))``: the temporal noise of one frame measured
from frame differences, plus the Poisson noise of the pixel's excess dark
signal, in electrons.  Unlike a scatter measured on a handful of samples it is
not inflated by the outliers it must reject.  ERR is the noise model at the master's value divided by the
square root of the number of surviving samples.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
from numba import njit, prange
import numpy as np

from soxs_lib.config import flags
from soxs_lib.runtime.pool import thread_count

_BLOCK = 512          # pixels per parallel work item


@njit(cache=True, nogil=True, inline="always")
def _median_sorted(v, m):
    h = m // 2
    if m % 2 == 1:
        return v[h]
    return 0.5 * (v[h - 1] + v[h])


@njit(cache=True, nogil=True, inline="always")
def _sigma(med, s_t2, lbar):
    return np.sqrt(s_t2 + max(med - lbar, 0.0))


@njit(parallel=True, cache=True, nogil=True)
def clip_and_combine(stack, scale, offset, satv, pix_offset, pix_var, level, fsigma,
                     kframe, kstack, iterations, s_t2, lbar,
                     flux, err, nused, qual, nrej):
    """Clip and combine one block.

    stack: (N, P) raw values (ADU after BSCALE/BZERO are *not* yet applied);
    electrons are ``stack * scale[f] + offset[f] - pix_offset[p]``.  A sample
    with ``stack >= satv[f]`` is saturated.  Outputs are (P,) arrays.
    """
    nfr, npix = stack.shape
    s_t = np.sqrt(s_t2)
    nblocks = (npix + _BLOCK - 1) // _BLOCK
    for b in prange(nblocks):
        vals = np.empty(nfr, np.float64)
        fidx = np.empty(nfr, np.int64)
        ref = np.empty(nfr, np.float64)
        for p in range(b * _BLOCK, min(npix, (b + 1) * _BLOCK)):
            q = 0
            n = 0
            total = 0.0
            lo = np.inf
            hi = -np.inf
            rogue = False
            for f in range(nfr):
                raw = stack[f, p]
                if not np.isfinite(raw):
                    q |= flags.BADINPUT
                    continue
                if raw >= satv[f]:
                    q |= flags.SATURATED
                    continue
                x = raw * scale[f] + offset[f] - pix_offset[p]
                vals[n] = x
                fidx[n] = f
                n += 1
                total += x
                lo = min(lo, x)
                hi = max(hi, x)
                if abs(x - level[f]) > kframe * fsigma[f]:
                    rogue = True
            if n == 0:
                flux[p] = np.nan
                err[p] = np.nan
                nused[p] = 0
                nrej[p] = 0
                qual[p] = q | flags.NODATA | flags.LOWCOVER
                continue
            if not rogue and hi - lo <= kstack * s_t:
                # nothing can be clipped: no sample is rogue in its frame, and
                # every one is within kstack * s_t (the smallest noise sigma)
                # of the median; most pixels of a dark take this path
                _finish(p, total / n, n, n, nfr, q, s_t2, lbar, pix_var, flux, err,
                        nused, qual, nrej)
                continue
            for i in range(1, n):           # insertion sort: n is small
                x = vals[i]
                f = fidx[i]
                j = i
                while j > 0 and vals[j - 1] > x:
                    vals[j] = vals[j - 1]
                    fidx[j] = fidx[j - 1]
                    j -= 1
                vals[j] = x
                fidx[j] = f
            # 1. frame clipping about the median of the non-rogue samples
            nclean = 0
            for j in range(n):
                f = fidx[j]
                if abs(vals[j] - level[f]) <= kframe * fsigma[f]:
                    ref[nclean] = vals[j]
                    nclean += 1
            med = _median_sorted(ref, nclean) if nclean > 0 else _median_sorted(vals, n)
            lim = kframe * _sigma(med, s_t2, lbar)
            m = 0
            for j in range(n):
                x = vals[j]
                f = fidx[j]
                if abs(x - level[f]) > kframe * fsigma[f] and abs(x - med) > lim:
                    continue
                vals[m] = x
                fidx[m] = f
                m += 1
            if m == 0:      # nothing was moved: keep all rather than none
                m = n
            # 2. stacked clipping
            for _ in range(iterations):
                med = _median_sorted(vals, m)
                lim = kstack * _sigma(med, s_t2, lbar)
                m2 = 0
                for j in range(m):
                    if abs(vals[j] - med) <= lim:
                        m2 += 1
                if m2 == m or m2 == 0:
                    break
                m2 = 0
                for j in range(m):
                    if abs(vals[j] - med) <= lim:
                        vals[m2] = vals[j]
                        m2 += 1
                m = m2
            # 3. combine
            total = 0.0
            for j in range(m):
                total += vals[j]
            _finish(p, total / m, m, n, nfr, q, s_t2, lbar, pix_var, flux, err, nused,
                    qual, nrej)


@njit(cache=True, nogil=True, inline="always")
def _finish(p, mean, m, n, nfr, q, s_t2, lbar, pix_var, flux, err, nused, qual, nrej):
    """Store the mean of the m surviving samples of n valid ones."""
    flux[p] = mean
    err[p] = np.sqrt((s_t2 + max(mean - lbar, 0.0)) / m + pix_var[p])
    nused[p] = m
    nrej[p] = n - m
    if 2 * m < nfr:
        q |= flags.LOWCOVER
    qual[p] = q


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


@dataclass
class StackResult:
    """The kernel's output per pixel."""

    flux: np.ndarray
    err: np.ndarray
    nused: np.ndarray
    qual: np.ndarray
    nrej: np.ndarray


def n_threads(requested: int = 0) -> int:
    """Threads for the kernel: the ``nthreads`` policy, capped by numba's pool."""
    return max(1, min(thread_count(requested), numba.config.NUMBA_NUM_THREADS))


class ArrayImage:
    """An image held in memory with the row interface of ``RawImage``
    (``dtype``, ``shape``, ``read_rows_raw``), so arrays take the same path
    to the kernel as files."""

    def __init__(self, data: np.ndarray):
        self.data = np.ascontiguousarray(data)
        self.dtype, self.shape = self.data.dtype, self.data.shape

    def read_rows_raw(self, r0: int, r1: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows [r0, r1), copied into ``out`` if given."""
        if out is None:
            return self.data[r0:r1].copy()
        out[...] = self.data[r0:r1]
        return out


def stack_arrays(stack: np.ndarray, model: FrameModel, kframe: float, kstack: float,
                 iterations: int, pix_offset=None, pix_var=None,
                 threads: int = 0) -> StackResult:
    """Clip and combine a whole (N, ny, nx) stack held in memory.

    Parameters
    ----------
    stack : numpy.ndarray
        N frames of raw values (``model`` converts them to electrons).
    model, kframe, kstack, iterations, pix_offset, pix_var, threads
        As for ``stack_frames``.

    Returns
    -------
    StackResult
        Arrays of shape (ny, nx).
    """
    n, ny, nx = stack.shape
    return stack_frames([ArrayImage(f) for f in stack], (0, ny, 0, nx), model, kframe,
                        kstack, iterations, max(1, stack.nbytes) * 2, pix_offset,
                        pix_var, threads)


def warm_up(threads: int = 0) -> None:
    """Load the compiled kernel from numba's cache (or compile it) and run
    it once, which starts its threads.

    Parameters
    ----------
    threads : int
        Kernel threads to start (``n_threads``).
    """
    stack_arrays(np.zeros((3, 1, 1), np.float32), FrameModel(
        np.ones(3), np.zeros(3), np.ones(3), np.zeros(3), np.ones(3), 1.0, 0.0), 3, 3, 1,
        threads=threads)


def stack_frames(images, region, model: FrameModel, kframe: float, kstack: float,
                 iterations: int, chunk_bytes: int, pix_offset=None, pix_var=None,
                 threads: int = 0) -> StackResult:
    """Stream the science region of ``images`` through ``clip_and_combine``
    in blocks of rows.

    The next block is read while the current one is combined; two blocks of
    ``chunk_bytes`` at most are held, whatever the number of frames.

    Parameters
    ----------
    images : sequence of RawImage or ArrayImage
        The frames, each with ``dtype``, ``shape`` and ``read_rows_raw``.
    region : tuple of int
        (row0, row1, col0, col1) of the pixels to stack, end exclusive.
    model : FrameModel
        Per-frame conversion to electrons, saturation, levels and noise.
    kframe, kstack : float
        frame_clipping_sigma and stacked_clipping_sigma.
    iterations : int
        stacked_clipping_iterations.
    chunk_bytes : int
        Memory budget of one block of the stack.
    pix_offset, pix_var : numpy.ndarray or None
        Per-pixel offset (e-) subtracted and variance (e-^2) added, of the
        region's shape (a master bias); zeros if None.
    threads : int
        Kernel threads (``n_threads``).

    Returns
    -------
    StackResult
        FLUX (NaN where no valid sample), ERR, number of samples used, QUAL
        and number rejected, of the region's shape.
    """
    r0, r1, c0, c1 = region
    nfr, ncol = len(images), c1 - c0
    rows = int(max(1, min(r1 - r0, chunk_bytes // (2 * nfr * ncol * 4))))
    flux = np.empty((r1 - r0, ncol), np.float32)
    err = np.empty_like(flux)
    nused = np.empty((r1 - r0, ncol), np.uint16)
    qual = np.empty((r1 - r0, ncol), np.uint8)
    nrej = np.empty((r1 - r0, ncol), np.uint16)
    zeros = np.zeros(rows * ncol, np.float32)
    raw_bufs = [None] * nfr

    def read(a, b, buf):
        for f, img in enumerate(images):
            if raw_bufs[f] is None or raw_bufs[f].dtype != img.dtype:
                raw_bufs[f] = np.empty((rows, img.shape[1]), img.dtype)
            raw = img.read_rows_raw(a, b, raw_bufs[f][: b - a])
            np.copyto(buf[f, : b - a], raw[:, c0:c1], casting="unsafe")
        return buf

    old = numba.get_num_threads()
    numba.set_num_threads(n_threads(threads))
    try:
        bufs = [np.empty((nfr, rows, ncol), np.float32) for _ in range(2)]
        starts = list(range(r0, r1, rows))
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(read, starts[0], min(starts[0] + rows, r1), bufs[0])
            for k, a in enumerate(starts):
                b = min(a + rows, r1)
                block = pending.result()
                if k + 1 < len(starts):
                    na = starts[k + 1]
                    pending = pool.submit(read, na, min(na + rows, r1), bufs[(k + 1) % 2])
                nrow = b - a
                sl = slice(a - r0, b - r0)
                flat = block[:, :nrow].reshape(nfr, -1)
                npix = nrow * ncol
                po = zeros[:npix] if pix_offset is None else \
                    np.ascontiguousarray(pix_offset[sl]).reshape(-1)
                pv = zeros[:npix] if pix_var is None else \
                    np.ascontiguousarray(pix_var[sl]).reshape(-1)
                clip_and_combine(flat, model.scale, model.offset, model.satv, po, pv,
                                 model.level, model.fsigma, float(kframe), float(kstack),
                                 int(iterations), float(model.s_t) ** 2, float(model.lbar),
                                 flux[sl].reshape(-1), err[sl].reshape(-1),
                                 nused[sl].reshape(-1), qual[sl].reshape(-1),
                                 nrej[sl].reshape(-1))
    finally:
        numba.set_num_threads(old)
    return StackResult(flux, err, nused, qual, nrej)
