"""Frame statistics against a straightforward implementation and known truth."""

import math

import numpy as np
import pytest

from soxs_lib import stats


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
