"""The benchmark's night case: one simulated night (``soxs simulate --night``:
8 complete dark sets of both arms) reduced three ways, side by side --
``soxs reduce all`` (one command, parallel workers), ``soxs mdark`` run once
per set, and soxspipe's ``mdark`` run once per set -- with the floor of every
set (interpreter, numpy and astropy, read the set's frames, write a product).

And the two night workflows on the same frames: ``soxs prep`` then ``soxs
reduce all`` beside soxspipe's own ``soxspipe prep`` then ``soxspipe reduce
all`` (soxspipe 0.19.0 in its Python 3.12 virtual environment; skipped with a
line saying so where no Python 3.12 or later exists).

Reported: the total time, the per-set time of ``reduce all`` over that set's
floor (median and worst over the sets), and peak memory; and ``reduce all``'s
peak memory on half the sets against all of them (flat when workers do not
keep what a set used).  Each floor is measured twice: alone on the machine,
and with as many floors at once as ``reduce all`` runs sets at once (one per
core), the load its sets run under.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
import json
import os
import shutil
import statistics
from pathlib import Path

import sqlite3

from peers import (DATA, HERE, PY, SOXS, WORK, ensure_soxspipe, log,
                   run_measured)

NIGHT = DATA / "night"
CORES = os.cpu_count() or 1     # reduce all's default workers


def linked_night(ws: Path, flat: bool = False) -> Path:
    """A fresh workspace ``ws`` holding the simulated night's raw frames (hard
    links; the night is simulated once): under ``raw/<date>/`` as ours come,
    or all at its root (``flat``), where soxspipe's prep takes them from."""
    if not (NIGHT / "raw").exists():
        log(f"simulating a night in {NIGHT} ...")
        run_measured([SOXS, "simulate", "--night", "-o", NIGHT], WORK, WORK / "night_sim.log",
                     3600)
    shutil.rmtree(ws, ignore_errors=True)
    for src in sorted((NIGHT / "raw").rglob("*.fits")):
        dst = ws / src.name if flat else ws / src.relative_to(NIGHT)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.link(src, dst)
    return ws


def night_workspace() -> tuple[Path, list[Path]]:
    """A prepped copy of the simulated night and its SOFs."""
    ws = linked_night(WORK / "night" / "ws")
    run_measured([SOXS, "prep", ws], ws, WORK / "night" / "prep.log", 600)
    return ws, sorted((ws / "sof").glob("*.sof"))


def _shape(product: Path) -> tuple[int, int]:
    from astropy.io import fits
    h = fits.getheader(product, "FLUX")
    return int(h["NAXIS2"]), int(h["NAXIS1"])


def _sof_files(sof: Path) -> list[str]:
    return [line.split()[0] for line in sof.read_text().splitlines() if line.strip()]


def _half(sofs: list[Path]) -> Path:
    """A workspace with the first half of the sets only."""
    half = WORK / "night" / "half"
    shutil.rmtree(half, ignore_errors=True)
    (half / "sof").mkdir(parents=True)
    for sof in sofs[: len(sofs) // 2]:
        shutil.copy(sof, half / "sof" / sof.name)
    return half


@dataclass
class NightRuns:
    """What the night case measured, per way of reducing it."""

    walls: dict = field(default_factory=lambda: {k: [] for k in WAYS})
    rss: dict = field(default_factory=lambda: {k: 0.0 for k in WAYS})
    failed: dict = field(default_factory=lambda: {k: 0 for k in WAYS})
    per_set: dict = field(default_factory=dict)     # SOF name -> reduce all's seconds
    shapes: dict = field(default_factory=dict)      # SOF name -> product shape
    floors: dict = field(default_factory=dict)      # SOF name -> floor alone, s
    loaded: dict = field(default_factory=dict)      # SOF name -> floor beside others, s
    half_rss: float = 0.0

    def add(self, way: str, wall: float, mb: float, failed: int) -> None:
        self.walls[way].append(wall)
        self.rss[way] = max(self.rss[way], mb)
        self.failed[way] = failed


WAYS = ("reduce all", "mdark per set", "soxspipe per set")


def _reduce_all(runs: NightRuns, ws: Path, sofs: list, out: Path, rep: int, timeout: float):
    _, wall, mb = run_measured([SOXS, "-x", "reduce", "all", ws, "--json"], ws,
                               out / f"reduce{rep}.json", timeout)
    try:
        result = json.loads((out / f"reduce{rep}.json").read_text())
        for r in result["sets"]:
            runs.per_set.setdefault(r["sof"], []).append(r.get("seconds") or float("nan"))
            if r.get("product"):
                runs.shapes[r["sof"]] = _shape(Path(r["product"]))
        failed = sum(r["status"] == "ERROR" for r in result["sets"])
    except (ValueError, KeyError):
        failed = len(sofs)
    runs.add("reduce all", wall, mb, failed)


def _mdark_per_set(runs: NightRuns, sofs: list, out: Path, timeout: float):
    total, peak, bad = 0.0, 0.0, 0
    for sof in sofs:
        rc, wall, mb = run_measured([SOXS, "-x", "mdark", sof, "-o", out / "mdark"],
                                    out, out / "mdark.log", timeout)
        total, peak, bad = total + wall, max(peak, mb), bad + (rc not in (0, 5))
    runs.add("mdark per set", total, peak, bad)


def _soxspipe_per_set(runs: NightRuns, sofs: list, out: Path, timeout: float, sp: tuple):
    sp_exe, sp_settings = sp
    total, peak, bad = 0.0, 0.0, 0
    for sof in sofs:
        wd = out / "soxspipe" / sof.stem
        shutil.rmtree(wd, ignore_errors=True)
        (wd / "out").mkdir(parents=True)
        shutil.copyfile(sp_settings, wd / "soxspipe.yaml")
        name = sof.name[:15] + "_" + sof.stem[16:] + ".sof"
        (wd / name).write_text(sof.read_text())
        rc, wall, mb = run_measured([sp_exe, "mdark", name, "-o", "out", "-s",
                                     "soxspipe.yaml", "-x"], wd, wd / "run.log", timeout)
        made = list((wd / "out").rglob("*.fits"))
        total, peak, bad = total + wall, max(peak, mb), bad + (rc != 0 or not made)
    runs.add("soxspipe per set", total, peak, bad)


def _floors(runs: NightRuns, sofs: list, out: Path, timeout: float):
    """Each set's floor alone, then as many at once as reduce all runs."""
    def floor(k, sof):
        ny, nx = runs.shapes.get(sof.name, (2040, 2040))
        return run_measured([PY, HERE / "floor.py", out / f"floor{k}.fits", ny, nx,
                             *_sof_files(sof)], out, out / f"floor{k}.log", timeout)[1]

    for k, sof in enumerate(sofs):
        runs.floors.setdefault(sof.name, []).append(floor(k, sof))
    with ThreadPoolExecutor(CORES) as pool:
        for sof, wall in zip(sofs, pool.map(floor, range(len(sofs)), sofs), strict=True):
            runs.loaded.setdefault(sof.name, []).append(wall)


def _night_table(runs: NightRuns) -> tuple[list, list]:
    def ratios(floor_walls):
        r = {s: statistics.median(runs.per_set[s]) / statistics.median(floor_walls[s])
             for s in runs.per_set if s in floor_walls}
        if not r:
            return "-"
        worst = max(r, key=r.get)
        return (f"median {statistics.median(r.values()):.2f}, worst {r[worst]:.2f} "
                f"({' '.join(Path(worst).stem.split('_')[1:-1])})")

    head = ["night (8 sets)", "total s", "peak RSS MB", "failed sets",
            "per-set s / floor s (alone)", f"per-set s / floor s ({CORES} at once)",
            "vs reduce all"]
    base = statistics.median(runs.walls["reduce all"])
    rows = []
    for k, v in runs.walls.items():
        if not v:
            continue
        med = statistics.median(v)
        rows.append([k, f"{med:.2f}", f"{runs.rss[k]:.0f}", str(runs.failed[k]),
                     ratios(runs.floors) if k == "reduce all" else "-",
                     ratios(runs.loaded) if k == "reduce all" else "-", f"{med / base:.1f}"])
    rows.append(["reduce all, half the sets", "-", f"{runs.half_rss:.0f}", "-", "-", "-", "-"])
    return head, rows


def run_night(repeat: int, timeout: float, sp_exe=None, sp_settings=None) -> tuple[list, list]:
    """Run the three ways ``repeat`` times, alternating; (head, rows) of the table."""
    ws, sofs = night_workspace()
    half = _half(sofs)
    out = WORK / "night"
    runs = NightRuns()
    for rep in range(1, repeat + 1):
        _reduce_all(runs, ws, sofs, out, rep, timeout)
        _, _, mb = run_measured([SOXS, "-x", "reduce", "all", half], half,
                                out / f"half{rep}.log", timeout)
        runs.half_rss = max(runs.half_rss, mb)
        _mdark_per_set(runs, sofs, out, timeout)
        if sp_exe is not None:
            _soxspipe_per_set(runs, sofs, out, timeout, (sp_exe, sp_settings))
        _floors(runs, sofs, out, timeout)
        log(f"  night rep {rep}/{repeat}: reduce all {runs.walls['reduce all'][-1]:.2f} s, "
            f"mdark per set {runs.walls['mdark per set'][-1]:.2f} s"
            + (f", soxspipe per set {runs.walls['soxspipe per set'][-1]:.2f} s"
               if runs.walls["soxspipe per set"] else ""))
    return _night_table(runs)


def _soxs_outcome(ws: Path) -> tuple[int, int]:
    """(dark sets reduced, QC PASS) of a soxs workspace, from its database."""
    with sqlite3.connect(ws / "soxs.db") as conn:
        rows = conn.execute("SELECT status FROM products WHERE path IS NOT NULL").fetchall()
    return len(rows), sum(r[0] == "PASS" for r in rows)


def _soxspipe_outcome(ws: Path) -> tuple[int, int]:
    """(dark sets reduced, QC PASS) of a soxspipe workspace: its master darks,
    and those none of whose QC values soxspipe flagged ``fail``."""
    made = {p.stem for p in ws.glob("reduced/*/soxs-mdark/*.fits")}
    with sqlite3.connect(ws / "soxspipe.db") as conn:
        failed = {r[0][:-len(".sof")] for r in conn.execute(
            "SELECT DISTINCT sof_name FROM quality_control WHERE soxspipe_recipe = "
            "'soxs-mdark' AND qc_flag = 'fail'")}
    return len(made), len(made - failed)


def run_workflows(repeat: int, timeout: float) -> tuple[list, list] | str:
    """``soxs prep`` + ``soxs reduce all`` beside ``soxspipe prep`` +
    ``soxspipe reduce all`` on the simulated night, ``repeat`` times each,
    alternating; (head, rows) of the table, or the line saying why
    soxspipe's workflow was skipped."""
    try:
        sp = ensure_soxspipe()
    except RuntimeError as exc:
        return f"soxspipe's night workflow skipped: {exc}"
    out = WORK / "night"
    runs = {"soxs prep + reduce all": [], "soxspipe prep + reduce all": []}
    outcome = {}
    for rep in range(1, repeat + 1):
        for name, exe, flat, count in (("soxs prep + reduce all", SOXS, False, _soxs_outcome),
                                       ("soxspipe prep + reduce all", sp, True,
                                        _soxspipe_outcome)):
            ws = linked_night(out / f"workflow-{exe.name}", flat)
            rc1, prep_s, mb1 = run_measured([exe, "prep", ws], ws, out / f"{exe.name}-prep.log",
                                            timeout)
            rc2, red_s, mb2 = run_measured([exe, "reduce", "all", ws], ws,
                                           out / f"{exe.name}-reduce.log", timeout)
            runs[name].append((prep_s, red_s, max(mb1, mb2), rc1, rc2))
            outcome[name] = count(ws)
            log(f"  workflow rep {rep}/{repeat}: {name}: prep {prep_s:.2f} s (exit {rc1}), "
                f"reduce all {red_s:.2f} s (exit {rc2}), {outcome[name][0]} dark sets, "
                f"{outcome[name][1]} QC PASS")
    head = ["night workflow", "prep s", "reduce all s", "total s", "peak RSS MB",
            "dark sets reduced", "QC PASS", "total vs soxs"]
    totals = {k: statistics.median(p + r for p, r, *_ in v) for k, v in runs.items()}
    base = totals["soxs prep + reduce all"]
    rows = []
    for k, v in runs.items():
        rows.append([k, f"{statistics.median(p for p, *_ in v):.2f}",
                     f"{statistics.median(r for _, r, *_ in v):.2f}", f"{totals[k]:.2f}",
                     f"{max(m for _, _, m, *_ in v):.0f}", str(outcome[k][0]),
                     str(outcome[k][1]), f"{totals[k] / base:.1f}"])
    return head, rows
