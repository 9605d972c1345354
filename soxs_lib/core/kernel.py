"""Per-pixel clipping and combining of a dark stack: the compiled kernel
(its inputs and outputs are in ``model``, which needs no numba).

``clip_and_combine`` is a pure array function: one block of pixels of all
frames in, the master's FLUX/ERR/QUAL out.  For each pixel, the valid samples
(finite, below saturation) are converted to electrons and sorted, then:

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
   whatever path a pixel takes (the scan's, or after a sort).

The robust sigma of a pixel stack is the noise model
``sqrt(s_t^2 + max(median - L, 0))``: the temporal noise of one frame measured
from frame differences, plus the Poisson noise of the pixel's excess dark
signal, in electrons.  Unlike a scatter measured on a handful of samples it is
not inflated by the outliers it must reject.  ERR is the noise model at the
master's value divided by the square root of the number of surviving samples.
"""

from __future__ import annotations

from numba import njit, prange
import numpy as np

from soxs_lib.config import flags
from soxs_lib.core.model import FSIGMA, ITERATIONS, KFRAME, KSTACK, LBAR, LEVEL, NFRAMES, \
    OFFSET, S_T2, SATV, SCALE

_BLOCK = 512          # pixels per parallel work item


@njit(cache=True, nogil=True, inline="always")
def _median_sorted(v, m):
    h = m // 2
    if m % 2 == 1:
        return v[h]
    return 0.5 * (v[h - 1] + v[h])


@njit(cache=True, nogil=True, inline="always")
def _sigma(med, const):
    return np.sqrt(const[S_T2] + max(med - const[LBAR], 0.0))


@njit(cache=True, nogil=True, inline="always")
def _finite(raw):
    return (raw - raw) == 0          # NaN and infinities give NaN; no branch


@njit(cache=True, nogil=True, inline="always")
def _usable(raw, f, frames):
    """A sample that counts: finite and below the frame's saturation."""
    return _finite(raw) & (raw < frames[SATV, f])


@njit(cache=True, nogil=True, inline="always")
def _electrons(raw, f, frames, offset):
    return raw * frames[SCALE, f] + frames[OFFSET, f] - offset


@njit(cache=True, nogil=True, inline="always")
def _rogue(x, f, frames, kframe):
    return abs(x - frames[LEVEL, f]) > kframe * frames[FSIGMA, f]


@njit(cache=True, nogil=True, inline="always")
def _gather(stack, p, frames, pix_offset, vals, fidx):
    """The valid samples of pixel ``p`` in electrons into ``vals`` (their
    frames into ``fidx``), in frame order: their number."""
    n = 0
    for f in range(stack.shape[0]):
        raw = stack[f, p]
        if _usable(raw, f, frames):
            vals[n] = _electrons(raw, f, frames, pix_offset[p])
            fidx[n] = f
            n += 1
    return n


@njit(cache=True, nogil=True, inline="always")
def _sort(vals, fidx, n, tv, tf):
    """Sort the ``n`` samples and their frames by rank (the number of
    smaller values, and of equal ones before): no branch depends on the
    data, where an insertion sort mispredicts.  ``tv``, ``tf``: scratch."""
    for i in range(n):
        x = vals[i]
        r = 0
        for j in range(n):
            r += vals[j] < x
        for j in range(i):
            r += vals[j] == x
        tv[r] = x
        tf[r] = fidx[i]
    for i in range(n):
        vals[i] = tv[i]
        fidx[i] = tf[i]


@njit(cache=True, nogil=True, inline="always")
def _frame_clip(vals, fidx, ref, n, frames, const):
    """Step 1 on the sorted samples: the number kept, first in ``vals``."""
    kframe = const[KFRAME]
    nclean = 0
    for j in range(n):
        if not _rogue(vals[j], fidx[j], frames, kframe):
            ref[nclean] = vals[j]
            nclean += 1
    med = _median_sorted(ref, nclean) if nclean > 0 else _median_sorted(vals, n)
    lim = kframe * _sigma(med, const)
    m = 0
    for j in range(n):
        x = vals[j]
        f = fidx[j]
        if _rogue(x, f, frames, kframe) and abs(x - med) > lim:
            continue
        vals[m] = x
        fidx[m] = f
        m += 1
    return m if m > 0 else n       # nothing was moved: keep all rather than none


@njit(cache=True, nogil=True, inline="always")
def _stack_clip(vals, fidx, m, const):
    """Step 2 on the ``m`` sorted samples kept (and their frames): the
    number kept.  Kept samples move down in place; where none is kept,
    none moved."""
    for _ in range(int(const[ITERATIONS])):
        med = _median_sorted(vals, m)
        lim = const[KSTACK] * _sigma(med, const)
        m2 = 0
        for j in range(m):
            if abs(vals[j] - med) <= lim:
                vals[m2] = vals[j]
                fidx[m2] = fidx[j]
                m2 += 1
        if m2 == m or m2 == 0:
            break
        m = m2
    return m


@njit(cache=True, nogil=True, inline="always")
def _keeps_all(vals, n, lo, hi, const):
    """Whether stacked clipping keeps all ``n`` samples (none rogue, least
    ``lo``, greatest ``hi``), without a sort: the median is within ``lim``
    (the limit at ``lo``, the least any median gives, shaved below
    rounding) of both ends when at most (n - 1) // 2 samples are not."""
    lim = const[KSTACK] * _sigma(lo, const) * (1.0 - 1e-9)
    far_lo = 0
    far_hi = 0
    for j in range(n):
        far_lo += (hi - vals[j]) > lim
        far_hi += (vals[j] - lo) > lim
    k = (n - 1) // 2
    return lim >= 0.0 and far_lo <= k and far_hi <= k


@njit(cache=True, nogil=True, inline="always")
def _kept_sum(stack, p, frames, offset, fidx, m, mark):
    """The sum of pixel ``p``'s samples of frames ``fidx[:m]`` in frame
    order, as the scan adds them (``mark``: scratch, all False)."""
    for j in range(m):
        mark[fidx[j]] = True
    total = 0.0
    for f in range(stack.shape[0]):
        if mark[f]:
            total += _electrons(stack[f, p], f, frames, offset)
            mark[f] = False
    return total


@njit(cache=True, nogil=True, inline="always")
def _finish(sums, counts, p, mean, m, n, pvar, const):
    """Store the mean of the m surviving samples of n valid ones (as
    ``model.finish`` does for whole arrays); LOWCOVER if too few survive."""
    sums[0, p] = mean
    sums[1, p] = np.sqrt((const[S_T2] + max(mean - const[LBAR], 0.0)) / m + pvar)
    counts[0, p] = m
    counts[1, p] = n - m
    return flags.LOWCOVER if 2 * m < const[NFRAMES] else 0


@njit(cache=True, nogil=True)
def _scan(row, f, frames, kframe, off, ns, sums, qq):
    """Frame ``f``'s samples of a block of pixels into each pixel's running
    (valid, rogue) counts ``ns``, (sum, min, max) ``sums`` and flags ``qq``,
    in electrons, as ``_gather`` collects them pixel by pixel.  Branch-free
    on contiguous rows, so it runs on SIMD lanes."""
    nvalid, nrogue, total, lo, hi = ns[0], ns[1], sums[0], sums[1], sums[2]
    for i in range(row.size):
        raw = row[i]
        ok = _usable(raw, f, frames)
        x = _electrons(raw, f, frames, off[i])
        nvalid[i] += ok
        nrogue[i] += ok & _rogue(x, f, frames, kframe)
        total[i] += x if ok else 0.0
        low = x if ok else np.inf
        lo[i] = low if low < lo[i] else lo[i]
        high = x if ok else -np.inf
        hi[i] = high if high > hi[i] else hi[i]
        qq[i] |= np.uint8(0 if ok else (flags.SATURATED if _finite(raw) else flags.BADINPUT))


@njit(parallel=True, cache=True, nogil=True)
def clip_and_combine(stack, frames, const, pix, sums, counts, qual):
    """Clip and combine one block.

    Each work item of ``_BLOCK`` pixels is first scanned frame by frame
    (``_scan``); a pixel that nothing can clip is finished from the scan,
    the others are gathered, sorted and clipped one by one.

    Parameters
    ----------
    stack : numpy.ndarray
        (N, P) raw values (BSCALE/BZERO not applied), C-contiguous;
        electrons are ``stack * frames[SCALE, f] + frames[OFFSET, f] -
        pix[0, p]``, and a sample at or above ``frames[SATV, f]`` is
        saturated.
    frames : numpy.ndarray
        ``FrameModel.table()``.
    const : numpy.ndarray
        ``FrameModel.constants(...)``.
    pix : numpy.ndarray
        (2, P): a master bias's offset (e-) and variance (e-^2) per pixel.
    sums, counts, qual : numpy.ndarray
        Written: (2, P) FLUX and ERR, (2, P) samples used and rejected,
        (P,) QUAL (not a tuple: numba's parallel loops do not write
        through arrays taken from one).
    """
    nfr, npix = stack.shape
    kframe = const[KFRAME]
    spread = const[KSTACK] * np.sqrt(const[S_T2])
    nblocks = (npix + _BLOCK - 1) // _BLOCK
    for b in prange(nblocks):
        vals, ref, tv = np.empty((3, nfr), np.float64)     # a pixel's samples, scratch
        fidx, tf = np.empty((2, nfr), np.int64)            # their frames, scratch
        mark = np.zeros(nfr, np.bool_)
        p0 = b * _BLOCK
        w = min(npix, p0 + _BLOCK) - p0
        off = pix[0, p0:p0 + w].copy()
        ns = np.zeros((2, w), np.int32)
        acc = np.empty((3, w), np.float64)
        acc[0] = 0.0
        acc[1] = np.inf
        acc[2] = -np.inf
        qq = np.zeros(w, np.uint8)
        for f in range(nfr):
            _scan(stack[f, p0:p0 + w], f, frames, kframe, off, ns, acc, qq)
        for i in range(w):
            p = p0 + i
            n = ns[0, i]
            if n == 0:
                sums[:, p] = np.nan
                counts[:, p] = 0
                qual[p] = qq[i] | flags.NODATA | flags.LOWCOVER
            elif ns[1, i] == 0 and acc[2, i] - acc[1, i] <= spread:
                # nothing can be clipped (no rogue sample, all within kstack *
                # s_t, the least limit, of the median): most pixels of a dark
                qual[p] = qq[i] | _finish(sums, counts, p, acc[0, i] / n, n, n, pix[1, p], const)
            else:
                n = _gather(stack, p, frames, pix[0], vals, fidx)
                m, total = n, acc[0, i]
                if ns[1, i] > 0 or not _keeps_all(vals, n, acc[1, i], acc[2, i], const):
                    _sort(vals, fidx, n, tv, tf)
                    m = _stack_clip(vals, fidx, _frame_clip(vals, fidx, ref, n, frames, const),
                                    const)
                    total = _kept_sum(stack, p, frames, pix[0, p], fidx, m, mark)
                qual[p] = qq[i] | _finish(sums, counts, p, total / m, m, n, pix[1, p], const)


# one signature, whatever the block: the stack is a contiguous block (its rows
# run on SIMD lanes), the (2, P) arrays are views of row blocks (strided) or of
# a whole region (contiguous), and both take the strided one
_SIGNATURE = ("void(float32[:, ::1], float64[:, ::1], float64[::1], float32[:, :], "
              "float32[:, :], uint16[:, :], uint8[::1])")


def compiled():
    """``clip_and_combine`` loaded from numba's cache (compiled the first
    time) for its one signature, and closed to others; not at import, as it
    starts numba's OpenMP threads, after which a process must not fork
    (``reduce all`` imports this module before it forks its workers).

    Returns
    -------
    numba.core.dispatcher.Dispatcher
    """
    if not clip_and_combine.signatures:
        clip_and_combine.compile(_SIGNATURE)
        clip_and_combine.disable_compile()
    return clip_and_combine
