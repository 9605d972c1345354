"""The PyEsoRex recipe driven through a real ``cpl``: these tests run where
PyCPL imports and are skipped, with the reason, elsewhere."""

import os
from pathlib import Path

import numpy as np
from astropy.io import fits
import pytest

from soxs_lib.cli import main as cli, manpage
from soxs_lib.config import params
from soxs_lib.config import qc

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "soxs_mdark.py"

pytest.importorskip("cpl", reason="PyCPL is not installed (ESO's package index only)")
import cpl.core  # noqa: E402
import cpl.ui  # noqa: E402


@pytest.fixture(scope="module")
def recipe_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("soxs_mdark_recipe", RECIPE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_parameters_full_names_aliases_ranges(recipe_module):
    r = recipe_module.SoxsMdark()
    for p in params.PARAMETERS:
        par = r.parameters[p.full_name]
        assert par.cli_alias == p.name
        assert par.default == p.default
        if p.choices:
            assert tuple(par.alternatives) == p.choices
        else:
            assert (par.min, par.max) == (p.min, p.max)
    assert r._description == manpage.description()


def _run(recipe_module, sof, workdir, settings=None):
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        return recipe_module.SoxsMdark().run(cpl.ui.FrameSet(str(sof)), settings or {})
    finally:
        os.chdir(cwd)


def test_recipe_product_matches_the_command_line(recipe_module, vis_small, tmp_path):
    truth, sof = vis_small
    out = _run(recipe_module, sof, tmp_path,
               {"soxs.soxs_mdark.frame_clipping_sigma": 4.0})
    frames = list(out)
    assert len(frames) == 1 and frames[0].tag == "DARK_VIS"
    assert frames[0].group == cpl.ui.Frame.FrameGroup.PRODUCT
    product = tmp_path / Path(frames[0].file).name
    assert cli.main(["mdark", str(sof), "-o", str(tmp_path / "cli"),
                     "--frame_clipping_sigma=4"]) == 0
    cli_product = next((tmp_path / "cli/products/soxs_mdark").glob("*.fits"))
    assert product.name == cli_product.name
    with fits.open(product) as a, fits.open(cli_product) as b:
        ha, hb = a[0].header, b[0].header
        assert ha["HIERARCH ESO PRO CATG"] == "DARK_VIS"
        assert ha["HIERARCH ESO QC DETECTOR TEMP"] == pytest.approx(
            hb["HIERARCH ESO QC DETECTOR TEMP"], rel=1e-12)
        assert ha["HIERARCH ESO QC DETECTOR TEMP STATUS"] == "PASS"
        for name in ("FLUX", "QUAL", "ERR"):
            np.testing.assert_array_equal(a[name].data, b[name].data)
        for q in qc.QC_DEFS:
            key = f"HIERARCH ESO QC {q.name}"
            if key in hb:
                assert ha[key] == pytest.approx(hb[key], rel=1e-12)
        n = len(params.PARAMETERS)
        assert [ha[f"HIERARCH ESO PRO REC1 PARAM{i} NAME"] for i in range(1, n + 1)] == \
               [p.name for p in params.PARAMETERS]
        assert ha["HIERARCH ESO PRO REC1 PIPE ID"] == hb["HIERARCH ESO PRO REC1 PIPE ID"]
        assert ha["HIERARCH ESO PRO REC1 RAW1 CATG"] == "DARK_VIS"


def test_recipe_writes_soxspipes_category_when_asked(recipe_module, vis_small, tmp_path):
    truth, sof = vis_small
    out = _run(recipe_module, sof, tmp_path,
               {"soxs.soxs_mdark.product_catg": "MASTER_DARK"})
    [frame] = list(out)
    assert frame.tag == "MASTER_DARK_VIS"
    h = fits.getheader(tmp_path / Path(frame.file).name)
    assert h["HIERARCH ESO PRO CATG"] == "MASTER_DARK_VIS"
    assert h["HIERARCH ESO PRO DATANCOM"] == 3 and h["HIERARCH ESO QC RAW RON"] > 0


def test_recipe_errors_are_cpl_errors(recipe_module, small_set, tmp_path):
    truth, sof = small_set
    short = tmp_path / "short.sof"
    short.write_text("".join(f"{p} DARK_VIS\n" for p in truth.paths[:2]))
    with pytest.raises(cpl.core.DataNotFoundError, match="at least 3"):
        _run(recipe_module, short, tmp_path)
    with pytest.raises(cpl.core.IllegalInputError, match="outside the allowed range"):
        _run(recipe_module, sof, tmp_path, {"soxs.soxs_mdark.stacked_clipping_sigma": -1.0})
    with pytest.raises(cpl.core.IllegalInputError, match="unknown parameter 'soxs.soxs_mdark.nope'"):
        _run(recipe_module, sof, tmp_path, {"soxs.soxs_mdark.nope": 1.0})
    fits.setval(truth.paths[1], "EXPTIME", value=10.0)
    with pytest.raises(cpl.core.IllegalInputError, match="mixed exposure time"):
        _run(recipe_module, sof, tmp_path)
    assert not list(tmp_path.glob("*.fits"))


def test_recipe_leaves_out_an_unusable_frame(recipe_module, one_dead_of_four, tmp_path):
    sof, bad = one_dead_of_four
    out = _run(recipe_module, sof, tmp_path)
    with fits.open(tmp_path / Path(list(out)[0].file).name) as h:
        hdr = h[0].header
        assert hdr["NCOMBINE"] == 3 and hdr["HIERARCH ESO QC NRAW DROPPED"] == 1
        names = [hdr[f"HIERARCH ESO PRO REC1 RAW{i} NAME"] for i in (1, 2, 3)]
        assert bad.name not in names and "HIERARCH ESO PRO REC1 RAW4 NAME" not in hdr


def test_recipe_failure_while_saving_leaves_nothing(recipe_module, vis_small, tmp_path,
                                                     monkeypatch):
    truth, sof = vis_small

    def broken(md):
        raise RuntimeError("disk gone")
    monkeypatch.setattr(recipe_module, "extension_data", broken)
    with pytest.raises(RuntimeError, match="disk gone"):
        _run(recipe_module, sof, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".fits.gz", ".fits.bz2", ".fits.Z", ".rice.fits.fz",
                                    ".ext.fits"])
def test_recipe_reads_every_raw_form(recipe_module, vis_small, tmp_path, suffix):
    """The recipe shares the reader; CPL itself reads the first raw header
    (for the inherited keywords) through cfitsio, which must cope too."""
    from test_raw_forms import FORMS, convert
    truth, sof = vis_small
    plain = _run(recipe_module, sof, tmp_path)
    ref = fits.getdata(tmp_path / Path(list(plain)[0].file).name, "FLUX")
    packed = convert(truth, tmp_path / "packed", suffix, FORMS[suffix])
    work = tmp_path / "work"
    work.mkdir()
    out = _run(recipe_module, packed, work)
    product = work / Path(list(out)[0].file).name
    np.testing.assert_array_equal(fits.getdata(product, "FLUX"), ref)
    h = fits.getheader(product)
    assert h["HIERARCH ESO PRO REC1 RAW1 NAME"].endswith(suffix)
    assert h["HIERARCH ESO SEQ ARM"] == "VIS"


def test_every_soxs_error_is_its_cpl_error(recipe_module):
    from soxs_lib.config import errors
    for cls, expect in [(errors.DataNotFound, cpl.core.DataNotFoundError),
                        (errors.InputError, cpl.core.IllegalInputError),
                        (errors.SettingsError, cpl.core.IllegalInputError),
                        (errors.OutputError, cpl.core.FileIOError),
                        (errors.SoxsError, cpl.core.IllegalInputError)]:
        got = recipe_module._cpl_error(cls("x.fits: broken"))
        assert type(got) is expect and "x.fits: broken" in str(got)


# -- stack_method = cpl: CPL's image-list clipping, offered and measured ---------------

def cpl_sigclip_reference(stack, bad, kappa, keepfrac, mode):
    """CPL's documented cpl_imagelist_collapse_sigclip_create, written out:
    per pixel, clip about the centre (median first for MEDIAN_MEAN, then the
    mean) at kappa sample standard deviations until nothing changes or the
    next pass would keep no more than keepfrac of the frames; the result is
    the mean of the last set before that pass, the contribution its size."""
    ni = stack.shape[0]
    notok = max(1, int(keepfrac * ni))
    flat, flatbad = stack.reshape(ni, -1), bad.reshape(ni, -1)
    out = np.zeros(flat.shape[1])
    contrib = np.zeros(flat.shape[1], int)
    for p in range(flat.shape[1]):
        vals = [float(flat[k, p]) for k in range(ni) if not flatbad[k, p]]
        nok, prevok, mean = len(vals), ni + 1, 0.0
        while notok < nok < prevok:
            mean = float(np.mean(vals))
            first = prevok == ni + 1
            center = float(np.median(vals)) if mode == "median" or (
                mode == "median_mean" and first) else mean
            stdev = float(np.std(vals, ddof=1))
            prevok = nok
            vals = [v for v in vals if center - kappa * stdev < v < center + kappa * stdev]
            nok = len(vals)
        if prevok == ni + 1:
            prevok = nok
            mean = float(np.mean(vals)) if vals else 0.0
        out[p], contrib[p] = mean, prevok
    return out.reshape(stack.shape[1:]), contrib.reshape(stack.shape[1:])


def test_cpl_combine_is_cpls_documented_algorithm(recipe_module):
    rng = np.random.default_rng(3)
    stack = rng.normal(10, 2, (5, 12, 16)).astype(np.float32)
    stack[rng.integers(0, 5, 40), rng.integers(0, 12, 40), rng.integers(0, 16, 40)] += \
        rng.uniform(20, 3000, 40)
    stack[:, 0, 0] += np.array([0, 0, 500, 900, 0], np.float32)      # two hits, one pixel
    bad = rng.random(stack.shape) < 0.05
    bad[:, 1, 1] = True                                                # no valid sample
    frames = [(s, b.astype(np.uint8)) for s, b in zip(stack, bad, strict=True)]
    mean, contrib = recipe_module.cpl_combine(frames, 3.0)
    want, want_n = cpl_sigclip_reference(stack, bad, 3.0, recipe_module.CPL_KEEPFRAC,
                                         "median_mean")
    np.testing.assert_array_equal(np.asarray(contrib), want_n)
    np.testing.assert_allclose(np.asarray(mean), want, rtol=1e-6, atol=1e-5)
    assert want_n[1, 1] == 0 and want_n.max() == 5 and (want_n < 5).any()


def _cosmic_residuals(truth, product):
    from soxs_lib.config import flags
    with fits.open(product) as h:
        flux, err, qual = (h[n].data for n in ("FLUX", "ERR", "QUAL"))
    hit = np.zeros(truth.dark.size, bool)
    for c in truth.cosmics:
        hit[c] = True
    bad = flags.NODATA | flags.SATURATED | flags.LOWCOVER | flags.BADINPUT
    hit = hit.reshape(truth.dark.shape) & ~truth.hot & ((qual & bad) == 0)
    z = np.abs(flux[hit] - truth.dark[hit]) / err[hit]
    return hit.sum(), int((z > 5).sum()), float(z.max())


def test_cpl_stacking_leaves_cosmic_rays_at_five_frames_the_default_removes(
        recipe_module, nir, tmp_path):
    truth, sof = nir
    assert len(truth.paths) == 5
    results = {}
    for method in ("soxs", "cpl"):
        work = tmp_path / method
        work.mkdir()
        out = _run(recipe_module, sof, work, {"soxs.soxs_mdark.stack_method": method})
        product = work / Path(list(out)[0].file).name
        h = fits.getheader(product)
        names = {h[f"HIERARCH ESO PRO REC1 PARAM{i} NAME"]: h[f"HIERARCH ESO PRO REC1 PARAM{i} VALUE"]
                 for i in range(1, len(params.PARAMETERS) + 1)}
        assert names["stack_method"] == method
        results[method] = (set(h.keys()), _cosmic_residuals(truth, product))
    (keys_soxs, (hits, off_soxs, worst_soxs)), (keys_cpl, (_, off_cpl, worst_cpl)) = \
        results["soxs"], results["cpl"]
    assert keys_cpl == keys_soxs                      # the same product keywords
    assert off_soxs == 0 and worst_soxs < 6           # the default removes them
    assert off_cpl > hits / 2 and worst_cpl > 100     # CPL's 3-sigma clip on 5 cannot
