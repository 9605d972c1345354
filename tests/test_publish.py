"""What a writer killed outright leaves behind is removed by the next run."""

from __future__ import annotations

import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import time

from soxs_lib.io import publish

SOXS = Path(sys.executable).with_name("soxs")


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_sweep_removes_what_dead_processes_of_this_host_staged(tmp_path):
    dead, me = _dead_pid(), os.getpid()
    host = publish._HOST
    names = {
        f".A.fits.{host}.{dead}.0123abcd.tmp": True,     # its writer is gone
        f".A_QC.png.{host}.{dead}.0123abcd.tmp": True,
        f".A.fits.{dead}.89abcdef.tmp": True,             # an earlier version's name
        f".A.fits.{host}.{me}.0123abcd.tmp": False,       # its writer runs
        f".A.fits.otherhost.{dead}.0123abcd.tmp": False,  # another host's (shared disk)
        "A.fits": False, ".hidden": False, f".A.fits.{dead}.tmp": False,
    }
    for name in names:
        (tmp_path / name).write_text("x")
    folder = tmp_path / f".A.fits.{host}.{dead}.0123abcd.d"   # the recipe's private folder
    folder.mkdir()
    (folder / "A.fits").write_text("x")
    removed = publish.sweep_stale(tmp_path)
    assert sorted(p.name for p in removed) == sorted(
        [n for n, gone in names.items() if gone] + [folder.name])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        n for n, gone in names.items() if not gone)
    assert publish.sweep_stale(tmp_path / "missing") == []


def test_a_writer_that_exited_unreaped_counts_as_gone(tmp_path):
    """A worker of a killed reduce all stays a zombie until init reaps it, which
    in a container may take a while; its staged files are swept meanwhile."""
    zombie = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while "zombie" not in Path(f"/proc/{zombie.pid}/status").read_text():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        os.kill(zombie.pid, 0)                # the kernel still knows it
        staged = tmp_path / f".A.fits.{publish._HOST}.{zombie.pid}.0123abcd.tmp"
        staged.write_text("x")
        assert publish.sweep_stale(tmp_path) == [staged]
    finally:
        zombie.wait()


def test_a_run_killed_while_it_writes_leaves_staged_files_the_next_run_removes(nir, tmp_path):
    _, sof = nir
    ws = tmp_path / "ws"
    proc = subprocess.Popen([str(SOXS), "mdark", str(sof), "-o", str(ws)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    prod = ws / "products" / "soxs_mdark"
    staged = []
    deadline = time.monotonic() + 120
    while not staged and proc.poll() is None and time.monotonic() < deadline:
        staged = [p for p in (prod.iterdir() if prod.is_dir() else ())
                  if p.name.endswith(".tmp") and p.stat().st_size > 0]
    os.killpg(proc.pid, signal.SIGKILL)          # the run and its plotting process
    proc.wait()
    assert staged, "the run ended before it wrote its product"
    left = sorted(p.name for p in prod.iterdir() if p.name.startswith("."))
    assert left and not any(p.name for p in prod.iterdir() if not p.name.startswith("."))
    res = subprocess.run([str(SOXS), "mdark", str(sof), "-o", str(ws)], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    for name in left:
        assert f"removed {prod / name}" in res.stderr
    assert sorted(p.name for p in prod.iterdir()) == sorted(
        p.name for p in prod.iterdir() if not p.name.startswith("."))
    assert len(list(prod.iterdir())) == 2            # the product and its log, whole
    shutil.rmtree(ws)
