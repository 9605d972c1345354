"""Frame statistics against a straightforward implementation and known truth."""

import math

import numpy as np
import pytest

from soxs_lib.core import stats


def straightforward(x, sigma, iterations):
    """Clipping as written in the docstring: masks, np.median, np.std."""
    x = np.asarray(x, np.float64).ravel()
    x = x[np.isfinite(x)]
    keep = np.ones(x.size, bool)
    kept = x
    med = float(np.median(kept))
    s = stats.MAD_TO_SIGMA * float(np.median(np.abs(kept - med)))
    corr = math.sqrt(stats.truncation_factor(sigma))
    for _ in range(iterations):
        if s == 0.0:
            break
        new = keep & (np.abs(x - med) <= sigma * s)
        if not new.any():
            break
        changed = new.sum() != keep.sum()
        keep, kept = new, x[new]
        med, s = float(np.median(kept)), float(kept.std()) / corr
        if not changed:
            break
    return med, s, int(x.size - keep.sum()), float(kept.mean())


@pytest.mark.parametrize("trial", range(300))
def test_clipped_stats_equal_the_straightforward_computation(trial):
    rng = np.random.default_rng(trial)
    n = int(rng.integers(1, 60)) if trial % 3 else int(rng.integers(1, 5000))
    x = rng.normal(rng.uniform(-100, 100), rng.uniform(0.1, 20), n)
    if trial % 2:
        x = np.rint(x)                  # integer data: many ties
    if trial % 5 == 0:
        x[rng.integers(0, n, max(1, n // 10))] += rng.uniform(50, 5000)
    if trial % 7 == 0:
        x[: n // 3] = np.nan
    if trial % 11 == 0:
        x[:] = 3.0
    got = stats.clipped_stats(x, 3.0, 5)
    want = straightforward(x, 3.0, 5)
    assert got[0] == want[0] or (math.isnan(got[0]) and math.isnan(want[0]))
    assert got[2] == want[2]
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[3], want[3], rtol=1e-12, atol=1e-12)


def test_mad_of_sorted_values_is_the_median_absolute_deviation():
    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 10, 11, 1000, 1001):
        xs = np.sort(np.rint(rng.normal(0, 5, n)))
        for centre in (xs[n // 2], xs[0] - 1.5, xs[-1] + 2.0, 0.25):
            assert stats._mad_of_sorted(xs, centre) == np.median(np.abs(xs - centre))


def test_clipped_stats_recover_a_known_noise_under_outliers():
    rng = np.random.default_rng(4)
    x = rng.normal(12.0, 3.0, 1 << 17)
    hits = rng.choice(x.size, 2000, replace=False)
    x[hits] += rng.uniform(100, 10000, hits.size)      # cosmic rays: 1.5 %
    med, sigma, nclip, mean = stats.clipped_stats(x, 5.0, 5)
    assert abs(med - 12.0) < 0.03 and abs(mean - 12.0) < 0.03
    assert abs(sigma / 3.0 - 1) < 0.01
    assert 2000 <= nclip < 2000 + 20          # the hits and a handful of 5-sigma tails


def _arrays():
    """Large arrays like a master: smooth, quantised (ties), skewed, tiny."""
    rng = np.random.default_rng(9)
    n = 300_001
    yield rng.normal(1.5, 1.9, n).astype(np.float32)
    yield (np.rint(rng.normal(1.5, 1.9, n - 1) * 7.5) / 7.5).astype(np.float32)
    yield np.rint(rng.normal(0.0, 0.3, n)).astype(np.float32)      # 3 values: ties win
    yield rng.exponential(2.0, n).astype(np.float32)
    yield np.full(n, 4.0, np.float32)
    yield np.arange(7, dtype=np.float32)
    # like ERR: nearly half the values tied just below the median, the rest
    # spread above: a band with ties at its end, around a median without
    tied = np.concatenate([np.full(n * 48 // 100, 1.9, np.float32),
                           (1.9 + rng.exponential(0.05, n - n * 48 // 100)).astype(np.float32)])
    yield rng.permutation(tied)
    yield rng.permutation(tied[::-1] * -1)                          # the tie above it


@pytest.mark.parametrize("k", range(8))
def test_median_is_numpys(k):
    x = list(_arrays())[k]
    before = x.copy()
    assert stats.median(x) == float(np.median(x))
    np.testing.assert_array_equal(x, before)


def grouped_by_partition(x):
    """The grouped median written straightforwardly: one full partition for
    the middle value, every distinct value counted for the grid's step."""
    n = x.size
    k = (n - 1) // 2
    x.partition((k, k + 1) if n > 1 else k)
    mid = float(x[k])
    plain = mid if n % 2 else 0.5 * (mid + float(x[k + 1]))
    if np.count_nonzero(x == mid) < max(2, n // 1000):
        return plain, plain
    sample = x[::max(1, n // (1 << 16))]
    values, counts = np.unique(sample, return_counts=True)
    grid = [v for v, c in zip(values, counts, strict=True)
            if c >= max(2, sample.size // 1000) and v != mid]
    if not grid:
        return mid, plain
    w = float(min(abs(v - mid) for v in grid))
    lo, hi = mid - w / 2, mid + w / 2
    less = int(np.count_nonzero(x < lo))
    inside = int(np.count_nonzero((x >= lo) & (x < hi)))
    return lo + w * (n / 2 - less) / inside, plain


@pytest.mark.parametrize("k", range(8))
def test_grouped_median_by_bracket_equals_the_partition(k):
    from soxs_lib.core.hotpix import grouped_median
    x = list(_arrays())[k]
    assert grouped_median(x.copy()) == grouped_by_partition(x.copy())


def test_grouped_median_sits_inside_the_grid_cell():
    from soxs_lib.core.hotpix import grouped_median
    rng = np.random.default_rng(2)
    truth = 1.234
    x = (np.rint(rng.normal(truth, 2.0, 1 << 20) / 0.5) * 0.5).astype(np.float32)
    grouped, plain = grouped_median(x)
    assert plain == 1.0                    # snapped to the 0.5 grid
    assert abs(grouped - truth) < 0.01     # placed by the counts on either side


def test_grouped_median_sees_the_main_grid_through_finer_ones():
    """A master of 5 integer frames sits on a grid of step 1/5; the pixels
    that lost a sample to a cosmic ray sit on grids of step 1/4, whose values
    fall between.  The cell is the main grid's, and every value in it counts."""
    from soxs_lib.core.hotpix import grouped_median
    rng = np.random.default_rng(3)
    truth, n = 0.18, 1 << 20
    frames = np.rint(rng.normal(truth, 3.8, (5, n)) + 0.37)     # integer ADU, a bias 0.37
    master = frames.mean(axis=0) - 0.37
    lost = rng.random(n) < 0.003                                 # one sample clipped
    master[lost] = frames[1:, lost].mean(axis=0) - 0.37
    grouped, plain = grouped_median(master.astype(np.float32))
    assert abs(plain - truth) > 0.05        # the plain median snaps to a grid point
    assert abs(grouped - truth) < 0.01


@pytest.mark.parametrize("trial", range(40))
def test_the_compiled_sort_sorts_float32_as_numpy_does(trial):
    from soxs_lib.core.kernel import sort_float32
    rng = np.random.default_rng(500 + trial)
    n = int(rng.integers(0, 3)) if trial < 4 else int(rng.integers(3, 200_000))
    x = rng.normal(rng.uniform(-50, 50), 10 ** rng.uniform(-6, 6), n).astype(np.float32)
    if trial % 3 == 1:
        x = np.rint(x)                                   # ties
    if trial % 4 == 2 and n > 30:                        # signs, zeros, extremes, subnormals
        x[::5] = -x[::5]
        x[::7], x[::11] = 0.0, -0.0
        x[::13], x[::17] = np.finfo(np.float32).max, -np.finfo(np.float32).max
        x[::19], x[::23] = np.float32(1e-45), -np.float32(1e-45)
    got, want = sort_float32(x), np.sort(x)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    # bit for bit but for the order of signed zeros, which numpy leaves open
    assert ((got.view(np.uint32) == want.view(np.uint32)) | (want == 0)).all()
    assert np.signbit(got[got == 0]).tolist() == sorted(np.signbit(got[got == 0]).tolist(),
                                                        reverse=True)


def test_clipped_stats_with_the_compiled_sort_are_numpy_s():
    from soxs_lib.core.kernel import sort_float32
    rng = np.random.default_rng(3)
    a, b = (rng.normal(1.5, 7.3, (66, 2040)).astype(np.float32) for _ in range(2))
    a[3, :40] = np.nan
    b[5, 9] = 5000.0
    assert stats.pair_noise(a, b, 3.0, 5, sort_float32) == stats.pair_noise(a, b, 3.0, 5, np.sort)
    assert stats.clipped_stats(a, 3.0, 5, sort_float32) == stats.clipped_stats(a, 3.0, 5, np.sort)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_band_is_what_numpy_masks_give(dtype):
    from soxs_lib.core.kernel import band
    rng = np.random.default_rng(21)
    x = np.rint(rng.normal(0, 20, 300_001)).astype(dtype)       # ties at the ends
    lo, hi = dtype(-3), dtype(5)
    inside = (x >= lo) & (x <= hi)
    below, size, got = band(x, lo, hi, x.size // 4)
    assert (below, size) == (int((x < lo).sum()), int(inside.sum()))
    np.testing.assert_array_equal(got, x[inside])
    assert got.dtype == x.dtype
    below, size, got = band(x, lo, hi, size - 1)      # one more than wanted: none given
    assert got is None and size == int(inside.sum()) and below == int((x < lo).sum())
    below, size, got = band(x[:0], lo, hi, 0)
    assert (below, size, got.size) == (0, 0, 0)
