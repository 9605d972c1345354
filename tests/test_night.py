"""A night in, every dark set out: prep (classify, group, SOFs), reduce all
(skip and redo, failures, the lock, signals), the QC database, watch, the
trend plot and the Dask path."""

from __future__ import annotations

import json
import os
from pathlib import Path
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import warnings

from astropy.io import fits
import numpy as np
import pytest

from soxs_lib.cli import main as cli
from soxs_lib.config import qc
from soxs_lib.night import classify, group, workspace
from soxs_lib.night.db import SCHEMA_VERSION, Database
from soxs_lib.io.simulate import NIGHT_SETS, simulate_darks, simulate_night

SOXS = Path(sys.executable).with_name("soxs")

# small sets (VIS binned 2x2): (EXPTIME, readout, start)
MINI = ((300.0, "SHG", "2026-01-11T21:00:00"), (600.0, "SHG", "2026-01-11T22:00:00"),
        (300.0, "FHG", "2026-01-11T23:00:00"))


def make_mini(root: Path) -> Path:
    raw = root / "raw" / "2026-01-11"
    for k, (exptime, readout, start) in enumerate(MINI):
        simulate_darks(raw, arm="VIS", nframes=3, exptime=exptime, binning=2, seed=40 + k,
                       readout=readout, start=start, write_sof=False, cosmics_per_frame=20,
                       prefix=f"SOXS_{k}")
    return root


@pytest.fixture(scope="module")
def mini_template(tmp_path_factory):
    return make_mini(tmp_path_factory.mktemp("mini_template"))


@pytest.fixture
def mini(mini_template, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(mini_template, ws)
    return ws


def raws(ws: Path) -> list[Path]:
    return sorted((ws / "raw").rglob("*.fits"))


def snapshot(ws: Path) -> dict:
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in ws.rglob("*") if p.is_file()}


# -- the night end to end ----------------------------------------------------------

@pytest.fixture(scope="module")
def night(tmp_path_factory):
    ws = tmp_path_factory.mktemp("night")
    truths = simulate_night(ws, seed=3)
    return ws, truths


def test_a_simulated_night_prepped_and_reduced(night, capsys):
    ws, truths = night
    assert cli.main(["prep", str(ws)]) == 0
    out = capsys.readouterr().out
    ready = [t for t, s in zip(truths, NIGHT_SETS, strict=True) if s[5] is None]
    assert f"{len(truths)} dark set(s), {len(ready)} SOF(s) written" in out
    assert "waiting for frames" in out and out.count("not a dark") == 5
    sofs = sorted((ws / "sof").glob("*.sof"))
    assert len(sofs) == len(ready) == 8
    assert "20260111T211000_NIR_3_MDARK_300_0S_SOXS.sof" in [s.name for s in sofs]
    assert "20260111T234000_NIR_3_MDARK_300_0S_SOXS.sof" in [s.name for s in sofs]
    for sof in sofs:                      # absolute paths: the same under every reading
        assert all(Path(line.split()[0]).is_absolute() for line in sof.read_text().splitlines())
    rc, out = _reduce(ws, "--json")
    assert rc == 0
    summary = json.loads(out)
    assert summary["exit_status"] == 0 and len(summary["sets"]) == 8
    assert {s["status"] for s in summary["sets"]} == {"PASS"}
    products = sorted((ws / "products/soxs_mdark").glob("*.fits"))
    assert len(products) == 8 and len(list((ws / "qc/soxs_mdark").glob("*.png"))) == 8
    # each product is what soxs mdark makes of its SOF
    one = sofs[0]
    assert cli.main(["mdark", str(one), "-o", str(ws / "alone")]) == 0
    alone = next((ws / "alone/products/soxs_mdark").glob("*.fits"))
    np.testing.assert_array_equal(fits.getdata(alone, "FLUX"),
                                  fits.getdata(ws / "products/soxs_mdark" / alone.name, "FLUX"))
    capsys.readouterr()
    # the database: schema, sets and soxspipe's QC columns, one row per metric
    with sqlite3.connect(ws / "soxs.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        cols = [r[1] for r in conn.execute("PRAGMA table_info(quality_control)")]
        for c in ("recipe", "product", "sof", "qc_name", "qc_value", "qc_unit", "qc_comment",
                  "qc_min", "qc_max", "qc_status", "obs_date_utc", "reduction_date_utc"):
            assert c in cols
        per_set = dict(conn.execute("SELECT sof, count(*) FROM quality_control GROUP BY sof"))
        assert set(per_set) == {s.name for s in sofs}
        assert set(per_set.values()) == {len(qc.QC_DEFS)}
        statuses = dict(conn.execute("SELECT sof, status FROM sets"))
        assert sorted(statuses.values()).count("waiting for frames") == 1
        nraw = conn.execute("SELECT count(*) FROM raw_frames WHERE kind LIKE 'DARK_%'")
        assert nraw.fetchone()[0] == sum(s[1] for s in NIGHT_SETS)
        row = conn.execute("SELECT qc_value, qc_min, qc_max, qc_status FROM quality_control "
                           "WHERE qc_name = 'RAW RON' AND sof LIKE '%NIR%' LIMIT 1").fetchone()
        assert abs(row[0] - 7.3) < 0.3 and (row[1], row[2], row[3]) == (0.0, 30.0, "PASS")
    # the trend view
    assert cli.main(["qc", "trend", str(ws)]) == 0
    pngs = sorted((ws / "qc/trend").glob("*.png"))
    assert [p.name for p in pngs] == ["NIR_MDARK_QC_TREND.png", "VIS_MDARK_QC_TREND.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" and p.stat().st_size > 20000 for p in pngs)


# -- classification ---------------------------------------------------------------------

def _variant(src: Path, dst: Path, **cards):
    with fits.open(src) as h:
        hdr = h[0].header.copy()
        for k, v in cards.items():
            key = k.replace("_", " ")
            if v is None:
                del hdr[key]
            else:
                hdr[key] = v
        fits.PrimaryHDU(h[0].data, hdr).writeto(dst)


def test_each_file_is_classified_with_its_reason(mini):
    src = raws(mini)[0]
    other = mini / "other"
    other.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _variant(src, other / "flat.fits", **{"HIERARCH ESO DPR TYPE": "FLAT"})
        _variant(src, other / "xsh.fits", INSTRUME="XSHOOTER")
        _variant(src, other / "uvb.fits", **{"HIERARCH ESO SEQ ARM": "UVB"})
        _variant(src, other / "product.fits", **{"HIERARCH ESO PRO CATG": "DARK_VIS"})
        _variant(src, other / "mbias.fits", **{"HIERARCH ESO PRO CATG": "MASTER_BIAS_VIS"})
        _variant(src, other / "noexp.fits", EXPTIME=None)
    (other / "garbage.fits").write_bytes(b"\0not fits" * 500)
    (other / "notes.txt").write_text("the dome was closed\n")
    (other / ".hidden.fits").write_bytes(b"x")
    got = {Path(f.path).name: f for f in map(classify.classify, classify.find_files(mini))}
    assert ".hidden.fits" not in got
    assert got["flat.fits"].reason == "not a dark (ESO DPR TYPE = FLAT)"
    assert got["xsh.fits"].reason == "other instrument (INSTRUME = 'XSHOOTER')"
    assert "is not one soxs_mdark reduces" in got["uvb.fits"].reason
    assert got["product.fits"].reason == "a product (ESO PRO CATG = DARK_VIS)"
    assert got["mbias.fits"].kind == "MASTER_BIAS_VIS"
    assert got["noexp.fits"].reason == "missing keyword(s) EXPTIME"
    assert got["garbage.fits"].reason.startswith("unreadable: ")
    assert got["notes.txt"].reason == "not a FITS file"
    assert got[src.name].kind == "DARK_VIS" and got[src.name].complete
    # soxs's own folders and files are not looked at
    for own in ("products", "qc", "sof"):
        (mini / own).mkdir(exist_ok=True)
        shutil.copy(src, mini / own / "x.fits")
    assert not [p for p in classify.find_files(mini) if p.parent.name in ("products", "qc", "sof")]


def test_archives_are_found_and_classified_like_plain_files(mini):
    import gzip
    src = raws(mini)[0]
    gz = mini / "raw" / (src.name + ".gz")
    gz.write_bytes(gzip.compress(src.read_bytes(), compresslevel=1))
    frame = classify.classify(gz)
    assert frame.kind == "DARK_VIS" and frame.complete and frame.exptime == 300.0


# -- grouping -------------------------------------------------------------------------------

def _frame(**kw):
    base = dict(path="x", size=1, mtime=0.0, kind="DARK_NIR", arm="NIR", exptime=300.0,
                readout="NDR", readout_id="3", binning="1x1", night="2026-01-11",
                tpl_start="2026-01-11T21:00:00", tpl_nexp=3, mjd_obs=61051.0,
                date_obs="2026-01-11T21:00:00")
    base.update(kw)
    return classify.Frame(**base)


def test_grouping_rounds_exptime_and_separates_templates_and_nights():
    fs = [_frame(path="a", exptime=300.001, mjd_obs=1.0), _frame(path="b", exptime=300.004,
                                                                 mjd_obs=2.0),
          _frame(path="c", exptime=300.0, mjd_obs=3.0),
          _frame(path="d", exptime=300.02, mjd_obs=4.0)]       # another EXPTIME
    sets = group.group(fs)
    assert sorted(len(s.frames) for s in sets) == [1, 3]
    two = [_frame(path=f"t1{i}", mjd_obs=i) for i in range(3)] + \
          [_frame(path=f"t2{i}", mjd_obs=10 + i, tpl_start="2026-01-11T23:00:00")
           for i in range(3)]
    assert [[f.path for f in s.frames] for s in group.group(two)] == [
        ["t10", "t11", "t12"], ["t20", "t21", "t22"]]
    assert [s.status for s in group.group(two)] == [group.READY, group.READY]
    # one template whose frames fall on two observing nights: two sets
    nights = [_frame(path=f"n{i}", mjd_obs=i, night="2026-01-11" if i < 3 else "2026-01-12")
              for i in range(6)]
    assert [([f.path for f in s.frames], s.night) for s in group.group(nights)] == [
        (["n0", "n1", "n2"], "2026-01-11"), (["n3", "n4", "n5"], "2026-01-12")]


def test_the_night_boundary_is_mjd_minus_15_hours():
    # 2026-01-12 14:59 and 15:01 UTC: the first belongs to the night of the 11th
    assert classify.night_of(61052.0 + 14.98 / 24) == "2026-01-11"
    assert classify.night_of(61052.0 + 15.02 / 24) == "2026-01-12"


def test_incomplete_template_waits_and_small_sets_are_too_few():
    waiting = [_frame(path=f"w{i}", mjd_obs=i, tpl_nexp=5) for i in range(3)]
    assert group.group(waiting)[0].status == group.WAITING
    two = [_frame(path=f"s{i}", mjd_obs=i, tpl_nexp=2) for i in range(2)]
    assert group.group(two)[0].status == group.TOO_FEW
    no_tpl = [_frame(path=f"n{i}", mjd_obs=i, tpl_start="", tpl_nexp=None) for i in range(2)]
    assert group.group(no_tpl)[0].status == group.TOO_FEW


def test_a_template_cut_short_ends_when_its_detector_goes_on():
    def tpl(name, start, n, nexp, arm="NIR", **kw):
        return [_frame(path=f"{name}{i}", arm=arm, mjd_obs=start + i, tpl_nexp=nexp,
                       tpl_start=f"T{start}", **kw) for i in range(n)]
    aborted = tpl("a", 0, 3, 5)
    assert [s.status for s in group.group(aborted)] == [group.WAITING]
    # a later set on the other arm says nothing of this detector
    assert [s.status for s in group.group(aborted + tpl("v", 10, 3, 3, arm="VIS"))] == \
        [group.WAITING, group.READY]
    later = tpl("b", 10, 3, 3, exptime=60.0)
    sets = group.group(aborted + later)
    assert [(s.status, len(s.frames), s.nexp) for s in sets] == [
        (group.READY, 3, 5), (group.READY, 3, 3)]
    assert [s.status for s in group.group(tpl("a", 0, 2, 5) + later)][0] == group.TOO_FEW
    writing = tpl("a", 0, 2, 5) + [_frame(path="a2", mjd_obs=2, tpl_nexp=5, tpl_start="T0",
                                          complete=False)]
    assert [s.status for s in group.group(writing + later)][0] == group.WAITING


def test_an_aborted_template_is_reduced_once_a_later_one_starts(tmp_path, capsys):
    ws = tmp_path / "ws"
    raw = ws / "raw" / "2026-01-11"
    simulate_darks(raw, arm="VIS", nframes=3, tpl_nexp=5, binning=2, seed=8, write_sof=False,
                   start="2026-01-11T21:00:00", prefix="SOXS_A", cosmics_per_frame=20)
    assert cli.main(["prep", str(ws)]) == 0
    assert "waiting for frames" in capsys.readouterr().out
    assert not list((ws / "sof").glob("*.sof"))
    simulate_darks(raw, arm="VIS", nframes=3, binning=2, seed=9, write_sof=False,
                   start="2026-01-11T23:00:00", prefix="SOXS_B", cosmics_per_frame=20)
    assert cli.main(["prep", str(ws)]) == 0
    out = capsys.readouterr().out
    assert "2 SOF(s) written" in out and "waiting" not in out and "3/5" in out
    rc, table = _reduce(ws)
    assert rc == 0 and table.count("PASS") == 2


def test_a_file_still_being_written_holds_its_set_until_complete(mini, capsys):
    victim = raws(mini)[4]
    whole = victim.read_bytes()
    victim.write_bytes(whole[: len(whole) // 3])
    assert cli.main(["prep", str(mini)]) == 0
    out = capsys.readouterr().out
    assert "2 SOF(s) written" in out and "waiting for frames" in out
    assert f"Still being written:\n  raw/2026-01-11/{victim.name}" in out
    victim.write_bytes(whole)                 # the copy completes
    assert cli.main(["prep", str(mini)]) == 0
    assert "1 SOF(s) written" in capsys.readouterr().out
    assert len(list((mini / "sof").glob("*.sof"))) == 3


def test_vis_sets_get_the_nearest_master_bias_of_their_binning_and_readout(mini, capsys):
    src = raws(mini)[0]
    mb = mini / "calib"
    mb.mkdir()
    for name, date, mjd in (("far.fits", "2026-01-05T10:00:00", 61045.4),
                            ("near.fits", "2026-01-11T12:00:00", 61051.5)):
        hdr = fits.getheader(src)
        hdr["HIERARCH ESO PRO CATG"] = "MASTER_BIAS_VIS"
        hdr["DATE-OBS"], hdr["MJD-OBS"] = date, mjd
        fits.HDUList([fits.PrimaryHDU(header=hdr),
                      fits.ImageHDU(np.full(fits.getdata(src).shape, 1000.0, np.float32),
                                    name="FLUX")]).writeto(mb / name)
    assert cli.main(["prep", str(mini)]) == 0
    capsys.readouterr()
    slow = sorted((mini / "sof").glob("*_VIS_2X2_1_MDARK_*.sof"))    # CURID 1 (SHG)
    fast = sorted((mini / "sof").glob("*_VIS_2X2_4_MDARK_*.sof"))    # CURID 4 (FHG)
    assert len(slow) == 2 and len(fast) == 1
    for sof in slow:
        assert f"{mb / 'near.fits'} MASTER_BIAS_VIS" in sof.read_text()
    assert "MASTER_BIAS_VIS" not in fast[0].read_text()       # no bias of its readout


def test_prep_is_idempotent(mini, capsys):
    assert cli.main(["prep", str(mini)]) == 0
    before = snapshot(mini)
    time.sleep(0.02)
    assert cli.main(["prep", str(mini)]) == 0
    capsys.readouterr()
    after = snapshot(mini)
    assert after == before                    # no SOF, no database, no raw frame touched


def test_prep_of_a_missing_or_unreadable_workspace(tmp_path, capsys, monkeypatch):
    assert cli.main(["prep", str(tmp_path / "nope")]) == 2
    assert "workspace not found" in capsys.readouterr().err
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert cli.main(["prep", str(afile)]) == 2
    assert "the workspace is not a folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["prep", str(empty)]) == 0
    closed = tmp_path / "closed"
    closed.mkdir(mode=0)
    if os.geteuid() == 0:     # root reads every folder: the answer a user would get
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != closed and real(p, mode))
    try:
        assert cli.main(["prep", str(closed)]) == 2
    finally:
        closed.chmod(0o700)
    assert capsys.readouterr().err == (f"soxs prep: error: {closed}: the workspace cannot be "
                                       "read (permission denied)\n")
    assert list(closed.iterdir()) == []           # nothing written into it


# -- reduce all ---------------------------------------------------------------------

def _reduce(ws, *extra):
    """``soxs reduce all`` as operators run it: its own process, which forks
    its workers."""
    jobs = [] if "-j" in extra else ["-j", "2"]
    res = subprocess.run([str(SOXS), "reduce", "all", str(ws), *jobs, *map(str, extra)],
                         capture_output=True, text=True, timeout=600)
    assert "Traceback" not in res.stderr, res.stderr
    return res.returncode, res.stdout


def test_reduce_all_skips_what_is_up_to_date_and_redoes_what_changed(mini, capsys, tmp_path):
    assert cli.main(["prep", str(mini)]) == 0
    assert _reduce(mini)[0] == 0
    products = sorted((mini / "products/soxs_mdark").glob("*.fits"))
    assert len(products) == 3
    stamp = {p.name: p.stat().st_mtime_ns for p in products}
    rc, out = _reduce(mini)                                     # nothing to do
    assert rc == 0 and out.count("(up to date)") == 3
    assert {p.name: p.stat().st_mtime_ns for p in products} == stamp
    time.sleep(0.05)
    os.utime(raws(mini)[0])                                     # one input changed
    assert _reduce(mini)[0] == 0
    changed = [p.name for p in products if p.stat().st_mtime_ns != stamp[p.name]]
    assert len(changed) == 1
    settings = tmp_path / "s.yaml"
    settings.write_text("soxs_mdark:\n  hot_pixel_sigma: 6\n")
    stamp = {p.name: p.stat().st_mtime_ns for p in products}
    assert _reduce(mini, "-s", settings)[0] == 0                # settings newer: all
    assert all(p.stat().st_mtime_ns != stamp[p.name] for p in products)
    stamp = {p.name: p.stat().st_mtime_ns for p in products}
    assert _reduce(mini, "-s", settings)[0] == 0
    assert {p.name: p.stat().st_mtime_ns for p in products} == stamp
    assert _reduce(mini, "-s", settings, "-x")[0] == 0          # -x: every set again
    assert all(p.stat().st_mtime_ns != stamp[p.name] for p in products)


def test_reduce_all_writes_the_category_the_settings_choose(mini, tmp_path):
    settings = tmp_path / "settings.yaml"
    settings.write_text("soxs-mdark:\n  product-catg: MASTER_DARK\n")
    assert cli.main(["prep", str(mini)]) == 0
    status, out = _reduce(mini, "-s", settings, "--json")
    assert status == 0, out
    sets = json.loads(out)["sets"]
    assert len(sets) == len(MINI) and all(s["status"] == "PASS" for s in sets)
    for s in sets:
        assert fits.getheader(s["product"])["HIERARCH ESO PRO CATG"] == "MASTER_DARK_VIS"


def test_a_failing_set_never_stops_the_others(mini, capsys):
    assert cli.main(["prep", str(mini)]) == 0
    bad = raws(mini)[4]                      # second set: one frame becomes unreadable
    bad.write_bytes(b"SIMPLE  =" + b"\0" * 100)
    rc, out = _reduce(mini)
    assert rc == 1
    assert out.count("PASS") == 2 and "ERROR" in out and bad.name in out
    with sqlite3.connect(mini / "soxs.db") as conn:
        rows = dict(conn.execute("SELECT status, count(*) FROM products GROUP BY status"))
        error = conn.execute("SELECT error FROM products WHERE status = 'ERROR'").fetchone()[0]
    assert rows == {"PASS": 2, "ERROR": 1} and bad.name in error
    rc, out = _reduce(mini)                  # not retried until its inputs change
    assert rc == 1 and "ERROR (up to date)" in out


def test_a_set_that_failed_for_this_machine_is_tried_again(mini):
    from soxs_lib.night import reduce as reducing
    from soxs_lib.night.watch import RETRY_AFTER_S
    assert cli.main(["prep", str(mini)]) == 0
    (mini / "products").mkdir()
    (mini / "products" / "soxs_mdark").write_text("")   # the products folder cannot be made
    rc, out = _reduce(mini)
    assert rc == 1 and out.count("ERROR") == 3 and "cannot create the output folder" in out
    db = Database(mini)
    try:
        # watch waits a while before it tries again; reduce all tries at once
        todo, done = reducing.plan(mini, db=db, retry_after=RETRY_AFTER_S)
        assert (len(todo), len(done)) == (0, 3)
        assert len(reducing.plan(mini, db=db)[0]) == 3
        with db.conn:                                       # ... until the while has passed
            db.conn.execute("UPDATE products SET reduction_date_utc = '2026-01-01T00:00:00'")
        assert len(reducing.plan(mini, db=db, retry_after=RETRY_AFTER_S)[0]) == 3
    finally:
        db.close()
    (mini / "products" / "soxs_mdark").unlink()             # the operator mends it
    rc, out = _reduce(mini)
    assert rc == 0 and out.count("PASS") == 3 and "up to date" not in out


def test_a_closed_standard_output_ends_reduce_all_quietly_with_every_set_recorded(mini):
    assert cli.main(["prep", str(mini)]) == 0
    p = subprocess.Popen([str(SOXS), "reduce", "all", str(mini), "--json", "-j", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()                                      # as `| true` does
    err = p.stderr.read().decode()
    assert (p.wait(timeout=300), err) == (128 + signal.SIGPIPE, "")
    with sqlite3.connect(mini / "soxs.db") as conn:
        assert conn.execute("SELECT status FROM products").fetchall() == [("PASS",)] * 3
    assert len(list((mini / "products/soxs_mdark").glob("*.fits"))) == 3


def test_qc_failure_is_exit_5(mini, tmp_path, capsys):
    settings = tmp_path / "tight.yaml"
    settings.write_text("soxs_mdark:\n  vis:\n    qc-acceptable-ranges:\n"
                        "      mdark-median: [100, 200]\n")
    assert cli.main(["prep", str(mini)]) == 0
    rc, out = _reduce(mini, "-s", settings)
    assert rc == 5 and "QC FAIL" in out


def test_nothing_to_do_is_success(tmp_path, capsys):
    assert cli.main(["reduce", "all", str(tmp_path)]) == 0
    assert "nothing to reduce" in capsys.readouterr().out


def test_a_second_run_on_the_workspace_is_refused(mini):
    with workspace.workspace_lock(mini):
        res = subprocess.run([str(SOXS), "reduce", "all", str(mini)], capture_output=True,
                             text=True, timeout=120)
    assert res.returncode == workspace.EXIT_LOCKED
    assert "another soxs process (prep, reduce all or watch) is working on this workspace" \
        in res.stderr
    assert "Traceback" not in res.stderr


def test_a_worker_reduces_set_after_set(mini):
    assert cli.main(["prep", str(mini)]) == 0
    rc, out = _reduce(mini, "-j", "1", "--json")
    sets = json.loads(out)["sets"]
    assert rc == 0 and len(sets) == 3
    assert len({s["worker"] for s in sets}) == 1
    assert sets[0]["worker"] != f"{socket.gethostname()}:{os.getpid()}"
    rc, out = _reduce(mini, "-x", "-j", "2", "--json")
    sets = json.loads(out)["sets"]
    assert rc == 0 and len({s["worker"] for s in sets}) == 2      # the sets in parallel


def _children(pid: int) -> set[int]:
    """The processes ``pid`` started (its workers), from the process table."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def _gone(pids, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [p for p in pids if os.path.exists(f"/proc/{p}")
                 and "zombie" not in open(f"/proc/{p}/status").read()]
        if not alive:
            return True
        time.sleep(0.05)
    return False


def _first_product(ws: Path, proc, seconds: float = 120.0) -> bool:
    """Wait until the run has published a product (and is still running)."""
    prod = ws / "products/soxs_mdark"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        if prod.is_dir() and any(p.suffix == ".fits" and not p.name.startswith(".")
                                 for p in prod.iterdir()):
            return True
        time.sleep(0.005)
    return False


# -j 1: one worker whose kernel runs on every core, so its threads may be
# running when the signal comes; -j 2: one thread per worker
@pytest.mark.parametrize("sig,jobs", [(signal.SIGTERM, 2), (signal.SIGINT, 2),
                                      (signal.SIGTERM, 1), (signal.SIGINT, 1)])
def test_a_signal_in_the_middle_leaves_whole_products_and_a_consistent_database(
        mini, sig, jobs):
    assert cli.main(["prep", str(mini)]) == 0
    proc = subprocess.Popen([str(SOXS), "reduce", "all", str(mini), "-j", str(jobs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    assert _first_product(mini, proc), "no set was reduced before the run ended"
    workers = _children(proc.pid)
    assert len(workers) == jobs
    # SIGINT as Ctrl-C sends it, to the process group; SIGTERM as kill does
    (os.killpg if sig == signal.SIGINT else os.kill)(proc.pid, sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.endswith(f"soxs reduce: interrupted ({sig.name}); products are whole or "
                        "absent, never partial\n") and "Traceback" not in err
    assert _gone(workers), "a worker outlived the interrupted run"
    prod = mini / "products/soxs_mdark"
    assert [p for p in prod.rglob("*") if p.name.startswith(".")] == []
    products = sorted(prod.glob("*.fits"))
    assert 1 <= len(products) < 3                 # interrupted in the middle
    with sqlite3.connect(mini / "soxs.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        recorded = dict(conn.execute("SELECT path, status FROM products").fetchall())
    # every set recorded has its product (one whose result was on its way
    # when the signal came may not be recorded: the next run makes it again)
    assert set(recorded) <= {str(p) for p in products}
    assert set(recorded.values()) <= {"PASS"}
    for fits_path in products:
        with fits.open(fits_path, checksum=True) as h:
            assert len(h) == 4 and all(hdu.verify_checksum() == 1 for hdu in h)
    rc, out = _reduce(mini)                       # the next run finishes the night
    assert rc == 0 and out.count("(up to date)") == len(recorded)
    assert len(list(prod.glob("*.fits"))) == 3
    with sqlite3.connect(mini / "soxs.db") as conn:
        assert conn.execute("SELECT count(*) FROM products WHERE status = 'PASS'"
                            ).fetchone()[0] == 3
        assert conn.execute("SELECT count(DISTINCT sof) FROM quality_control").fetchone()[0] == 3


def test_a_worker_killed_from_outside_costs_only_a_rerun_of_its_set(mini):
    assert cli.main(["prep", str(mini)]) == 0
    proc = subprocess.Popen([str(SOXS), "reduce", "all", str(mini), "-j", "1", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert _first_product(mini, proc)
    (worker,) = _children(proc.pid)
    os.kill(worker, signal.SIGKILL)               # as the out-of-memory killer does
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "Traceback" not in err, err
    sets = json.loads(out)["sets"]
    assert [s["status"] for s in sets] == ["PASS"] * 3
    assert worker not in {int(s["worker"].split(":")[1]) for s in sets[1:]}
    prod = mini / "products/soxs_mdark"
    assert sorted(p.name for p in prod.iterdir()) == sorted(
        p.name for p in prod.iterdir() if not p.name.startswith("."))
    with sqlite3.connect(mini / "soxs.db") as conn:
        assert conn.execute("SELECT count(*) FROM products WHERE status = 'PASS'"
                            ).fetchone()[0] == 3


# -- watch ----------------------------------------------------------------------------

def _seen_incomplete(ws: Path, name: str) -> bool:
    """Whether a prep pass recorded ``name`` as still being written."""
    try:
        with sqlite3.connect(f"file:{ws / 'soxs.db'}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT complete FROM raw_frames WHERE path LIKE ?",
                                (f"%{name}",)).fetchall()
    except sqlite3.Error:
        return False
    return rows == [(0,)]


def test_watch_reduces_a_set_once_its_last_frame_arrives(mini_template, tmp_path):
    ws = tmp_path / "ws"
    (ws / "raw").mkdir(parents=True)
    report = tmp_path / "watch.out"       # read while the watch runs
    with open(report, "w") as fh:
        proc = subprocess.Popen([str(SOXS), "watch", str(ws), "--interval", "0.3", "-j", "1"],
                                stdout=fh, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60      # the first pass has made the database
        while time.monotonic() < deadline and not (ws / "soxs.db").exists():
            time.sleep(0.1)
        assert proc.poll() is None
        # frames arrive; the last one is written in two steps
        target = ws / "raw" / "2026-01-11"
        target.mkdir()
        frames = sorted((mini_template / "raw" / "2026-01-11").glob("SOXS_0_*.fits"))
        for f in frames[:2]:
            shutil.copy(f, target / f.name)
        whole = frames[2].read_bytes()
        (target / frames[2].name).write_bytes(whole[:len(whole) // 2])   # header and some rows
        deadline = time.monotonic() + 60      # a pass has seen the partial frame
        while time.monotonic() < deadline and not _seen_incomplete(ws, frames[2].name):
            time.sleep(0.1)
        assert _seen_incomplete(ws, frames[2].name)
        assert not (ws / "products").exists() or not list((ws / "products").rglob("*.fits"))
        (target / frames[2].name).write_bytes(whole)
        deadline = time.monotonic() + 90      # the pass that reduced it has reported
        while time.monotonic() < deadline and "set(s) reduced" not in report.read_text():
            time.sleep(0.3)
        assert len(list((ws / "products").rglob("*.fits"))) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        out = report.read_text()
        print(out, err)                       # shown if the test fails
    assert proc.returncode == 0, err
    assert "1 new SOF(s), 1 set(s) reduced" in out and "stopped (SIGTERM)" in out
    assert out.count("new SOF") == 1                     # quiet when nothing changes


def test_a_watch_goes_on_through_a_pass_that_fails(mini, tmp_path):
    (mini / "sof").write_text("")                 # a file where the SOF folder belongs
    out, err = tmp_path / "watch.out", tmp_path / "watch.err"
    with open(out, "w") as fo, open(err, "w") as fe:
        proc = subprocess.Popen([str(SOXS), "watch", str(mini), "--interval", "0.2", "-j", "1"],
                                stdout=fo, stderr=fe)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and err.read_text().count("\n") < 1:
            time.sleep(0.1)
        time.sleep(1.0)                           # more passes fail the same way
        assert proc.poll() is None                # the watch goes on
        (mini / "sof").unlink()                   # the operator mends it
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "set(s) reduced" not in out.read_text():
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    lines = err.read_text().splitlines()
    assert proc.returncode == 0, lines
    assert len(lines) == 2, lines                 # said once, not once a pass
    assert lines[0].endswith(f"soxs watch: pass failed, trying again: {mini / 'sof'}: cannot "
                             "create the output folder: a file of that name exists")
    assert lines[1].endswith("soxs watch: passes succeed again")
    assert "3 new SOF(s), 3 set(s) reduced" in out.read_text()


# -- Dask ----------------------------------------------------------------------------------

def test_the_dask_path_gives_what_the_local_pool_gives(mini, tmp_path):
    distributed = pytest.importorskip("distributed", reason="pip install '.[dask]'")
    local = tmp_path / "local"
    shutil.copytree(mini, local)
    assert cli.main(["prep", str(mini)]) == 0 and cli.main(["prep", str(local)]) == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        assert cli.main(["reduce", "all", str(mini), "--scheduler",
                         cluster.scheduler_address]) == 0
    assert _reduce(local)[0] == 0
    a = sorted((mini / "products/soxs_mdark").glob("*.fits"))
    b = sorted((local / "products/soxs_mdark").glob("*.fits"))
    assert [p.name for p in a] == [p.name for p in b] and len(a) == 3
    for pa, pb in zip(a, b, strict=True):
        for ext in ("FLUX", "ERR", "QUAL"):
            np.testing.assert_array_equal(fits.getdata(pa, ext), fits.getdata(pb, ext))
    db = Database(mini)
    try:
        assert len(db.qc_rows()) == 3 * len(qc.QC_DEFS)
    finally:
        db.close()


def test_a_messy_workspace_with_spaces_archives_and_strays(mini_template, tmp_path):
    """As a user's folder may be: spaces in names, gzipped frames, a stray
    text file and SOFs of its own, a partial copy of a frame."""
    import gzip
    ws = tmp_path / "my night"
    shutil.copytree(mini_template / "raw", ws / "raw data")
    frames = sorted((ws / "raw data").rglob("SOXS_0_*.fits"))
    for f in frames:                                  # the first set arrives gzipped
        f.with_name(f.name + ".gz").write_bytes(gzip.compress(f.read_bytes(), 1))
        f.unlink()
    (ws / "README.txt").write_text("dome closed at 5 UT\n")
    (ws / "raw data" / "old.sof").write_text("x.fits DARK_VIS\n")
    assert cli.main(["prep", str(ws)]) == 0
    sofs = sorted((ws / "sof").glob("*.sof"))
    assert len(sofs) == 3 and " " in sofs[0].read_text()
    rc, out = _reduce(ws)
    assert rc == 0 and out.count("PASS") == 3
    h = fits.getheader(next((ws / "products/soxs_mdark").glob("*210000*.fits")))
    assert h["HIERARCH ESO PRO REC1 RAW1 NAME"].endswith(".fits.gz")


def test_each_exposure_is_used_once_whatever_its_copies():
    plain = _frame(path="/r/n/a.fits", date_obs="2026-01-11T21:00:00.000")
    packed = _frame(path="/r/n/a.fits.gz", date_obs="2026-01-11T21:00:00.000")
    elsewhere = _frame(path="/r/x/a.fits", date_obs="2026-01-11T21:00:00.000")
    other = _frame(path="/r/n/b.fits", date_obs="2026-01-11T21:05:00.000")
    vis = _frame(path="/r/n/v.fits", arm="VIS", kind="DARK_VIS",
                 date_obs="2026-01-11T21:00:00.000")           # another detector, same second
    out = group.one_copy_each([packed, elsewhere, plain, other, vis])
    assert [f.kind for f in out] == ["", "", "DARK_NIR", "DARK_NIR", "DARK_VIS"]
    assert out[0].reason == "the same exposure as a.fits (DATE-OBS 2026-01-11T21:00:00.000)"
    assert out[1].reason.startswith("the same exposure as ../n/a.fits ")
    # a copy still being written never displaces a whole one, plain or not
    writing = _frame(path="/r/n/a.fits", date_obs="2026-01-11T21:00:00.000", complete=False)
    assert [f.kind for f in group.one_copy_each([writing, packed])] == ["", "DARK_NIR"]


def test_a_frame_beside_its_archive_is_used_once(mini, capsys):
    import gzip
    first = raws(mini)[0]
    packed = first.with_name(first.name + ".gz")
    packed.write_bytes(gzip.compress(first.read_bytes(), 1))
    assert cli.main(["prep", str(mini)]) == 0
    out = capsys.readouterr().out
    assert f"{packed.name}: the same exposure as {first.name}" in out
    sofs = sorted((mini / "sof").glob("*.sof"))
    assert len(sofs) == 3 and "3/3" in out and "4/3" not in out
    assert str(first) in sofs[0].read_text() and str(packed) not in sofs[0].read_text()
    rc, table = _reduce(mini)
    assert rc == 0 and table.count("PASS") == 3
    # the plain copy removed: its archive takes its place, and the set is reduced again
    first.unlink()
    assert cli.main(["prep", str(mini)]) == 0
    out = capsys.readouterr().out
    assert "the same exposure" not in out
    assert str(packed) in sofs[0].read_text()
    row = next(line.split() for line in out.splitlines() if line.endswith(sofs[0].name))
    assert row[-2] == "ready"
    rc, table = _reduce(mini)
    assert rc == 0 and table.count("PASS (up to date)") == 2 and table.count("PASS") == 3


def test_a_set_that_failed_is_recorded_with_its_reason(tmp_path):
    from soxs_lib.cli import tables
    from soxs_lib.night.outcome import Reduced, SetOutcome
    from soxs_lib.runtime.pool import WorkerDied
    sof = str(tmp_path / "sof" / "20260111T211000_NIR_3_MDARK_300_0S_SOXS.sof")
    result = SetOutcome.failed(sof, WorkerDied("the worker process died (killed)"))
    db = Database(tmp_path)
    try:
        db.record_result(result)
        assert db.product_of(Path(sof).name)[1:] == ("ERROR",
                                                     "the worker process died (killed)")
    finally:
        db.close()
    reduced = Reduced([result])
    assert reduced.exit_status == 1
    text = tables.reduce_text(reduced)
    assert "20260111T211000_NIR_3_MDARK_300_0S_SOXS.sof" in text and "died" in text
