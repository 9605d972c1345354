"""soxspipe's names for a dark set's SOF and product, used by prep, reduce
all, soxs mdark and the recipe alike; raw headers as real SOXS darks carry
them."""

from __future__ import annotations

from pathlib import Path
import shutil
import subprocess
import sys

from astropy.io import fits
import numpy as np
import pytest

from soxs_lib.io import naming
from soxs_lib.night import classify, group
from soxs_lib.io.simulate import simulate_darks

SOXS = Path(sys.executable).with_name("soxs")


@pytest.mark.parametrize("args, name", [
    # the seeds' example: NIR has no binning field, CURID 3, 5.0 s as 5_0
    (("2026-01-11T08:29:24.123", "NIR", "1x1", 3, 5.0), "20260111T082924_NIR_3_MDARK_5_0S_SOXS"),
    (("2026-01-11T08:29:24", "VIS", "2x2", "1", 1.25), "20260111T082924_VIS_2X2_1_MDARK_1_25S_SOXS"),
    (("2026-01-11T08:29:24", "VIS", "1x1", 4, 300), "20260111T082924_VIS_1X1_4_MDARK_300_0S_SOXS"),
    (("2026-01-11T08:29:24", "VIS", "1x2", 2, 0.004), "20260111T082924_VIS_1X2_2_MDARK_0_0S_SOXS"),
    (("2026-01-11T08:29:24", "NIR", "1x1", None, 60.0), "20260111T082924_NIR_MDARK_60_0S_SOXS"),
    (("2026-01-11T08:29:24", "NIR", "1x1", 3.0, 1800.456), "20260111T082924_NIR_3_MDARK_1800_46S_SOXS"),
])
def test_the_rule_is_soxspipes(args, name):
    assert naming.set_name(*args) == name


def test_repeated_names_get_a_suffix_in_order():
    assert naming.distinct(["A", "B", "A", "A", "B"]) == ["A", "B", "A_2", "A_3", "B_2"]


def _frame(path, tpl_start):
    return classify.Frame(path=path, size=1, mtime=0.0, kind="DARK_NIR", arm="NIR",
                          exptime=300.0, readout="NDR", readout_id="3", binning="1x1",
                          night="2026-01-11", tpl_start=tpl_start, tpl_nexp=3,
                          mjd_obs=61051.5, date_obs="2026-01-11T12:00:00.000")


def test_two_templates_starting_in_the_same_second_get_distinct_names_whatever_the_order():
    a = [_frame(f"/r/a{k}.fits", "2026-01-11T12:00:00") for k in range(3)]
    b = [_frame(f"/r/b{k}.fits", "2026-01-11T12:00:00.5") for k in range(3)]
    names = {tuple(f.path for f in s.frames): s.sof_name for s in group.group(a + b)}
    again = {tuple(f.path for f in s.frames): s.sof_name for s in group.group(b[::-1] + a)}
    base = "20260111T120000_NIR_3_MDARK_300_0S_SOXS"
    assert sorted(names.values()) == [f"{base}.sof", f"{base}_2.sof"]
    assert again == names


def test_simulated_darks_carry_the_headers_of_real_soxs_darks(tmp_path):
    nir = simulate_darks(tmp_path / "n", arm="NIR", nframes=3, cosmics_per_frame=1)
    vis = simulate_darks(tmp_path / "v", arm="VIS", nframes=3, binning=2, readout="SLG",
                         cosmics_per_frame=1)
    hn, hv = fits.getheader(nir.paths[0]), fits.getheader(vis.paths[0])
    assert (hn["ESO DET READ CURID"], hn["ESO DET READ CURNAME"]) == (3, "NDR")
    assert (hv["ESO DET READ CURID"], hv["ESO DET READ CURNAME"]) == (3, "SLG")
    assert "ESO DET BINX" not in hn and (hv["ESO DET BINX"], hv["ESO DET BINY"]) == (2, 2)
    for h, arm in ((hn, "NISE"), (hv, "VISE")):
        for key in ("ESO INS ACFW ID", "ESO TPL ID", "ESO TPL NAME", "ESO OBS NAME",
                    "ESO OBS START", f"ESO INS {arm} NAME"):
            assert str(h[key]).strip(), key
        for key in ("RA", "DEC", "ESO OBS ID"):
            float(h[key])
        assert h[f"ESO INS {arm} SWSIM"] is False
    assert [fits.getheader(p)["ESO TPL EXPNO"] for p in nir.paths] == [1, 2, 3]


def test_soxs_simulate_refuses_a_readout_mode_the_arm_lacks(tmp_path):
    res = subprocess.run([str(SOXS), "simulate", "--arm", "NIR", "--readout", "SHG",
                          "-o", str(tmp_path / "x")], capture_output=True, text=True)
    assert res.returncode == 2 and "NIR has no readout mode 'SHG'" in res.stderr
    assert "Traceback" not in res.stderr


def _mdark(*args):
    res = subprocess.run([str(SOXS), "mdark", *map(str, args)], capture_output=True,
                         text=True, timeout=300)
    assert "Traceback" not in res.stderr, res.stderr
    return res


@pytest.fixture
def first_dead(tmp_path):
    """Four small VIS darks whose earliest is constant (a failed readout)."""
    truth = simulate_darks(tmp_path / "raw", arm="VIS", nframes=4, seed=21, binning=2,
                           readout="FHG", cosmics_per_frame=20)
    with fits.open(truth.paths[0]) as h:
        fits.PrimaryHDU(np.full_like(h[0].data, 1000), h[0].header).writeto(
            truth.paths[0], overwrite=True)
    return truth


def test_a_product_is_named_by_the_set_as_given_not_by_the_frames_kept(first_dead, tmp_path):
    res = _mdark(tmp_path / "raw" / "mdark.sof", "-o", tmp_path / "ws")
    assert res.returncode == 0, res.stderr
    first = fits.getheader(first_dead.paths[0])["DATE-OBS"]
    stem = naming.set_name(first, "VIS", "2x2", 4, 300.0)
    assert stem == "20260111T082924_VIS_2X2_4_MDARK_300_0S_SOXS"
    prod = tmp_path / "ws/products/soxs_mdark" / f"{stem}.fits"
    h = fits.getheader(prod)
    assert h["PIPEFILE"] == prod.name and h["NCOMBINE"] == 3
    assert (tmp_path / "ws/qc/soxs_mdark" / f"{stem}_QC.png").exists()
    log = (tmp_path / "ws/products/soxs_mdark" / f"{stem}_log.txt").read_text()
    assert "mdark.sof" in log.splitlines()[-1]


def test_a_sof_named_by_the_rule_names_its_product_another_does_not(first_dead, tmp_path):
    stem = "20260111T082924_VIS_2X2_4_MDARK_300_0S_SOXS"
    sof = tmp_path / "raw" / "mdark.sof"
    repeat = tmp_path / f"{stem}_2.sof"
    shutil.copy(sof, repeat)
    repeat.write_text("".join(f"raw/{line}\n" for line in sof.read_text().splitlines()))
    assert _mdark(repeat, "-o", tmp_path / "ws").returncode == 0
    other = tmp_path / f"{stem.replace('VIS', 'NIR')}.sof"    # another set's name
    other.write_text(repeat.read_text())
    assert _mdark(other, "-o", tmp_path / "ws").returncode == 0
    names = sorted(p.name for p in (tmp_path / "ws/products/soxs_mdark").glob("*.fits"))
    assert names == [f"{stem}.fits", f"{stem}_2.fits"]


def test_reduce_all_reduces_a_set_whose_first_frame_is_dropped_once(first_dead, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(tmp_path / "raw", ws / "raw")
    (ws / "raw" / "mdark.sof").unlink()
    assert subprocess.run([str(SOXS), "prep", str(ws)], capture_output=True).returncode == 0
    runs = [subprocess.run([str(SOXS), "reduce", "all", str(ws), "-j", "1"],
                           capture_output=True, text=True, timeout=300) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert "(up to date)" not in runs[0].stdout and "PASS (up to date)" in runs[1].stdout
    products = list((ws / "products/soxs_mdark").glob("*.fits"))
    assert [p.name for p in products] == ["20260111T082924_VIS_2X2_4_MDARK_300_0S_SOXS.fits"]


def test_reduce_all_names_a_product_as_its_sof_also_one_an_operator_named(first_dead, tmp_path):
    ws = tmp_path / "ws"
    (ws / "sof").mkdir(parents=True)
    sof = ws / "sof" / "my_darks.sof"
    sof.write_text("".join(f"{p} DARK_VIS\n" for p in first_dead.paths))
    runs = [subprocess.run([str(SOXS), "reduce", "all", str(ws), "-j", "1"],
                           capture_output=True, text=True, timeout=300) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert "PASS (up to date)" in runs[1].stdout
    assert sorted(p.name for p in (ws / "products/soxs_mdark").iterdir()) == [
        "my_darks.fits", "my_darks_log.txt"]
    assert fits.getheader(ws / "products/soxs_mdark/my_darks.fits")["PIPEFILE"] == \
        "my_darks.fits"
