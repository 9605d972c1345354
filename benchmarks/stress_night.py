"""Stress: ``soxs reduce all -j 2`` on a simulated night, stopped at random
moments by SIGINT (Ctrl-C: the whole process group), SIGTERM (``kill``: the
command alone) or SIGKILL (the out-of-memory killer: the command and its
workers, or the command alone), then run again.

Counted per signal, all of which must be 0: runs that hung (no exit within
60 s of the signal), tracebacks on the terminal, processes left running, products
that are not whole (a FLUX/QUAL/ERR file failing its checksums), staged files
left after the interrupted run (SIGINT/SIGTERM, whose run removes them) and
after the rerun (all), database inconsistencies (a failed integrity check, a
recorded product missing on disk; after the rerun also a product or set the
database does not hold), and sets the rerun did not finish.

    .venv/bin/python benchmarks/stress_night.py [--trials 40] [--seed 1] [--md PATH]

``--md`` also writes the table, with the date and what a whole run took, as
Markdown (the documentation includes ``docs/benchmarks/stress.md`` as written).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

from astropy.io import fits

from night import linked_night
from peers import SOXS, WORK, log

HANG_SECONDS = 60
KINDS = ("SIGINT to the group", "SIGTERM to soxs", "SIGKILL to the group", "SIGKILL to soxs")
COUNTS = ("hangs", "tracebacks", "processes left", "partial products",
          "staged files after the run", "staged files after the rerun",
          "database inconsistencies", "sets not finished by the rerun")


def _workspace() -> Path:
    ws = linked_night(WORK / "stress" / "ws")
    subprocess.run([SOXS, "prep", ws], check=True, capture_output=True)
    return ws


def _descendants(pid: int) -> set[int]:
    out, todo = set(), [pid]
    while todo:
        res = subprocess.run(["pgrep", "-P", str(todo.pop())], capture_output=True, text=True)
        kids = {int(p) for p in res.stdout.split()}
        todo += list(kids - out)
        out |= kids
    return out


def _alive(pids) -> list[int]:
    alive = []
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as fh:
                if "zombie" not in fh.read():
                    alive.append(p)
        except OSError:
            pass
    return alive


def _staged(ws: Path) -> list[Path]:
    return [p for p in ws.rglob(".*") if p.name.endswith((".tmp", ".d"))]


def _partial(ws: Path) -> int:
    bad = 0
    for path in (ws / "products").rglob("*.fits"):
        try:
            with fits.open(path, checksum=True) as h:
                bad += len(h) != 4 or not all(hdu.verify_checksum() == 1 for hdu in h)
        except Exception:   # noqa: BLE001 - unreadable counts as partial
            bad += 1
    return bad


def _inconsistent(ws: Path, complete: bool) -> int:
    """Database problems; ``complete``: after the rerun every set must be in it."""
    products = {str(p) for p in (ws / "products").rglob("*.fits")}
    sofs = {p.name for p in (ws / "sof").glob("*.sof")}
    try:
        with sqlite3.connect(f"file:{ws / 'soxs.db'}?mode=ro", uri=True) as conn:
            bad = conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok"
            rows = conn.execute("SELECT sof, path, status FROM products").fetchall()
            with_qc = {r[0] for r in conn.execute("SELECT DISTINCT sof FROM quality_control")}
    except sqlite3.Error:
        return 1
    bad += sum(1 for _, path, status in rows if status != "ERROR" and path not in products)
    if complete:
        recorded = {path for _, path, _ in rows}
        bad += len(products - recorded) + len(sofs - with_qc)
    return bad


def trial(ws: Path, kind: str, delay: float) -> dict:
    """One interrupted run and its rerun; the counts of ``COUNTS``."""
    shutil.rmtree(ws / "products", ignore_errors=True)
    shutil.rmtree(ws / "qc", ignore_errors=True)
    (ws / "soxs.db").unlink(missing_ok=True)
    subprocess.run([SOXS, "prep", ws], check=True, capture_output=True)
    proc = subprocess.Popen([SOXS, "reduce", "all", ws, "-j", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen: set[int] = set()
    t_end = time.monotonic() + delay
    while time.monotonic() < t_end and proc.poll() is None:
        seen |= _descendants(proc.pid)
        time.sleep(0.01)
    if proc.poll() is None:
        seen |= _descendants(proc.pid)
        sig = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM,
               "SIGKILL": signal.SIGKILL}[kind.split()[0]]
        (os.killpg if kind.endswith("group") else os.kill)(proc.pid, sig)
    c = dict.fromkeys(COUNTS, 0)
    try:
        _, err = proc.communicate(timeout=HANG_SECONDS)
    except subprocess.TimeoutExpired:
        c["hangs"] = 1
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
    c["tracebacks"] += "Traceback" in err
    time.sleep(0.5)                       # a worker's parent-death signal takes a moment
    left = _alive(seen)
    c["processes left"] = len(left)
    for p in left:
        os.kill(p, signal.SIGKILL)
    c["partial products"] += _partial(ws)
    if not kind.startswith("SIGKILL"):
        c["staged files after the run"] = len(_staged(ws))
    c["database inconsistencies"] += _inconsistent(ws, complete=False)
    rerun = subprocess.run([SOXS, "reduce", "all", ws, "-j", "2"], capture_output=True,
                           text=True, timeout=600)
    c["tracebacks"] += "Traceback" in rerun.stderr
    c["partial products"] += _partial(ws)
    c["staged files after the rerun"] = len(_staged(ws))
    c["database inconsistencies"] += _inconsistent(ws, complete=True)
    sofs = list((ws / "sof").glob("*.sof"))
    done = {p.stem for p in (ws / "products" / "soxs_mdark").glob("*.fits")}
    c["sets not finished by the rerun"] = sum(p.stem not in done for p in sofs) + \
        (rerun.returncode != 0)
    return c


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=40, help="interrupted runs in all")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--md", metavar="PATH", help="also write the table as Markdown")
    a = ap.parse_args(argv)
    rng = random.Random(a.seed)
    ws = _workspace()
    t0 = time.perf_counter()                          # how long a whole run takes
    subprocess.run([SOXS, "reduce", "all", ws, "-j", "2"], check=True, capture_output=True)
    whole = time.perf_counter() - t0
    log(f"a whole reduce all -j 2 of {len(list((ws / 'sof').glob('*.sof')))} sets: "
        f"{whole:.2f} s; signals at random moments in [0, {whole:.2f}] s")
    totals = {k: dict.fromkeys(COUNTS, 0) | {"trials": 0} for k in KINDS}
    for n in range(a.trials):
        kind = KINDS[n % len(KINDS)]
        delay = rng.uniform(0.0, whole)
        c = trial(ws, kind, delay)
        totals[kind]["trials"] += 1
        for k, v in c.items():
            totals[kind][k] += v
        found = ", ".join(f"{k} {v}" for k, v in c.items() if v)
        log(f"  {n + 1:3d} {kind:22s} at {delay:5.2f} s: {found or 'clean'}")
    head = ["signal", "trials", *COUNTS]
    rows = [[k, str(v["trials"]), *(str(v[c]) for c in COUNTS)] for k, v in totals.items()]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    table = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    table += ["| " + " | ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)) + " |"
              for r in rows]
    bad = sum(v[c] for v in totals.values() for c in COUNTS)
    summary = f"{a.trials} trials, {bad} problem(s)"
    print("\n".join(table))
    print(summary)
    if a.md:
        Path(a.md).write_text(
            f"`soxs reduce all -j 2` on the simulated night ({whole:.2f} s when whole), stopped "
            f"at random moments; {time.strftime('%Y-%m-%d')}, seed {a.seed}:\n\n"
            + "\n".join(table) + f"\n\n{summary}.\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
