"""Bad input, bad settings, output faults and interruptions: a clear message
naming the file and the problem, a non-zero status, nothing half-written and
raw frames untouched."""

import gzip
import hashlib
import os
from pathlib import Path
import resource
import signal
import subprocess
import sys
import time

import numpy as np
from astropy.io import fits
import pytest

from soxs_lib.cli import main as cli

SOXS = Path(sys.executable).with_name("soxs")


def digest(paths):
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def files_under(root):
    return [p for p in Path(root).rglob("*") if p.is_file()]


def refused(capsys, tmp_path, args, status, *words, raws=()):
    out = tmp_path / "ws"
    before = digest(raws)
    rc = cli.main(["mdark", *map(str, args), "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == status, err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err           # one paragraph
    for w in words:
        assert str(w) in err, (w, err)
    assert not out.exists() or files_under(out) == []
    assert digest(raws) == before
    return err


def sof_of(tmp_path, lines):
    sof = tmp_path / "in.sof"
    sof.write_text("".join(f"{p} {t}\n" for p, t in lines))
    return sof


# -- files -------------------------------------------------------------------
def test_missing_file(small_set, tmp_path, capsys):
    truth, sof = small_set
    truth.paths[1].unlink()
    refused(capsys, tmp_path, [sof], 2, truth.paths[1], "not found")


@pytest.mark.parametrize("damage, words", [
    ("truncate", ["truncated"]),
    ("garbage", ["not a FITS file"]),
    ("gzip", ["damaged gzip archive"]),
    ("noimage", ["primary HDU holds no image and no image extension follows"]),
    ("cube", ["3 axes"]),
    ("mef", ["unexpected image extension(s) #1 beside the primary image"]),
    ("chips", ["2 image extensions (CHIP1, CHIP2)", "multi-detector"]),
])
def test_damaged_file(small_set, tmp_path, capsys, damage, words):
    truth, sof = small_set
    bad = truth.paths[2]
    data = fits.getdata(bad)
    hdr = fits.getheader(bad)
    if damage == "truncate":
        raw = bad.read_bytes()
        bad.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        bad.write_bytes(b"\x00garbage" * 1000)
    elif damage == "gzip":
        packed = gzip.compress(bad.read_bytes())
        bad.write_bytes(packed[: len(packed) // 2])
    elif damage == "noimage":
        fits.PrimaryHDU(header=hdr).writeto(bad, overwrite=True)
    elif damage == "chips":
        fits.HDUList([fits.PrimaryHDU(header=hdr), fits.ImageHDU(data, name="CHIP1"),
                      fits.ImageHDU(data, name="CHIP2")]).writeto(bad, overwrite=True)
    elif damage == "cube":
        fits.PrimaryHDU(np.stack([data, data]), hdr).writeto(bad, overwrite=True)
    elif damage == "mef":
        fits.HDUList([fits.PrimaryHDU(data, hdr), fits.ImageHDU(data)]).writeto(bad, overwrite=True)
    others = [p for p in truth.paths if p != bad]
    refused(capsys, tmp_path, [sof], 2, bad, *words, raws=others)


def test_unreadable_file(small_set, tmp_path):
    truth, sof = small_set
    bad = truth.paths[1]
    before = digest(truth.paths)
    os.chmod(bad, 0)
    try:
        res = subprocess.run(_without_root_privilege(
            [str(SOXS), "mdark", str(sof), "-o", str(tmp_path / "ws")]),
            capture_output=True, text=True, timeout=300)
    finally:
        os.chmod(bad, 0o644)
    assert res.returncode == 2, res.stderr
    assert f"{bad}: cannot be read (permission denied)" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "ws").exists()
    assert digest(truth.paths) == before


# -- sets --------------------------------------------------------------------
def test_empty_sof(tmp_path, capsys):
    sof = tmp_path / "empty.sof"
    sof.write_text("# nothing\n\n")
    refused(capsys, tmp_path, [sof], 2, sof, "lists no frames")


@pytest.mark.parametrize("line, words", [
    ("{p} DARK_VIS extra words", ["line 1", "expected '<file> <TAG>'"]),
    ("{p} FLAT_VIS", ["line 1", "unknown tag 'FLAT_VIS'"]),
])
def test_malformed_sof(small_set, tmp_path, capsys, line, words):
    truth, sof = small_set
    bad = tmp_path / "bad.sof"
    bad.write_text(line.format(p=truth.paths[0]) + "\n" + sof.read_text())
    refused(capsys, tmp_path, [bad], 2, bad, *words)


def test_duplicate_in_sof(small_set, tmp_path, capsys):
    truth, sof = small_set
    bad = sof_of(tmp_path, [(p, "DARK_VIS") for p in truth.paths + truth.paths[:1]])
    refused(capsys, tmp_path, [bad], 2, "listed twice", truth.paths[0])


def test_too_few_frames(small_set, tmp_path, capsys):
    truth, sof = small_set
    bad = sof_of(tmp_path, [(p, "DARK_VIS") for p in truth.paths[:2]])
    refused(capsys, tmp_path, [bad], 2, "at least 3", "got 2", truth.paths[0])


@pytest.mark.parametrize("key, value, words", [
    ("ESO DPR TYPE", "FLAT", ["is not a dark", "ESO DPR TYPE"]),
    ("ESO PRO CATG", "DARK_VIS", ["is a product", "ESO PRO CATG"]),
    ("ESO SEQ ARM", "NIR", ["tagged DARK_VIS", "ESO SEQ ARM"]),
    ("EXPTIME", 600.0, ["mixed exposure time", "EXPTIME", "600.0", "300.0"]),
    ("ESO DET READ CURNAME", "FHG", ["mixed readout mode", "FHG", "SHG"]),
    ("ESO DET BINX", 1, ["mixed binning", "ESO DET BINX"]),
])
def test_inconsistent_or_wrong_frames(small_set, tmp_path, capsys, key, value, words):
    truth, sof = small_set
    bad = truth.paths[1]
    fits.setval(bad, f"HIERARCH {key}" if key.startswith("ESO ") else key, value=value)
    refused(capsys, tmp_path, [sof], 2, *words)


def test_mixed_window(small_set, tmp_path, capsys):
    truth, sof = small_set
    bad = truth.paths[1]
    with fits.open(bad) as h:
        fits.PrimaryHDU(h[0].data[:-10], h[0].header).writeto(bad, overwrite=True)
    refused(capsys, tmp_path, [sof], 2, "mixed image size", bad.name)


@pytest.mark.parametrize("value", [0, 1234])
def test_constant_frame_is_refused(small_set, tmp_path, capsys, value):
    truth, sof = small_set
    bad = truth.paths[0]
    with fits.open(bad) as h:
        data = np.full_like(h[0].data, value)
        fits.PrimaryHDU(data, h[0].header).writeto(bad, overwrite=True)
    refused(capsys, tmp_path, [sof], 2, bad, "constant", "only 2 of 3 raw darks are usable")


def test_unusable_frame_is_left_out_when_enough_remain(one_dead_of_four, tmp_path, capsys):
    sof, bad = one_dead_of_four
    rc = cli.main(["mdark", str(sof), "-o", str(tmp_path / "ws")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "left out as unusable" in out and str(bad) in out and "constant" in out
    path = next((tmp_path / "ws/products/soxs_mdark").glob("*.fits"))
    h = fits.getheader(path)
    assert h["NCOMBINE"] == 3 and h["HIERARCH ESO QC NRAW DROPPED"] == 1
    raws = [h[f"HIERARCH ESO PRO REC1 RAW{i} NAME"] for i in (1, 2, 3)]
    assert bad.name not in raws and "HIERARCH ESO PRO REC1 RAW4 NAME" not in h
    log = next((tmp_path / "ws/products/soxs_mdark").glob("*_log.txt")).read_text()
    assert f"dropped {bad}" in log


def test_plot_failure_is_an_output_error_and_leaves_nothing(small_set, tmp_path, capsys,
                                                           monkeypatch):
    """The QC plot is drawn by a forked child; its failure fails the run."""
    from soxs_lib.pipeline import plot

    def broken(*args):
        raise RuntimeError("no fonts today")
    monkeypatch.setattr(plot, "draw", broken)
    truth, sof = small_set
    refused(capsys, tmp_path, [sof], 4, "_QC.png", "QC plot could not be drawn",
            "no fonts today", raws=truth.paths)


def test_nan_inf_and_extreme_pixels_are_flagged_not_propagated(tmp_path):
    from soxs_lib.io.simulate import simulate_darks
    from soxs_lib.config import flags
    truth = simulate_darks(tmp_path / "raw", arm="NIR", nframes=3, seed=5,
                           cosmics_per_frame=10)
    with fits.open(truth.paths[0], mode="update") as h:
        h[0].data[100:110, 100:110] = np.nan
        h[0].data[200, 200:210] = np.inf
        h[0].data[300, 300] = 1e30
    for p in truth.paths:        # a pixel dead in every frame
        with fits.open(p, mode="update") as h:
            h[0].data[400, 400] = np.nan
    assert cli.main(["mdark", str(tmp_path / "raw/mdark.sof"), "-o", str(tmp_path)]) == 0
    path = next((tmp_path / "products/soxs_mdark").glob("*.fits"))
    flux, qual = fits.getdata(path, "FLUX"), fits.getdata(path, "QUAL")
    assert np.all(np.isfinite(flux)) and np.all(np.isfinite(fits.getdata(path, "ERR")))
    assert qual[100 - 4, 100 - 4] & flags.BADINPUT
    assert qual[200 - 4, 200 - 4] & flags.BADINPUT
    assert qual[300 - 4, 300 - 4] & flags.SATURATED
    assert qual[400 - 4, 400 - 4] & flags.NODATA


# -- settings ------------------------------------------------------------------
@pytest.mark.parametrize("text, words", [
    ("soxs_mdark: [unclosed\n", ["YAML syntax error", "line"]),
    ("soxs_mdark:\n  frame_clipping_sigmaa: 3\n", ["unknown parameter 'frame_clipping_sigmaa'"]),
    ("soxs_mdark:\n  frame_clipping_sigma: three\n", ["'three' is not a float"]),
    ("soxs_mdark:\n  frame_clipping_sigma: -3\n", ["frame_clipping_sigma", "outside the allowed range"]),
    ("soxs_mdark:\n  stacked_clipping_iterations: 0\n", ["stacked_clipping_iterations", "outside"]),
    ("soxs_mdark:\n  stacked_clipping_iterations: 2.5\n", ["not an integer"]),
    ("soxs_madrk:\n  x: 1\n", ["unknown key(s) soxs_madrk"]),
    ("soxs_mdark:\n  qc-acceptable-ranges:\n    mdark-mean: [0, 1]\n", ["unknown QC metric 'mdark-mean'"]),
])
def test_bad_settings(small_set, tmp_path, capsys, text, words):
    truth, sof = small_set
    s = tmp_path / "settings.yaml"
    s.write_text(text)
    refused(capsys, tmp_path, [sof, "-s", s], 3, s, *words)


def test_yaml_tags_are_never_executed(small_set, tmp_path, capsys):
    truth, sof = small_set
    marker = tmp_path / "pwned"
    s = tmp_path / "evil.yaml"
    s.write_text(f"soxs_mdark: !!python/object/apply:os.system ['touch {marker}']\n")
    refused(capsys, tmp_path, [sof, "-s", s], 3, s)
    assert not marker.exists()


@pytest.mark.parametrize("arg, words", [
    ("--frame_clipping_sigma=-1", ["frame_clipping_sigma", "outside the allowed range"]),
    ("--stacked_clipping_iterations=0", ["stacked_clipping_iterations", "outside"]),
    ("--hot_pixel_sigma=abc", ["'abc' is not a float"]),
])
def test_bad_command_line_parameters(small_set, tmp_path, capsys, arg, words):
    truth, sof = small_set
    refused(capsys, tmp_path, [sof, arg], 3, "command line", *words)


# -- output ------------------------------------------------------------------
def test_output_folder_is_a_file(small_set, tmp_path, capsys):
    truth, sof = small_set
    f = tmp_path / "file"
    f.write_text("x")
    rc = cli.main(["mdark", str(sof), "-o", str(f)])
    err = capsys.readouterr().err
    assert rc == 4 and str(f) in err and "Traceback" not in err
    assert f.read_text() == "x"


def test_output_folder_cannot_be_created(small_set, tmp_path, capsys):
    truth, sof = small_set
    rc = cli.main(["mdark", str(sof), "-o", "/proc/soxs_cannot"])
    err = capsys.readouterr().err
    assert rc == 4 and "cannot create the output folder" in err


def _without_root_privilege(cmd):
    """Root writes anywhere: drop the capabilities that let it (setpriv,
    util-linux) so that folder permissions apply as to any user."""
    if os.geteuid() != 0:
        return cmd
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", *cmd]


@pytest.mark.parametrize("existing", [False, True])
def test_no_write_permission(small_set, tmp_path, existing):
    """A workspace (or its products folder) without write permission."""
    truth, sof = small_set
    ws = tmp_path / "ws"
    locked = ws / "products" / "soxs_mdark" if existing else ws
    locked.mkdir(parents=True)
    os.chmod(locked, 0o555)
    try:
        res = subprocess.run(_without_root_privilege(
            [str(SOXS), "mdark", str(sof), "-o", str(ws)]), capture_output=True, text=True,
            timeout=300)
    finally:
        os.chmod(locked, 0o755)
    assert res.returncode == 4, res.stderr
    assert "Traceback" not in res.stderr and res.stderr.count("\n") == 1
    assert str(locked if existing else ws / "products") in res.stderr
    assert "permission" in res.stderr.lower()
    assert files_under(ws) == []


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))


def test_disk_full_leaves_nothing(small_set, tmp_path):
    truth, sof = small_set
    before = digest(truth.paths)
    res = subprocess.run([str(SOXS), "mdark", str(sof), "-o", str(tmp_path / "ws")],
                         capture_output=True, text=True, preexec_fn=_limit_file_size)
    assert res.returncode == 4, res.stderr
    assert "cannot write" in res.stderr and "Traceback" not in res.stderr
    assert files_under(tmp_path / "ws") == []
    assert digest(truth.paths) == before


def _valid_product_set(ws):
    files = files_under(ws)
    assert not [f for f in files if ".tmp" in f.name], files
    fitsf = [f for f in files if f.suffix == ".fits"]
    if not fitsf:
        return False
    with fits.open(fitsf[0], checksum=True) as h:   # checksums verify: whole
        assert len(h) == 4
        h.verify("exception")
    return True


def test_two_concurrent_runs_do_not_corrupt(small_set, tmp_path):
    truth, sof = small_set
    ws = tmp_path / "ws"
    procs = [subprocess.Popen([str(SOXS), "-x", "mdark", str(sof), "-o", str(ws)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    codes = [p.wait(timeout=300) for p in procs]
    assert codes == [0, 0]
    assert _valid_product_set(ws)
    assert len(files_under(ws)) == 3


def test_concurrent_runs_without_overwrite_one_wins(small_set, tmp_path):
    truth, sof = small_set
    ws = tmp_path / "ws"
    procs = [subprocess.Popen([str(SOXS), "mdark", str(sof), "-o", str(ws)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    codes = sorted(p.wait(timeout=300) for p in procs)
    assert codes == [0, 4]
    assert _valid_product_set(ws) and len(files_under(ws)) == 3


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interruption_leaves_previous_state_or_whole_product(small_set, tmp_path, sig):
    truth, sof = small_set
    before = digest(truth.paths)
    outcomes = set()
    for k, delay in enumerate([0.3, 0.8, 1.2, 1.6, 2.0, 2.5]):
        ws = tmp_path / f"ws{k}"
        p = subprocess.Popen([str(SOXS), "mdark", str(sof), "-o", str(ws)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        p.send_signal(sig)
        out, err = p.communicate(timeout=300)
        assert "Traceback" not in err
        whole = _valid_product_set(ws) if ws.exists() else False
        if p.returncode == 0:
            assert whole and len(files_under(ws)) == 3
        else:
            assert p.returncode in (130, -sig), err
            # interrupted: the previous state (nothing), or a whole set if the
            # signal came while the finished set was being moved into place
            assert (not ws.exists()) or files_under(ws) == [] or (
                whole and len(files_under(ws)) == 3)
        outcomes.add(p.returncode)
    assert outcomes & {130, -sig}, f"no run was interrupted: {outcomes}"
    assert digest(truth.paths) == before


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_the_command_loads_is_an_interruption(sig):
    # the console command takes the signals over before the command line's
    # modules load; here the signal comes as that import starts
    code = f"""
import os, signal, sys
class SignalOnImport:
    def find_spec(self, name, path=None, target=None):
        if name == "soxs_lib.cli.main":
            os.kill(os.getpid(), {int(sig)})
        return None
sys.meta_path.insert(0, SignalOnImport())
sys.argv = ["soxs", "settings"]
from soxs_lib.cli.console import entry
entry()
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == cli.EXIT_INTERRUPTED, res.stderr
    assert res.stderr == (f"soxs settings: interrupted ({sig.name}); products are whole "
                          "or absent, never partial\n")
    assert res.stdout == ""


def test_a_signal_once_the_run_is_over_changes_nothing():
    # here it comes while the log is closed, the last step before the exit
    code = """
import logging, os, signal, sys, time
def late_signal():
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)
logging.shutdown = late_signal
sys.argv = ["soxs", "settings"]
from soxs_lib.cli.console import entry
entry()
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stderr == "" and "soxs_mdark:" in res.stdout


def test_cpl_stack_method_needs_pycpl(small_set, tmp_path, capsys):
    """CPL's image-list clipping is offered by the PyEsoRex recipe only."""
    truth, sof = small_set
    refused(capsys, tmp_path, [sof, "--stack_method=cpl"], 3,
            "stack_method 'cpl' needs PyCPL", "pyesorex", raws=truth.paths)
    refused(capsys, tmp_path, [sof, "--stack_method=fast"], 3,
            "'fast' is not one of soxs, cpl", raws=truth.paths)
