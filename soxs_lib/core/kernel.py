"""Per-pixel clipping and combining of a dark stack: the compiled kernel
(its inputs and outputs are in ``model``, which needs no numba).

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
   whether the pixel is finished from the scan or clipped.

Every median is the one a sort gives (``_median`` selects it by rank).

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
def _bracket(v, m, k, u):
    """Bisect [least, greatest] of ``v[:m]`` by counts, keeping its ranks
    ``k`` and ``u`` between ``a`` and ``b`` (``below`` values under ``a``,
    ``above`` over ``b``), until at most 8 values lie there: (a, b, below,
    False); or (mid, mid, below, True) where ``mid`` splits ranks k < u."""
    a, b = np.inf, -np.inf
    for j in range(m):
        a, b = min(a, v[j]), max(b, v[j])
    below = above = 0
    while m - below - above > 8:
        mid = 0.5 * (a + b)
        lt = gt = 0
        for j in range(m):
            lt += v[j] < mid
            gt += v[j] > mid
        if mid <= a or mid >= b:
            break                       # no value between a and b to split on
        if lt <= k:
            a, below = mid, lt
        elif gt <= m - 1 - u:
            b, above = mid, gt
        else:
            return mid, mid, lt, True
    return a, b, below, False


@njit(cache=True, nogil=True, inline="always")
def _ranked(band, nb, below, k, u):
    """The values of ranks ``k`` and ``u`` among ``band[:nb]`` and the
    ``below`` smaller values elsewhere: a value's rank is the number of
    smaller values and of equal ones before it."""
    lo = hi = 0.0
    for i in range(nb):
        x = band[i]
        r = below
        for j in range(nb):
            r += band[j] < x
        for j in range(i):
            r += band[j] == x
        lo = x if r == k else lo
        hi = x if r == u else hi
    return lo, hi


@njit(cache=True, nogil=True, inline="always")
def _median(v, m, band):
    """The median of ``v[:m]`` as a sort gives it, ``v`` unchanged: the few
    values that ``_bracket`` leaves around it are ranked (``band``:
    scratch), or the middle pair is the nearest values either side of a
    split.  Every pass is branch-free over the values, where a sort
    mispredicts."""
    k, u = (m - 1) // 2, m // 2
    a, b, below, split = _bracket(v, m, k, u)
    if split:
        lo, hi = -np.inf, np.inf
        for j in range(m):
            lo = max(lo, v[j] if v[j] < a else -np.inf)
            hi = min(hi, v[j] if v[j] > a else np.inf)
    else:
        nb = 0
        for j in range(m):
            band[nb] = v[j]
            nb += (v[j] >= a) & (v[j] <= b)
        lo, hi = _ranked(band, nb, below, k, u)
    return lo if m % 2 == 1 else 0.5 * (lo + hi)


@njit(cache=True, nogil=True, inline="always")
def _keeps_all(vals, n, const):
    """Whether stacked clipping keeps all ``n`` samples, without a median:
    it is within ``lim`` (the limit at the least sample, the least any
    median gives, shaved below rounding) of both ends when at most
    (n - 1) // 2 samples are not."""
    lo, hi = np.inf, -np.inf
    for j in range(n):
        lo, hi = min(lo, vals[j]), max(hi, vals[j])
    lim = const[KSTACK] * _sigma(lo, const) * (1.0 - 1e-9)
    far_lo = far_hi = 0
    for j in range(n):
        far_lo += (hi - vals[j]) > lim
        far_hi += (vals[j] - lo) > lim
    k = (n - 1) // 2
    return lim >= 0.0 and far_lo <= k and far_hi <= k


@njit(cache=True, nogil=True, inline="always")
def _frame_clip(vals, fidx, n, frames, const, kept, band):
    """Step 1 on the ``n`` samples: the number kept, in ``kept`` in frame
    order (all of them where it would keep none)."""
    kframe = const[KFRAME]
    nclean = 0
    for j in range(n):
        kept[nclean] = vals[j]
        nclean += not _rogue(vals[j], fidx[j], frames, kframe)
    if nclean == n:
        return n                        # no rogue sample: nothing to reject
    med = _median(kept, nclean, band) if nclean > 0 else _median(vals, n, band)
    lim = kframe * _sigma(med, const)
    m = 0
    for j in range(n):
        kept[m] = vals[j]
        m += not (_rogue(vals[j], fidx[j], frames, kframe) and abs(vals[j] - med) > lim)
    if m == 0:
        kept[:n] = vals[:n]
    return m if m > 0 else n


@njit(cache=True, nogil=True, inline="always")
def _stack_clip(kept, m, const, band):
    """Step 2 on the ``m`` samples kept: the number kept.  Kept samples move
    down in place, in their order; where none would be kept, none moved."""
    if _keeps_all(kept, m, const):
        return m
    for _ in range(int(const[ITERATIONS])):
        med = _median(kept, m, band)
        lim = const[KSTACK] * _sigma(med, const)
        m2 = 0
        for j in range(m):
            if abs(kept[j] - med) <= lim:
                kept[m2] = kept[j]
                m2 += 1
        if m2 == m or m2 == 0:
            break
        m = m2
    return m


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
    the others are gathered and clipped one by one.

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
        vals, kept, band = np.empty((3, nfr), np.float64)   # a pixel's samples, scratch
        fidx = np.empty(nfr, np.int64)                      # their frames
        p0 = b * _BLOCK
        w = min(npix, p0 + _BLOCK) - p0
        off = pix[0, p0:p0 + w].copy()
        ns = np.zeros((2, w), np.int32)
        acc = np.empty((3, w), np.float64)
        acc[0], acc[1], acc[2] = 0.0, np.inf, -np.inf
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
                continue
            m, total = n, acc[0, i]
            if ns[1, i] > 0 or acc[2, i] - acc[1, i] > spread:
                # unless nothing can be clipped (no rogue sample, all within
                # kstack * s_t, the least limit, of the median): most pixels
                n = _gather(stack, p, frames, pix[0], vals, fidx)
                m = _stack_clip(kept, _frame_clip(vals, fidx, n, frames, const, kept, band),
                                const, band)
                total = kept[:m].sum()          # numba adds in order, as the scan
            qual[p] = qq[i] | _finish(sums, counts, p, total / m, m, n, pix[1, p], const)
