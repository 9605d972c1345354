"""The EDPS workflow (``workflows/soxs``): its rules as plain functions, the
workflow read as EDPS reads it (``edps_standin``) on a messy night against
what ``soxs prep`` makes of the same files, its parameter file against the
declarations, ``soxs edps-config``, and, where EDPS is installed, the
workflow loaded by EDPS itself."""

from __future__ import annotations

import importlib
from pathlib import Path
import sys

from astropy.io import fits
from astropy.time import Time, TimeDelta
import numpy as np
import pytest
import yaml

import edps_standin
from soxs_lib.cli import main as cli
from soxs_lib.cli.edps import PARAMETERS_FILE, parameters_yaml
from soxs_lib.config import keywords as kw
from soxs_lib.config import params
from soxs_lib.config.detector import detector
from soxs_lib.io.rawheader import raw_header
from soxs_lib.night import classify, group

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"


# -- the rules, as plain functions --------------------------------------------------

class Keywords(dict):
    """A file as EDPS hands it to a rule: a missing keyword reads as None."""

    def __getitem__(self, name):
        return self.get(name)


def edps_keywords(header: fits.Header) -> Keywords:
    return Keywords({(k[4:] if k.startswith("ESO ") else k).lower().replace(" ", "."): v
                     for k, v in header.items()})


def dark_header(arm="NIR", readout=None, binning=(1, 1), exptime=300.0,
                start="2026-01-11T21:00:00", i=0, nexp=3):
    t0 = Time(start, format="isot", scale="utc")
    t = t0 + TimeDelta((exptime + 30.0) * i, format="sec")
    det = detector(arm)
    return raw_header(arm, exptime, (t0, t, i, nexp), binning,
                      (det.gain, det.ron, det.readout(readout)))


@pytest.fixture
def rules(monkeypatch):
    monkeypatch.syspath_prepend(str(WORKFLOWS))
    edps_standin.install(monkeypatch)
    return importlib.import_module("soxs.soxs_rules")


def test_the_keywords_are_spelled_as_edps_spells_them(rules):
    kwd = importlib.import_module("soxs.soxs_keywords")
    assert (kwd.dpr_type, kwd.seq_arm, kwd.det_read_curid, kwd.tpl_start, kwd.mjd_obs) == \
        ("dpr.type", "seq.arm", "det.read.curid", "tpl.start", "mjd-obs")
    assert kwd.set_keywords == ["seq.arm", "exptime", "det.read.curid", "det.read.curname",
                                "det.binx", "det.biny", "tpl.start"]


def test_rules_take_raw_darks_of_each_arm_and_nothing_else(rules):
    nir, vis = dark_header("NIR"), dark_header("VIS", "SHG", (2, 2))
    assert rules.is_raw_dark_nir(edps_keywords(nir))
    assert not rules.is_raw_dark_vis(edps_keywords(nir))
    assert rules.is_raw_dark_vis(edps_keywords(vis))
    assert not rules.is_master_bias_vis(edps_keywords(vis))
    refused = {
        "an old product that kept its DPR keywords": {"ESO PRO CATG": "DARK_NIR"},
        "soxspipe's master dark": {"ESO PRO CATG": "MASTER_DARK_NIR"},
        "a flat": {"ESO DPR TYPE": "LAMP,FLAT"},
        "a raw bias": {"ESO DPR TYPE": "BIAS"},
        "another instrument's dark": {"INSTRUME": "XSHOOTER"},
        "a dark of an arm soxs_mdark does not reduce": {"ESO SEQ ARM": "UVB"},
        "a dark without its readout": {"ESO DET READ CURID": None},
        "a dark without MJD-OBS": {"MJD-OBS": None},
        "a dark whose EXPTIME is no number": {"EXPTIME": "long"},
    }
    for why, cards in refused.items():
        h = nir.copy()
        for k, v in cards.items():
            if v is None:
                del h[k]
            else:
                h[k] = v
        f = edps_keywords(h)
        assert not (rules.is_raw_dark_nir(f) or rules.is_raw_dark_vis(f)), why
        assert classify.header_kind(h)[0] == "", why      # prep refuses it too
    unbinned = vis.copy()
    del unbinned["ESO DET BINX"]
    assert not rules.is_raw_dark_vis(edps_keywords(unbinned))


def test_the_master_bias_is_taken_by_its_pro_catg(rules):
    h = dark_header("VIS", "SHG", (2, 2))
    h["HIERARCH ESO PRO CATG"] = kw.BIAS_TAG
    assert rules.is_master_bias_vis(edps_keywords(h))
    assert not rules.is_raw_dark_vis(edps_keywords(h))
    h["INSTRUME"] = "XSHOOTER"
    assert not rules.is_master_bias_vis(edps_keywords(h))


# -- a messy night, read by the workflow and by prep ----------------------------------

def _write(path: Path, header: fits.Header) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(np.zeros((16, 16), np.float32), header).writeto(path)
    return path


def _template(root, name, n, nexp=None, **spec):
    for i in range(n):
        _write(root / f"{name}_{i + 1}.fits", dark_header(i=i, nexp=nexp or n, **spec))


def _master_bias(root, name, readout, binning, date):
    h = dark_header("VIS", readout, binning, exptime=0.0, start=date)
    h["HIERARCH ESO PRO CATG"] = kw.BIAS_TAG
    h["HIERARCH ESO DPR TYPE"] = "BIAS"
    return _write(root / name, h)


def messy_night(root: Path) -> Path:
    raw, calib = root / "raw" / "2026-03-02", root / "calib"
    t = "2026-03-0"
    # two templates of one arm and EXPTIME in one night, then other EXPTIMEs
    _template(raw, "nir300a", 3, start=f"{t}2T21:10:00")
    _template(raw, "nir300b", 3, start=f"{t}2T23:40:00")
    _template(raw, "nir60", 4, exptime=60.0, start=f"{t}3T01:00:00")
    _template(raw, "nir600_aborted", 3, nexp=5, exptime=600.0, start=f"{t}3T02:00:00")
    _template(raw, "nir10_too_few", 2, exptime=10.0, start=f"{t}3T04:00:00")
    _template(raw, "nir900_under_way", 3, nexp=5, exptime=900.0, start=f"{t}3T08:00:00")
    _template(raw, "vis600_shg", 3, arm="VIS", readout="SHG", binning=(2, 2),
              exptime=600.0, start=f"{t}2T20:30:00")
    _template(raw, "vis1800_shg", 3, arm="VIS", readout="SHG", binning=(2, 2),
              exptime=1800.0, start=f"{t}3T05:00:00")
    _template(raw, "vis300_fhg", 3, arm="VIS", readout="FHG", binning=(2, 2),
              exptime=300.0, start=f"{t}3T06:45:00")
    _template(raw, "vis60_slg", 3, arm="VIS", readout="SLG", binning=(1, 1),
              exptime=60.0, start=f"{t}3T07:30:00")
    _template(raw, "vis900_flg", 3, arm="VIS", readout="FLG", binning=(2, 2),
              exptime=900.0, start=f"{t}3T09:10:00")
    # frames that are not raw SOXS darks, beside the raws
    old = dark_header(start=f"{t}1T21:00:00")
    old["HIERARCH ESO PRO CATG"] = "DARK_NIR"           # an old product with DPR keywords
    _write(raw / "old_master_dark.fits", old)
    old["HIERARCH ESO PRO CATG"] = "MASTER_DARK_NIR"
    _write(raw / "soxspipe_master_dark.fits", old)
    for name, cards in (("flat", {"ESO DPR TYPE": "LAMP,FLAT"}),
                        ("bias", {"ESO DPR TYPE": "BIAS"}),
                        ("xsh_dark", {"INSTRUME": "XSHOOTER"}),
                        ("no_readout", {"ESO DET READ CURNAME": None})):
        h = dark_header(start=f"{t}2T19:00:00")
        for k, v in cards.items():
            if v is None:
                del h[k]
            else:
                h[f"HIERARCH {k}" if k.startswith("ESO") else k] = v
        _write(raw / f"{name}.fits", h)
    (raw / "notes.txt").write_text("not a frame\n")
    # master biases: SHG 2x2 near and far, FHG 2x2 only three weeks before,
    # FLG of another binning, and another instrument's
    _master_bias(calib, "mb_shg_near.fits", "SHG", (2, 2), f"{t}2T16:00:00")
    _master_bias(calib, "mb_shg_far.fits", "SHG", (2, 2), "2026-02-20T16:00:00")
    _master_bias(calib, "mb_fhg_old.fits", "FHG", (2, 2), "2026-02-09T16:00:00")
    _master_bias(calib, "mb_flg_1x1.fits", "FLG", (1, 1), f"{t}2T16:00:00")
    xsh = _master_bias(calib, "mb_xsh.fits", "SHG", (2, 2), f"{t}2T18:00:00")
    fits.setval(xsh, "INSTRUME", value="XSHOOTER")
    return root


def prep_sets(root: Path) -> set:
    frames = group.one_copy_each([classify.classify(p) for p in classify.find_files(root)])
    return {(frozenset(Path(f.path) for f in s.frames),
             Path(s.bias.path) if s.bias else None)
            for s in group.group(frames) if len(s.complete) >= kw.MIN_FRAMES}


def edps_sets(root: Path, monkeypatch) -> tuple[set, dict]:
    monkeypatch.syspath_prepend(str(WORKFLOWS))
    edps_standin.install(monkeypatch)
    wkf = importlib.import_module("soxs.soxs_wkf")
    files = [f for p in sorted(root.rglob("*")) if p.is_file()
             for f in [edps_standin.read(p)] if f is not None]
    tasks = [wkf.mdark_nir_task, wkf.mdark_vis_task]
    classified = {rule.tag: {f.path for f in files if rule.matches(f)}
                  for t in tasks for rule in t.main.rules + [r for a in t.associated
                                                             for r in a[0].rules]}
    out = set()
    for job in edps_standin.jobs(tasks, files):
        bias = job.associated.get(0)
        out.add((frozenset(f.path for f in job.files), bias.path if bias else None))
    return out, classified


def test_the_workflow_forms_the_sets_prep_forms(tmp_path, monkeypatch):
    root = messy_night(tmp_path / "night")
    expected = prep_sets(root)
    got, classified = edps_sets(root, monkeypatch)
    assert got == expected
    names = {frozenset(p.name.rsplit("_", 1)[0] for p in files): bias for files, bias in got}
    assert len(got) == 10
    assert names[frozenset({"nir300a"})] is None and frozenset({"nir300b"}) in names
    assert frozenset({"nir600_aborted"}) in names           # cut short, 3 of 5
    assert frozenset({"nir10_too_few"}) not in names        # 2 frames make no master
    assert names[frozenset({"vis600_shg"})].name == "mb_shg_near.fits"
    assert names[frozenset({"vis1800_shg"})].name == "mb_shg_near.fits"
    assert names[frozenset({"vis300_fhg"})].name == "mb_fhg_old.fits"   # the only one
    assert names[frozenset({"vis900_flg"})] is None          # no bias of its binning
    assert names[frozenset({"vis60_slg"})] is None


def test_the_workflow_takes_no_file_that_is_not_a_raw_dark(tmp_path, monkeypatch):
    root = messy_night(tmp_path / "night")
    _, classified = edps_sets(root, monkeypatch)
    frames = [classify.classify(p) for p in classify.find_files(root)]
    for tag in kw.RAW_TAGS + (kw.BIAS_TAG,):
        assert classified[tag] == {Path(f.path) for f in frames if f.kind == tag}, tag
    darks = classified["DARK_NIR"] | classified["DARK_VIS"]
    assert not {p.name for p in darks} & {"old_master_dark.fits", "soxspipe_master_dark.fits",
                                          "flat.fits", "bias.fits", "xsh_dark.fits",
                                          "no_readout.fits"}
    assert {p.name for p in classified[kw.BIAS_TAG]} == {
        "mb_shg_near.fits", "mb_shg_far.fits", "mb_fhg_old.fits", "mb_flg_1x1.fits"}


def test_the_simulated_night_gives_the_same_sets_to_both(night_headers, monkeypatch):
    got, _ = edps_sets(night_headers, monkeypatch)
    assert got == prep_sets(night_headers)
    assert len(got) == 9


@pytest.fixture
def night_headers(tmp_path):
    """The headers of ``soxs simulate --night`` over tiny images (the pixels
    play no part in classifying and grouping)."""
    from soxs_lib.io.simulate import simulate_night
    full = tmp_path / "full"
    simulate_night(full, seed=5, cosmics_per_frame=1)
    small = tmp_path / "small"
    for p in full.rglob("*.fits"):
        _write(small / p.relative_to(full), fits.getheader(p))
    return small


# -- the parameter file and edps-config ------------------------------------------------

def test_the_parameter_file_is_generated_from_the_declarations():
    shipped = (WORKFLOWS / PARAMETERS_FILE).read_text()
    assert shipped == parameters_yaml(), \
        "regenerate: soxs edps-config --parameters > workflows/soxs/soxs_parameters.yaml"
    content = yaml.safe_load(shipped)["default_parameters"]
    assert content["is_default"] is True
    tasks = content["recipe_parameters"]
    assert set(tasks) == {kw.edps_task(a) for a in kw.ARMS} == {"mdark_nir", "mdark_vis"}
    for values in tasks.values():
        assert values == {f"soxs.soxs_mdark.{p.name}": p.default for p in params.PARAMETERS}
        assert values["soxs.soxs_mdark.stacked_clipping_sigma"] == 5.0


def test_a_parameter_added_to_the_declarations_reaches_the_parameter_file(monkeypatch):
    extra = params.Param("test_only", float, 1.5, 0.0, 2.0, "a parameter for this test")
    monkeypatch.setattr(params, "PARAMETERS", params.PARAMETERS + (extra,))
    assert "soxs.soxs_mdark.test_only: 1.5" in parameters_yaml()


def test_edps_config_says_where_the_workflow_and_the_recipe_are(capsys):
    assert cli.main(["edps-config"]) == 0
    lines = capsys.readouterr().out.splitlines()
    [wdir] = [x.split("=", 1)[1] for x in lines if x.startswith("workflow_dir=")]
    assert (Path(wdir) / "soxs" / "soxs_wkf.py").is_file()
    assert (Path(wdir) / PARAMETERS_FILE).is_file()
    assert "esorex_path=pyesorex" in lines
    [rdir] = [x.split("=", 1)[1] for x in lines if x.startswith("export PYESOREX_PLUGIN_DIR=")]
    assert (Path(rdir) / "soxs_mdark.py").is_file()
    assert "edps -w soxs.soxs_wkf -i <raw folder> -c" in lines
    assert cli.main(["edps-config", "--parameters"]) == 0
    assert capsys.readouterr().out == parameters_yaml()


# -- EDPS itself, where it is installed ---------------------------------------------

def test_edps_loads_the_workflow(monkeypatch):
    pytest.importorskip("edps")
    monkeypatch.syspath_prepend(str(WORKFLOWS))
    for name in [m for m in sys.modules if m == "soxs" or m.startswith("soxs.")]:
        monkeypatch.delitem(sys.modules, name)
    wkf = importlib.import_module("soxs.soxs_wkf")
    assert wkf.mdark_nir_task is not None and wkf.mdark_vis_task is not None
