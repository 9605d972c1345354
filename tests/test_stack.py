"""The clipping and combining kernel: exact numbers, the streamed path
against a whole-stack reference, and properties (hypothesis)."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from soxs_lib.config import flags
from soxs_lib.core.model import FrameModel
from soxs_lib.core.stack import ArrayImage, stack_arrays, stack_frames

from reference import reference_combine


def model(n, s_t=3.0, level=10.0, fsigma=3.0, lbar=None, sat=1e9):
    return FrameModel(scale=np.ones(n), offset=np.zeros(n), satv=np.full(n, sat),
                      level=np.full(n, level), fsigma=np.full(n, fsigma), s_t=s_t,
                      lbar=level if lbar is None else lbar)


def combine(values, m=None, kf=3.0, ks=5.0, it=5):
    v = np.asarray(values, np.float32).reshape(len(values), 1, 1)
    r = stack_arrays(v, m or model(len(values)), (kf, ks, it))
    return type(r)(*(a.reshape(-1) for a in (r.flux, r.err, r.nused, r.qual, r.nrej)))


def test_single_cosmic_ray_is_rejected_exactly():
    r = combine([10, 11, 9, 10.5, 1000])
    assert r.flux[0] == pytest.approx(10.125)
    assert r.nused[0] == 4 and r.nrej[0] == 1 and r.qual[0] == 0
    assert r.err[0] == pytest.approx(np.sqrt((9 + 0.125) / 4), rel=1e-6)


def test_two_cosmic_rays_in_four_frames_are_rejected():
    r = combine([10, 11, 500, 800])
    assert r.flux[0] == pytest.approx(10.5)
    assert r.nused[0] == 2


def test_hot_pixel_keeps_all_samples_and_its_signal():
    r = combine([300, 310, 305, 295, 302])
    assert r.flux[0] == pytest.approx(302.4)
    assert r.nused[0] == 5
    # Poisson noise of the excess enters ERR
    assert r.err[0] == pytest.approx(np.sqrt((9 + 292.4) / 5), rel=1e-6)


def test_nan_and_saturated_samples_are_excluded_and_flagged():
    m = model(4, sat=1000)
    r = combine([10, np.nan, 1000, 12], m)
    assert r.flux[0] == pytest.approx(11)
    assert r.qual[0] == flags.BADINPUT | flags.SATURATED
    r = combine([np.inf, np.nan, 2000, 1000], m)
    assert r.nused[0] == 0 and r.qual[0] & flags.NODATA


def test_low_coverage_flag():
    m = model(5, sat=1000)
    r = combine([10, 1000, 1000, 1000, 11], m)
    assert r.nused[0] == 2 and r.qual[0] & flags.LOWCOVER


def random_stack(rng, n, shape=(37, 29)):
    data = rng.normal(10, 3, (n,) + shape)
    data[:, 5, 5] += 200                      # hot pixel
    flat = data.reshape(n, -1)
    hits = rng.integers(0, flat.shape[1], (n, 8))
    for f in range(n):
        flat[f, hits[f]] += rng.uniform(30, 5000, 8)
    flat[0, 3] = np.nan
    flat[1, 4] = 1e6                           # saturated
    return data.astype(np.float32)


@pytest.mark.parametrize("n", [3, 4, 7])
@pytest.mark.parametrize("chunk", [4 * 29 * 4 * 3, 1 << 20])
def test_streamed_equals_whole_stack_reference(n, chunk):
    rng = np.random.default_rng(n)
    data = random_stack(rng, n)
    m = model(n, sat=1e5)
    m.level = rng.normal(10, 0.1, n)
    m.fsigma = rng.normal(3, 0.05, n)
    region = (2, 35, 1, 27)
    r0, r1, c0, c1 = region
    imgs = [ArrayImage(d.astype(">f4")) for d in data]    # big-endian, as in a file
    streamed = stack_frames(imgs, region, m, (3.0, 5.0, 5), chunk_bytes=chunk, threads=2)
    whole = stack_arrays(np.ascontiguousarray(data[:, r0:r1, c0:c1]), m, (3.0, 5.0, 5))
    mean, err, nused = reference_combine(data[:, r0:r1, c0:c1], m, (3.0, 5.0, 5))
    for a in ("flux", "err", "nused", "qual", "nrej"):
        np.testing.assert_array_equal(getattr(streamed, a), getattr(whole, a))
    has = nused.reshape(streamed.flux.shape) > 0
    np.testing.assert_array_equal(streamed.flux[has], mean.reshape(has.shape)[has].astype(np.float32))
    np.testing.assert_array_equal(streamed.err[has], err.reshape(has.shape)[has].astype(np.float32))
    np.testing.assert_array_equal(streamed.nused, nused.reshape(has.shape))


def test_mean_is_the_reference_bit_for_bit_whatever_the_path():
    """40 quantised frames with a gain: the electrons carry every bit of a
    float64, so the order of a sum shows in float32.  A pixel that the kernel
    sorts and clips, one it finishes without sorting and one from the scan
    all add their kept samples in frame order, as the reference does."""
    rng = np.random.default_rng(7)
    n, shape, gain = 40, (300, 300), 2.12
    data = np.round(rng.normal(0.7, 7.3 / gain, (n,) + shape)).astype(np.float32)
    data[:, 10, 10] += 500                                    # hot: rogue in every frame
    data[rng.integers(0, n, 300), rng.integers(0, 300, 300), rng.integers(0, 300, 300)] += 900
    m = FrameModel(scale=np.full(n, gain), offset=np.zeros(n), satv=np.full(n, 6e4),
                   level=rng.normal(1.5, 0.01, n), fsigma=rng.normal(7.4, 0.02, n), s_t=7.3,
                   lbar=1.5)
    r = stack_arrays(data, m, (3.0, 5.0, 5))
    mean, err, nused = reference_combine(data, m, (3.0, 5.0, 5))
    np.testing.assert_array_equal(r.nused, nused.reshape(shape))
    np.testing.assert_array_equal(r.flux, mean.reshape(shape).astype(np.float32))
    np.testing.assert_array_equal(r.err, err.reshape(shape).astype(np.float32))
    assert (r.nused < n).sum() > 300         # clipped pixels are among them



def test_median_by_selection_is_the_median_a_sort_gives():
    """The kernel's median (bisection by counts, then a rank of the few
    values left, or the pair either side of a split) against numpy's, bit
    for bit: odd and even sizes, ties (quantised values, constants), wide
    outliers; the values are not moved."""
    from soxs_lib.core.kernel import median
    rng = np.random.default_rng(11)
    for trial in range(3000):
        m = int(rng.integers(1, 80))
        v = rng.normal(rng.uniform(-100, 100), rng.uniform(0.01, 30), m)
        if trial % 3 == 0:
            v = np.round(v)                                  # many ties
        if trial % 7 == 0:
            v[rng.integers(0, m, 3)] = rng.uniform(-1e6, 1e6, 3)
        if trial % 11 == 0:
            v[:] = v[0]
        before = v.copy()
        assert median(v) == np.median(v), (trial, m)
        np.testing.assert_array_equal(v, before)

samples = st.lists(st.floats(-50, 50, allow_nan=False, width=32), min_size=3, max_size=12)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples, st.randoms(use_true_random=False))
def test_frame_order_does_not_matter(values, rnd):
    perm = list(range(len(values)))
    rnd.shuffle(perm)
    m = model(len(values))
    m.level = np.linspace(9, 11, len(values))
    pm = model(len(values))
    pm.level = m.level[perm]
    a = combine(values, m)
    b = combine([values[i] for i in perm], pm)
    assert a.flux[0] == pytest.approx(b.flux[0], rel=1e-6, abs=1e-6)
    assert (a.nused[0], a.qual[0]) == (b.nused[0], b.qual[0])


@settings(max_examples=100, deadline=None)
@given(st.floats(-1000, 1e5, allow_nan=False, width=32), st.integers(3, 20))
def test_constant_stack_returns_the_constant(c, n):
    r = combine([c] * n, model(n))
    assert r.flux[0] == np.float32(c)
    assert r.nused[0] == n


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=3, max_size=10),
       st.floats(-1e6, 1e6, allow_nan=False))
def test_one_outlier_moves_the_result_at_most_as_the_clipping_allows(clean, outlier):
    s_t, ks = 3.0, 5.0
    clean = [10 + s_t * v for v in clean]           # within 1 sigma: never clipped
    m = model(len(clean) + 1, s_t=s_t, fsigma=s_t)
    base = float(np.mean(np.float32(clean)))
    r = combine(clean + [outlier], m, kf=3.0, ks=ks)
    sigma = np.sqrt(s_t ** 2 + max(max(clean) - 10, 0))
    bound = (ks * sigma + (max(clean) - min(clean))) / (len(clean) + 1)
    assert abs(r.flux[0] - base) <= bound + 1e-4
    if abs(outlier - np.median(clean)) > ks * sigma + (max(clean) - min(clean)):
        assert r.flux[0] == pytest.approx(base, abs=1e-4)


@pytest.mark.parametrize("stored", [">f4", ">f8", "u1", ">i2", ">i4", ">i8", "<i2", "<f8"])
def test_every_stored_type_stacks_as_its_float32_values(stored):
    """The kernel reads each FITS type (and native float32) as stored, byte
    swapped and converted as numpy converts it to float32; another type is
    converted first.  A region that starts past column 0 (an overscan) is
    read at its offset in each row.  Large int32/int64 values round as
    numpy's cast does."""
    rng = np.random.default_rng(7)
    n, ny, nx = 5, 9, 700                      # a row is two work items, the last short
    vals = rng.normal(100.0, 5.0, (n, ny, nx))
    vals[1, 2, 3] = vals[3, 4, 600] = 5000.0   # rogue samples, clipped
    if stored.lstrip("<>").startswith("f"):
        vals[2, 5, 7] = np.nan
    if stored.lstrip("<>") in ("i4", "i8"):
        vals += 2 ** 26 + 0.5                  # not every value is a float32
    data = vals.astype(stored) if stored != "u1" else np.clip(vals, 0, 255).astype(stored)
    m = model(n, level=float(np.nanmedian(data.astype(np.float32))), sat=2.0 ** 62)
    region = (1, ny, 30, nx - 5)
    got = stack_frames([ArrayImage(f) for f in data], region, m, (3.0, 5.0, 5), 1 << 20)
    crop = data.astype(np.float32)[:, 1:, 30:nx - 5]
    want = stack_frames([ArrayImage(f) for f in crop], (0, ny - 1, 0, nx - 35), m,
                        (3.0, 5.0, 5), 1 << 20)
    for name in ("flux", "err", "nused", "qual", "nrej"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    assert (got.nused < n).any()


def test_without_rogue_samples_stacked_clipping_still_rejects_a_far_group():
    """No sample is rogue (the frames' sigma is wide), so the pixel is
    decided without frame clipping: two samples far from the three others
    are rejected by stacked clipping; a pixel whose spread exceeds the
    noise but whose ends are each within the limit of the others keeps
    every sample."""
    wide = model(5, s_t=3.0, level=10.0, fsigma=1e6, lbar=1e6)
    r = combine([10, 10, 10, 60, 60], wide)
    assert r.flux[0] == pytest.approx(10.0) and r.nused[0] == 3 and r.nrej[0] == 2
    r = combine([0, 8, 8, 8, 16], wide)           # range 16 > 5 * 3, ends within 15
    assert r.flux[0] == pytest.approx(8.0) and r.nused[0] == 5 and r.nrej[0] == 0


def test_the_master_does_not_depend_on_threads_or_blocks():
    """The kernel's threads take work items as they come; the master is the
    same bit for bit on 1 to 7 threads and in blocks of a few rows or one."""
    rng = np.random.default_rng(17)
    n, ny, nx = 9, 40, 1100                   # rows of three work items, the last short
    data = rng.normal(10.0, 3.0, (n, ny, nx)).astype(np.float32)
    data[rng.integers(0, n, 400), rng.integers(0, ny, 400), rng.integers(0, nx, 400)] = 900.0
    data[:, 5, 7] += 300.0                    # a hot pixel
    m = model(n)
    imgs = [ArrayImage(d.astype(">f4")) for d in data]
    first = None
    for threads in (1, 2, 3, 7):
        for chunk in (2 * n * nx * 4 * 3, 1 << 24):
            r = stack_frames(imgs, (1, ny, 2, nx - 1), m, (3.0, 5.0, 5), chunk, threads=threads)
            got = [getattr(r, a) for a in ("flux", "err", "nused", "qual", "nrej")]
            if first is None:
                first = got
                assert (r.nrej > 0).sum() > 100
            for a, b in zip(first, got, strict=True):
                np.testing.assert_array_equal(a, b)
