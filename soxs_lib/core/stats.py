"""Robust frame statistics: frame clipping, bias level, temporal noise."""

from __future__ import annotations

import math

import numpy as np

from soxs_lib.core.kernel import band, sort_float32

MAD_TO_SIGMA = 1.482602218505602
SAMPLE_PIXELS = 1 << 17   # pixels per frame for frame-level statistics (0.2% on a sigma)
_BRACKET_MIN = 1 << 16    # smaller arrays: np.partition is as quick as a bracket
_SAMPLE = 1 << 15         # sampled values that bracket a rank


def truncation_factor(k: float) -> float:
    """Variance of a unit normal truncated to [-k, k]."""
    phi = math.exp(-0.5 * k * k) / math.sqrt(2 * math.pi)
    inside = math.erf(k / math.sqrt(2))
    return 1.0 - 2.0 * k * phi / inside


def clipped_stats(x: np.ndarray, sigma: float, iterations: int, sort=sort_float32):
    """Iterative sigma clipping about the median.

    The first pass uses the MAD-based sigma, later ones the standard deviation
    of the kept values corrected for the truncation: unlike the MAD, it is not
    biased by integer (quantised) data.  Values rejected in one pass stay
    rejected.  Returns (median, sigma, number clipped, mean) of the kept
    finite values of ``x``.

    Clipping symmetric bounds keeps a contiguous run of the sorted values, so
    after one sort every median and the MAD are found by index, and a pass
    costs one sum and one dot product over the kept run.

    Parameters
    ----------
    x : array_like
        Values; NaN and infinities are ignored.  Not modified.
    sigma : float
        Clipping threshold in sigmas (frame_clipping_sigma).
    iterations : int
        Maximum number of passes (frame_clipping_iterations).
    sort : callable
        Sorts the finite values as ``numpy.sort`` does: the compiled radix
        sort (``kernel.sort_float32``) unless told otherwise.

    Returns
    -------
    median : float
        Median of the kept values (NaN if none is finite).
    sigma : float
        Their robust sigma.
    nclipped : int
        Number of finite values rejected.
    mean : float
        Mean of the kept values.
    """
    x = np.asarray(x).ravel()
    if x.dtype != np.float32:
        x = x.astype(np.float64)
    # float32 (frames, their differences) is sorted as it is: converting is
    # exact and keeps the order, and the sort is the cost of a call
    xs = sort(x[np.isfinite(x)]).astype(np.float64)
    n = xs.size
    if n == 0:
        return np.nan, np.nan, 0, np.nan
    lo, hi = 0, n                       # the kept values are xs[lo:hi]
    med = _median_of_sorted(xs, lo, hi)
    s = MAD_TO_SIGMA * _mad_of_sorted(xs, med)
    centre = med                        # sums about it: no cancellation
    d = xs - centre
    corr = math.sqrt(truncation_factor(sigma))
    for _ in range(iterations):
        if s == 0.0:
            break
        nlo = max(lo, int(np.searchsorted(xs, med - sigma * s, "left")))
        nhi = min(hi, int(np.searchsorted(xs, med + sigma * s, "right")))
        if nhi <= nlo:
            break
        changed = (nlo, nhi) != (lo, hi)
        lo, hi = nlo, nhi
        kept = d[lo:hi]
        mean_d = float(kept.sum()) / kept.size
        med = _median_of_sorted(xs, lo, hi)
        sq = float(np.einsum("i,i", kept, kept))      # not BLAS: no threads of its own
        s = math.sqrt(max(sq / kept.size - mean_d * mean_d, 0.0)) / corr
        if not changed:
            break
    return med, s, int(n - (hi - lo)), float(centre + d[lo:hi].sum() / (hi - lo))


def _median_of_sorted(xs: np.ndarray, lo: int, hi: int) -> float:
    m = hi - lo
    h = lo + m // 2
    return float(xs[h]) if m % 2 else 0.5 * float(xs[h - 1] + xs[h])


def _mad_of_sorted(xs: np.ndarray, med: float) -> float:
    """median(|xs - med|) of sorted ``xs`` without a selection pass: the
    distances below and above ``med`` are two sorted runs."""
    p = int(np.searchsorted(xs, med, "left"))
    below = med - xs[:p][::-1]          # ascending
    above = xs[p:] - med                # ascending
    n = xs.size
    k = (n - 1) // 2
    first = _kth_of_two(below, above, k)
    return first if n % 2 else 0.5 * (first + _kth_of_two(below, above, k + 1))


def _kth_of_two(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """The k-th smallest (from 0) of two ascending arrays together."""
    # take i values from a and k + 1 - i from b: the least i with a[i] >= b[k - i]
    lo, hi = max(0, k + 1 - b.size), min(k + 1, a.size)
    while lo < hi:
        i = (lo + hi) // 2
        if a[i] < b[k - i]:
            lo = i + 1
        else:
            hi = i
    j = k + 1 - lo
    return float(max(a[lo - 1] if lo > 0 else -np.inf, b[j - 1] if j > 0 else -np.inf))


def bracket(x: np.ndarray, lo_rank: int, hi_rank: int):
    """A band of values of the 1-D, NaN-free ``x`` that holds its order
    statistics of ranks ``lo_rank``..``hi_rank`` (from 0): (number of values
    below the band, the band sorted); None where np.partition is the better
    tool (small arrays, or a band too wide).

    A sorted sample of about 32k values places the ranks to within ten times
    their sampling scatter; one pass then counts the values below the band
    and gathers those in it, which is cheaper than partitioning a full master
    (see the benchmark).  Ties at the band's ends are counted, not sorted."""
    n = x.size
    if n < _BRACKET_MIN:
        return None
    sample = sort_float32(x[::n // _SAMPLE])
    m = sample.size
    margin = 5.0 * math.sqrt(m) + 1.0
    i0 = math.floor(lo_rank / n * m - margin)
    i1 = math.ceil(hi_rank / n * m + margin)
    if i0 < 0 or i1 >= m:
        return None
    lo, hi = sample[i0], sample[i1]
    below, size, inside = band(x, lo, hi, n // 4)
    if not below <= lo_rank < hi_rank + 1 <= below + size:
        return None     # missed: odds below 1e-20
    if inside is not None:
        return below, sort_float32(inside)
    # many ties at an end of the band (values on a grid, as ERR): sort only
    # what lies between the ends
    between = sort_float32(x[(x > lo) & (x < hi)])
    if between.size > n // 4:
        return None     # partition instead
    at_lo = int(np.count_nonzero(x == lo))
    return below, np.concatenate([np.full(at_lo, lo, x.dtype), between,
                                  np.full(size - at_lo - between.size, hi, x.dtype)])


def median(x: np.ndarray) -> float:
    """The value np.median gives for the 1-D, NaN-free ``x``, without
    partitioning all of a large array; ``x`` is not modified."""
    n = x.size
    k = (n - 1) // 2
    got = bracket(x, k, n // 2)
    if got is None:
        return float(np.median(x))
    below, band = got
    j = k - below
    return float(band[j]) if n % 2 else float(np.mean(band[j:j + 2]))


def sample_rows(r0: int, r1: int, ncol: int, target: int = SAMPLE_PIXELS) -> np.ndarray:
    """Evenly spaced rows of [r0, r1) holding about ``target`` pixels."""
    step = max(1, ((r1 - r0) * ncol) // target)
    return np.arange(r0, r1, step)


def pair_noise(a: np.ndarray, b: np.ndarray, sigma: float, iterations: int,
               sort=sort_float32) -> float:
    """Noise of one frame from the difference of two, in which the fixed
    pattern cancels: the clipped robust sigma of (a - b) / sqrt(2)
    (``clipped_stats``'s arguments)."""
    return clipped_stats(a - b, sigma, iterations, sort)[1] / np.sqrt(2.0)
