"""A soxspipe user's files: its default settings file, the QC DETECTOR TEMP
it checks, and the SOFs of its workspaces (paths relative to the root)."""

from __future__ import annotations

import os
from pathlib import Path
import shutil
import subprocess
import sys
import zipfile

from astropy.io import fits
import numpy as np
import pytest

from soxs_lib.cli import main as cli
from soxs_lib.io import sof as sofio
from soxs_lib.config import params, settings
from soxs_lib.config import qc
from soxs_lib.core import qcvalues
from soxs_lib.config.errors import DataNotFound, InputError, SettingsError

SOXSPIPE = "soxspipe==0.17.4"
SOXSPIPE_SETTINGS = "soxspipe/soxs_default_settings.yaml"


@pytest.fixture(scope="session")
def soxspipe_settings(tmp_path_factory) -> Path:
    """The settings file soxspipe 0.17.4 installs, read out of its wheel."""
    where = tmp_path_factory.mktemp("soxspipe_wheel")
    try:
        got = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                              "--disable-pip-version-check", "-q", "-d", str(where),
                              SOXSPIPE], capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        pytest.skip(f"the package index did not answer within 180 s for {SOXSPIPE}")
    wheels = list(where.glob("*.whl"))
    if got.returncode != 0 or not wheels:
        pytest.skip(f"cannot download {SOXSPIPE} from the package index: "
                    f"{(got.stderr or got.stdout).strip().splitlines()[-1:]}")
    path = where / "soxs_default_settings.yaml"
    with zipfile.ZipFile(wheels[0]) as whl:
        path.write_bytes(whl.read(SOXSPIPE_SETTINGS))
    return path


def header_params(h) -> dict:
    return {h[f"HIERARCH ESO PRO REC1 PARAM{i} NAME"]: h[f"HIERARCH ESO PRO REC1 PARAM{i} VALUE"]
            for i in range(1, len(params.PARAMETERS) + 1)}


def product(root: Path) -> Path:
    return next((root / "products/soxs_mdark").glob("*.fits"))


def run_log(root: Path) -> str:
    return next((root / "products/soxs_mdark").glob("*_log.txt")).read_text()


# -- soxspipe's own default settings file --------------------------------------------

def test_soxspipe_default_settings_parsed_as_soxspipe_means_them(soxspipe_settings):
    s = settings.load(soxspipe_settings)
    assert s.warnings == []          # every soxs-mdark key is known, detector-temp too
    assert s.values == {"stacked_clipping_sigma": 3.0, "stacked_clipping_iterations": 3,
                        "frame_clipping_sigma": 3.0, "frame_clipping_iterations": 3}
    for arm in ("NIR", "VIS"):
        r = s.qc_ranges(arm)
        assert r["MDARK MEDIAN"] == (-15.0, 50.0) and r["RAW RON"] == (0.0, 30.0)
    # the flat detector-temp range, in kelvin, is the NIR array's; VIS keeps its own
    assert s.qc_ranges("NIR")["DETECTOR TEMP"] == (0.0, 50.0)
    assert s.qc_ranges("VIS")["DETECTOR TEMP"] == qc.default_ranges("VIS")["DETECTOR TEMP"]
    assert s.notes("NIR") == []
    [note] = s.notes("VIS")
    assert "detector-temp [0, 50] K fits NIR, not VIS" in note


@pytest.mark.parametrize("arm_set", ["nir", "vis_small"])
def test_soxs_mdark_runs_with_soxspipes_default_settings(soxspipe_settings, arm_set,
                                                         request, tmp_path):
    truth, sof = request.getfixturevalue(arm_set)
    status = cli.main(["mdark", str(sof), "-o", str(tmp_path), "-s", str(soxspipe_settings)])
    assert status == 0
    h = fits.getheader(product(tmp_path))
    used = header_params(h)
    for name in ("stacked_clipping_sigma", "frame_clipping_sigma"):
        assert float(used[name]) == 3.0
    for name in ("stacked_clipping_iterations", "frame_clipping_iterations"):
        assert int(used[name]) == 3
    key, offset = {"NIR": ("ESO INS TEMP217 VAL", 0.0),
                   "VIS": ("ESO INS TEMP104 VAL", 273.15)}[truth.arm]
    expect = np.mean([fits.getheader(p)[key] for p in truth.paths]) + offset
    assert h["HIERARCH ESO QC DETECTOR TEMP"] == pytest.approx(expect, abs=1e-9)
    assert h["HIERARCH ESO QC DETECTOR TEMP STATUS"] == "PASS"
    expected_range = "[0, 50]" if truth.arm == "NIR" else "[0, 165]"
    assert h.comments["HIERARCH ESO QC DETECTOR TEMP STATUS"] == f"range {expected_range}"
    log = run_log(tmp_path)
    assert f"settings {soxspipe_settings.resolve()}" in log
    assert "parameter stacked_clipping_sigma = 3.0 (settings file)" in log
    assert "parameter hot_pixel_sigma = 5.0 (default)" in log


def test_vis_report_notes_the_nir_temperature_range(soxspipe_settings, vis_small, tmp_path,
                                                    capsys):
    truth, sof = vis_small
    assert cli.main(["mdark", str(sof), "-o", str(tmp_path), "-s",
                     str(soxspipe_settings)]) == 0
    out = capsys.readouterr().out
    notes = out.split("Notes:", 1)[1]
    assert "detector-temp [0, 50] K fits NIR, not VIS" in notes
    assert "fits NIR, not VIS" in run_log(tmp_path)


# -- the mapping of each soxspipe key --------------------------------------------------

SOXSPIPE_DOC = {
    "version": 1, "instrument": "soxs", "save-intermediate-products": False,
    "soxs-mbias": {"frame-clipping-sigma": 9, "qc-acceptable-ranges": {"structx": [-3, 1]}},
    "soxs-mdark": {"stacked-clipping-sigma": 4, "stacked-clipping-iterations": 2,
                   "frame-clipping-sigma": 6, "frame-clipping-iterations": 7,
                   "qc-acceptable-ranges": {"mdark-median": [-1, 2], "raw-ron": [0, 9],
                                            "detector-temp": [0, 165],
                                            "cpath-temp": [0, 20]}},
}


@pytest.mark.parametrize("key,name,value", [
    ("stacked-clipping-sigma", "stacked_clipping_sigma", 4.0),
    ("stacked-clipping-iterations", "stacked_clipping_iterations", 2),
    ("frame-clipping-sigma", "frame_clipping_sigma", 6.0),
    ("frame-clipping-iterations", "frame_clipping_iterations", 7),
])
def test_each_soxspipe_parameter_key_maps_to_its_parameter(key, name, value):
    s = settings.parse(SOXSPIPE_DOC, "sp.yaml")
    assert params.lookup(key).name == name
    assert s.values[name] == value and type(s.values[name]) is type(value)
    assert getattr(params.resolve(s.values), name) == value


@pytest.mark.parametrize("key,name,arms", [
    ("mdark-median", "MDARK MEDIAN", ("NIR", "VIS")),
    ("raw-ron", "RAW RON", ("NIR", "VIS")),
    ("detector-temp", "DETECTOR TEMP", ("VIS",)),   # [0, 165] K is the VIS CCD's
])
def test_each_soxspipe_qc_key_maps_to_its_metric_and_arms(key, name, arms):
    s = settings.parse(SOXSPIPE_DOC, "sp.yaml")
    given = tuple(float(v) for v in SOXSPIPE_DOC["soxs-mdark"]["qc-acceptable-ranges"][key])
    assert qc.BY_NAME[qc.normalise_name(key)].name == name
    for arm in ("NIR", "VIS"):
        expect = given if arm in arms else qc.default_ranges(arm)[name]
        assert s.qc_ranges(arm)[name] == expect


def test_unknown_soxspipe_keys_are_warnings_naming_them_own_format_errors():
    s = settings.parse(SOXSPIPE_DOC, "sp.yaml")
    assert len(s.warnings) == 1 and "'cpath-temp'" in s.warnings[0]
    assert "cpath-temp" in " ".join(s.notes("NIR"))
    doc = {"soxs-mdark": {"frame-clipping-sigmaa": 3}}
    [warning] = settings.parse(doc, "sp.yaml").warnings
    assert "frame-clipping-sigmaa" in warning
    with pytest.raises(SettingsError, match="unknown QC metric 'cpath-temp'"):
        settings.parse({"soxs_mdark": {"qc-acceptable-ranges": {"cpath-temp": [0, 1]}}}, "o")
    with pytest.raises(SettingsError, match="unknown parameter 'frame_clipping_sigmaa'"):
        settings.parse({"soxs_mdark": {"frame_clipping_sigmaa": 3}}, "o")
    with pytest.raises(SettingsError, match="outside the allowed range"):
        settings.parse({"soxs-mdark": {"frame-clipping-sigma": -3}}, "sp.yaml")


def test_per_arm_sections_hold_parameters_and_ranges():
    s = settings.parse({"soxs-mdark": {"frame-clipping-sigma": 4,
                                       "nir": {"frame-clipping-sigma": 6,
                                               "qc-acceptable-ranges": {"detector-temp": [30, 45]}}}},
                       "sp.yaml")
    assert s.values_for("NIR")["frame_clipping_sigma"] == 6.0
    assert s.values_for("VIS")["frame_clipping_sigma"] == 4.0
    assert s.qc_ranges("NIR")["DETECTOR TEMP"] == (30.0, 45.0)


@pytest.mark.parametrize("rng,arms", [
    ((0, 50), ("NIR",)), ((0, 165), ("VIS",)), ((30, 45), ("NIR",)),
    ((150, 170), ("VIS",)), ((-300, -200), ()),
])
def test_a_flat_detector_temperature_range_applies_to_the_arm_it_fits(rng, arms):
    assert qc.fitting_arms("DETECTOR TEMP", rng) == arms
    assert qc.fitting_arms("MDARK MEDIAN", rng) == ("NIR", "VIS")


# -- QC DETECTOR TEMP -----------------------------------------------------------------

def test_detector_temperature_in_kelvin_per_arm():
    nir = [("a", {"ESO INS TEMP217 VAL": 40.0}), ("b", {"ESO INS TEMP217 VAL": 41.0})]
    assert qcvalues.detector_temperature(nir, "NIR") == (40.5, "")
    vis = [("a", {"ESO INS TEMP104 VAL": -110.0}), ("b", {"ESO INS TEMP104 VAL": -109.0})]
    value, note = qcvalues.detector_temperature(vis, "VIS")
    assert value == pytest.approx(163.65) and note == ""
    value, note = qcvalues.detector_temperature(
        vis + [("c", {}), ("d", {"ESO INS TEMP104 VAL": "n/a"})], "VIS")
    assert value == pytest.approx(163.65)
    assert "c, d" in note and "other 2 frame(s)" in note
    # the NIR keyword says nothing of the VIS CCD
    assert qcvalues.detector_temperature(nir, "VIS") == (
        None, "no raw dark carries a valid ESO INS TEMP104 VAL: no QC DETECTOR TEMP")


def test_frames_without_temperature_get_no_metric_and_a_note(small_set, tmp_path, capsys):
    truth, sof = small_set
    for path in truth.paths:
        with fits.open(path, mode="update") as hdul:
            del hdul[0].header["ESO INS TEMP104 VAL"]
    assert cli.main(["mdark", str(sof), "-o", str(tmp_path)]) == 0
    h = fits.getheader(product(tmp_path))
    assert "HIERARCH ESO QC DETECTOR TEMP" not in h and "HIERARCH ESO QC MDARK MEDIAN" in h
    assert h["HIERARCH ESO QC STATUS"] == "PASS"
    out = capsys.readouterr().out
    assert "no raw dark carries a valid ESO INS TEMP104 VAL" in out.split("Notes:", 1)[1]
    assert "no QC DETECTOR TEMP" in run_log(tmp_path)


def test_a_hot_detector_fails_qc(small_set, tmp_path):
    truth, sof = small_set
    for path in truth.paths:
        with fits.open(path, mode="update") as hdul:
            hdul[0].header["ESO INS TEMP104 VAL"] = -20.0      # the cooling has failed
    assert cli.main(["mdark", str(sof), "-o", str(tmp_path)]) == cli.EXIT_QC_FAILED
    h = fits.getheader(product(tmp_path))
    assert h["HIERARCH ESO QC DETECTOR TEMP"] == pytest.approx(253.15)
    assert h["HIERARCH ESO QC DETECTOR TEMP STATUS"] == "FAIL"


# -- SOFs: relative to the SOF's folder, else to the current folder -------------------

@pytest.fixture
def soxspipe_workspace(vis_small, tmp_path):
    """soxspipe's layout: raw/<date>/ frames, sof/ with ./raw/... paths."""
    truth, _ = vis_small
    ws = tmp_path / "workspace"
    raw = ws / "raw" / "2026-01-11"
    raw.mkdir(parents=True)
    for p in truth.paths:
        shutil.copy(p, raw / p.name)
    sof = ws / "sof" / "20260111T082924_VIS_2X2_1_MDARK_300_0S_SOXS.sof"
    sof.parent.mkdir()
    sof.write_text("".join(f"./raw/2026-01-11/{p.name} DARK_VIS\n" for p in truth.paths))
    return ws, sof


def test_soxspipe_workspace_reduced_from_its_root(soxspipe_workspace, monkeypatch, tmp_path):
    ws, sof = soxspipe_workspace
    monkeypatch.chdir(ws)
    assert cli.main(["mdark", "sof/" + sof.name, "-o", "."]) == 0
    prod = product(ws)
    h = fits.getheader(prod)
    assert h["HIERARCH ESO PRO REC1 RAW1 NAME"].startswith("SOXS_VIS_DARK")
    log = run_log(ws)
    assert "3 relative path(s) read relative to the current folder" in log
    # the rerun command in the log works from any folder
    before = fits.getdata(prod, "FLUX")
    command = log.rstrip().splitlines()[-1]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    rerun = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                           cwd=elsewhere, timeout=300,
                           env={**os.environ, "PATH": f"{Path(sys.executable).parent}:"
                                                      f"{os.environ.get('PATH', '')}"})
    assert rerun.returncode == 0, rerun.stderr
    np.testing.assert_array_equal(fits.getdata(prod, "FLUX"), before)


def test_sof_paths_beside_the_sof_win_and_are_logged(vis_small, monkeypatch, tmp_path):
    truth, sof = vis_small
    monkeypatch.chdir(tmp_path)     # the frames are not here: the SOF's folder finds them
    entries = sofio.parse_sof(sof)
    assert [p for p, _ in entries] == [sof.parent / p.name for p in truth.paths]
    monkeypatch.chdir(sof.parent)   # both readings name the same files: not ambiguous
    assert [p.resolve() for p, _ in sofio.parse_sof(sof)] == [
        p.resolve() for p in truth.paths]


def test_a_path_naming_two_files_is_refused_naming_both(soxspipe_workspace, monkeypatch):
    ws, sof = soxspipe_workspace
    first = sof.read_text().split()[0]
    decoy = sof.parent / first
    decoy.parent.mkdir(parents=True)
    shutil.copy(ws / first, decoy)
    monkeypatch.chdir(ws)
    with pytest.raises(InputError, match="ambiguous") as err:
        sofio.parse_sof(Path("sof") / sof.name)
    assert str(decoy.resolve()) in str(err.value)
    assert str((ws / first).resolve()) in str(err.value)
    assert cli.main(["mdark", "sof/" + sof.name, "-o", "."]) == 2
    assert not (ws / "products").exists() or not list((ws / "products").rglob("*.fits"))


def test_a_missing_frame_names_both_places_looked(soxspipe_workspace, monkeypatch, tmp_path):
    ws, sof = soxspipe_workspace
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataNotFound, match="file not found") as err:
        sofio.parse_sof(sof)
    first = sof.read_text().split()[0]
    assert str((sof.parent / first).resolve()) in str(err.value)
    assert str((tmp_path / first).resolve()) in str(err.value)
