"""The master dark recovers the known truth of synthetic darks."""

import numpy as np
import pytest

from soxs_lib.config import flags

from conftest import reduce


def qcv(md, name):
    return {r.qc.name: r.value for r in md.qc}[name]


def clean(md):
    """Pixels whose every sample was valid and enough frames contributed."""
    return ((md.qual & (flags.NODATA | flags.SATURATED | flags.LOWCOVER)) == 0)


@pytest.mark.parametrize("case", ["nir_master", "vis_master"])
def test_dark_level_and_read_noise(case, request):
    truth, md = request.getfixturevalue(case)
    assert qcv(md, "MDARK MEDIAN") == pytest.approx(np.median(truth.dark), abs=0.1)
    assert qcv(md, "RAW RON") == pytest.approx(truth.ron, rel=0.02)
    single = np.sqrt(truth.ron ** 2 + np.median(truth.dark))
    assert qcv(md, "RAW NOISE") == pytest.approx(single, rel=0.02)
    assert qcv(md, "MASTER RON") == pytest.approx(single / np.sqrt(len(truth.paths)), rel=0.05)


@pytest.mark.parametrize("case", ["nir_master", "vis_master"])
def test_hot_pixels_recall_and_precision(case, request):
    truth, md = request.getfixturevalue(case)
    hot = (md.qual & flags.HOT) != 0
    strong = truth.hot & (truth.excess > 10 * truth.single_frame_noise)
    assert strong.sum() > 500
    recall = hot[strong].mean()
    precision = truth.hot[hot].mean()
    assert recall >= 0.99, recall
    assert precision >= 0.95, precision
    assert qcv(md, "HOTPIX NUM") == hot.sum()
    assert qcv(md, "HOTPIX FRAC") == pytest.approx(hot.sum() / hot.size)


@pytest.mark.parametrize("case", ["nir_master", "vis_master"])
def test_hot_pixels_keep_their_signal(case, request):
    truth, md = request.getfixturevalue(case)
    ok = truth.hot & clean(md)
    z = (md.flux[ok] - truth.dark[ok]) / md.err[ok]
    assert ok.sum() > 500
    assert abs(np.median(z)) < 0.2
    assert np.percentile(np.abs(z), 99) < 4


@pytest.mark.parametrize("case", ["nir_master", "vis_master"])
def test_err_matches_scatter_about_truth(case, request):
    truth, md = request.getfixturevalue(case)
    ok = clean(md)
    z = ((md.flux - truth.dark) / md.err)[ok]
    assert np.std(z) == pytest.approx(1.0, abs=0.06)
    assert abs(np.mean(z)) < 0.05
    assert np.all(np.isfinite(md.flux)) and np.all(np.isfinite(md.err))


@pytest.mark.parametrize("case", ["nir_master", "vis_master"])
def test_cosmic_rays_leave_no_residual_and_no_hot_pixel(case, request):
    truth, md = request.getfixturevalue(case)
    hit = np.zeros(truth.dark.size, bool)
    for idx in truth.cosmics:
        hit[idx] = True
    hit = hit.reshape(truth.dark.shape) & ~truth.hot & clean(md)
    assert hit.sum() > 1000
    z = (md.flux[hit] - truth.dark[hit]) / md.err[hit]
    assert np.abs(z).max() < 6
    assert np.std(z) < 1.1
    assert not np.any((md.qual[hit] & flags.HOT) != 0)


def test_saturated_pixels_are_flagged_not_filled_with_noise(nir_master):
    truth, md = nir_master
    sat = truth.saturated
    assert sat.sum() > 0
    q = md.qual[sat]
    assert np.all((q & flags.SATURATED) != 0)
    assert np.all((q & flags.NODATA) != 0)
    assert np.all((q & flags.HOT) != 0)
    assert np.all(np.isfinite(md.flux[sat]))


@pytest.fixture(scope="session")
def vis_master(vis):
    truth, sof = vis
    return truth, reduce(sof)


def test_vis_bias_removed_from_overscan(vis_master):
    truth, md = vis_master
    biases = [f.bias_adu for f in md.frames]
    assert np.allclose(biases, truth.bias_adu, atol=0.05)


@pytest.mark.parametrize("suffix", [".fits", ".fits.fz", ".fits.gz"])
def test_master_bias_replaces_overscan(vis, vis_master, tmp_path, suffix):
    """With a MASTER_BIAS_VIS (plain, tile-compressed or gzipped) the bias
    comes from it, and its ERR adds in."""
    import gzip
    from astropy.io import fits
    truth, sof = vis
    r = fits.getdata(truth.paths[0])
    bias = np.full(r.shape, np.mean(truth.bias_adu), np.float32)
    err = np.full(r.shape, 0.5, np.float32)
    if suffix == ".fits.fz":
        ext = [fits.CompImageHDU(a, name=n, compression_type="GZIP_2", quantize_level=0)
               for a, n in ((bias, "FLUX"), (err, "ERR"))]
    else:
        ext = [fits.ImageHDU(bias, name="FLUX"), fits.ImageHDU(err, name="ERR")]
    hdus = fits.HDUList([fits.PrimaryHDU(), *ext])
    hdus[0].header["HIERARCH ESO PRO CATG"] = "MASTER_BIAS_VIS"
    hdus[1].header["BUNIT"] = "adu"
    mbias = tmp_path / f"mbias{suffix}"
    hdus.writeto(tmp_path / "mbias.fits")
    if suffix == ".fits.gz":
        mbias.write_bytes(gzip.compress((tmp_path / "mbias.fits").read_bytes()))
    elif suffix == ".fits.fz":
        hdus.writeto(mbias)
    sof2 = tmp_path / "with_bias.sof"
    sof2.write_text(sof.read_text().replace("SOXS_", str(sof.parent) + "/SOXS_")
                    + f"{mbias} MASTER_BIAS_VIS\n")
    md = reduce(sof2)
    med = {r.qc.name: r.value for r in md.qc}["MDARK MEDIAN"]
    assert med == pytest.approx(np.median(truth.dark), abs=0.6)   # bias drifts ~3 ADU
    assert np.all([f.bias_adu == 0 for f in md.frames])
    ok = md.qual == 0
    _, md0 = vis_master
    assert np.median(md.err[ok]) > np.median(md0.err[ok])
    assert np.median(md.err[ok]) == pytest.approx(
        np.sqrt(np.median(md0.err[ok]) ** 2 + 0.5 ** 2), rel=0.05)


def test_a_foreign_combiner_gets_the_kernels_finish_step(tmp_path):
    # stack_method = cpl: ERR, QUAL and the counts of CPL's mean come from
    # model.finish, the numpy twin of the kernel's finish step; with a combiner
    # that clips nothing and a kernel told to clip nothing, the two masters are
    # the same (no PyCPL needed)
    from astropy.io import fits
    from soxs_lib.config import params, qc
    from soxs_lib.core.mdark import make_master_dark
    from soxs_lib.io import frames
    from soxs_lib.io.simulate import simulate_darks

    truth = simulate_darks(tmp_path, arm="VIS", nframes=4, binning=2, seed=5,
                           cosmics_per_frame=0, dtype=np.float32)
    for k, path in enumerate(truth.paths):
        with fits.open(path, mode="update") as h:
            d = h[0].data
            if k == 0:
                d[100, 200] = np.nan        # BADINPUT, three samples left
            if k < 2:
                d[101, 200] = 7e4           # SATURATED in two of four: half is enough
            if k < 3:
                d[102, 200] = 7e4           # in three of four: LOWCOVER
            d[103, 200] = 7e4               # saturated everywhere: NODATA

    def mean_of_valid(stack, kappa):
        e = np.stack([f for f, _ in stack])
        keep = np.stack([m == 0 for _, m in stack])
        n = keep.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (e * keep).sum(axis=0) / n, n

    loose = dict(frame_clipping_sigma=100.0, stacked_clipping_sigma=100.0)
    kernel = reduce(tmp_path / "mdark.sof", **loose)
    fs = frames.load_frameset(frames.collect_inputs([str(tmp_path / "mdark.sof")]))
    with fs:
        outside = make_master_dark(fs, params.resolve({**loose, "stack_method": "cpl"}),
                                   qc.default_ranges("VIS"), combine=mean_of_valid)
    r0, _, c0, _ = kernel.region
    q = outside.qual[100 - r0:104 - r0, 200 - c0]
    assert q[0] & flags.BADINPUT and not q[0] & flags.LOWCOVER
    assert q[1] & flags.SATURATED and not q[1] & flags.LOWCOVER
    assert q[2] & flags.SATURATED and q[2] & flags.LOWCOVER
    assert q[3] & flags.NODATA
    np.testing.assert_array_equal(outside.qual, kernel.qual)
    np.testing.assert_array_equal(outside.nused, kernel.nused)
    np.testing.assert_allclose(outside.flux, kernel.flux, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(outside.err, kernel.err, rtol=1e-5)
