#!/usr/bin/env python3
"""Speed and memory of ``soxs mdark`` against its peers, on the same raw darks.

Peers, each run as a child process and measured end to end (wall time, and the
child's own peak RSS from ``os.wait4``):

- ``soxspipe mdark`` (soxspipe 0.19.0 from PyPI, in its own Python 3.12 venv
  ``benchmarks/venv-soxspipe312``), on the very files ``soxs mdark`` reads;
- ESO's C recipe ``hawki_cal_dark`` through ``esorex`` (Debian packages
  ``esorex`` and ``cpl-plugin-hawki``) on synthetic HAWK-I darks with about the
  same number of pixel-frames as the NIR case (a HAWK-I frame has 4 chips of
  2048x2048);
- the floor: a minimal python process that imports numpy and astropy, reads
  every input frame fully and writes a 3-extension product of the master's
  size with checksums.

The runs of one case alternate between the tools (the order rotates from one
repetition to the next).  A run counts only if its exit status is a success
(``soxs``: 0, or 5 = products written but a QC metric out of range) *and* its
product exists afterwards; ``soxspipe`` exits 0 even when its recipe fails, so
its product is what decides.  Failed runs are reported, never timed.

Beside the speed: the QC values of soxs, of soxspipe 0.19.0 and the truth on
the same simulated sets (``qc_agreement.py``), and soxspipe's own master-dark
lookup run on a product written with ``--product_catg=MASTER_DARK``
(``soxspipe_lookup.py``, in soxspipe's environment).

The parts: ``peers`` (installs and versions), ``cases`` (the raw darks),
``fitsscan`` (FITS read without astropy), ``runs`` (one timed run of a tool),
``tables`` (text and Markdown), ``night`` (the night case and workflows).

    make bench                                    # full run, ~6 minutes on 2 cores (first run: + installs, data)
    .venv/bin/python benchmarks/bench_mdark.py --quick
    .venv/bin/python benchmarks/bench_mdark.py --cases NIR5,VIS15 --repeat 5
    .venv/bin/python benchmarks/bench_mdark.py --cases NIR15,NIR15gz,NIR15fz --tools soxs,floor

A case ``NIR15gz`` (``fz``) reads the same frames as ``NIR15`` gzip-compressed
(tile-compressed with fpack's default, Rice); soxspipe and hawki_cal_dark are
run on plain frames only.
    .venv/bin/python benchmarks/bench_mdark.py --tools soxs,floor --md

Generated raws go to ``benchmarks/data/``, work folders to ``benchmarks/work/``
(both git-ignored); the environment (OPENBLAS_* included) is passed unchanged
to every tool.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
import json
from pathlib import Path
import subprocess
import sys
import time

from cases import (DEFAULT_CASES, QUICK_CASES, check_soxspipe_headers, hawki_raws, packed_raws,
                   parse_cases, soxs_raws)
from peers import (HERE, PY, SOXS, WORK, ensure_hawki, ensure_soxspipe, log, peer_versions,
                   soxspipe_default_settings)
from runs import run_floor, run_hawki, run_soxs, run_soxspipe
from tables import build_breakdown, build_table, format_text, machine_info, write_md


ALL_TOOLS = ("soxs", "soxspipe", "hawki", "floor")
# about a second a run, and their ratio is what the speed aims are set on: more
# runs make its medians steady on a host whose speed drifts from run to run
QUICK_TOOLS = ("soxs", "floor")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke run: cases {QUICK_CASES}, 1 repetition, no warm-up")
    ap.add_argument("--repeat", type=int, default=None, help="timed runs per tool and case (3)")
    ap.add_argument("--quick-repeat", type=int, default=None,
                    help="timed runs of soxs and the floor per case (7; --repeat if larger)")
    ap.add_argument("--cases", default=None, help=f"comma-separated, default {DEFAULT_CASES}")
    ap.add_argument("--tools", default=",".join(ALL_TOOLS),
                    help="comma-separated subset of " + ",".join(ALL_TOOLS))
    ap.add_argument("--timeout", type=float, default=1800.0, help="per run, seconds")
    ap.add_argument("--night", action=argparse.BooleanOptionalAction, default=None,
                    help="the night case (default: on, off with --quick)")
    ap.add_argument("--qc", action=argparse.BooleanOptionalAction, default=None,
                    help="the QC agreement of soxs, soxspipe and the truth, and soxspipe's "
                         "lookup of soxs's master dark (default: on, off with --quick)")
    ap.add_argument("--md", nargs="?", const=str(HERE / "results.md"), default=None,
                    metavar="PATH", help="also write the table in Markdown "
                    "(default path benchmarks/results.md)")
    a = ap.parse_args(argv)
    a.repeat = a.repeat or (1 if a.quick else 3)
    a.quick_repeat = max(a.repeat, a.quick_repeat or (1 if a.quick else 7))
    a.case_list = parse_cases(a.cases or (QUICK_CASES if a.quick else DEFAULT_CASES))
    a.tool_list = [t for t in ALL_TOOLS if t in a.tools.split(",")]
    unknown = set(a.tools.split(",")) - set(ALL_TOOLS)
    if unknown or "soxs" not in a.tool_list:
        raise SystemExit(f"--tools must include soxs; unknown: {sorted(unknown)}")
    if not SOXS.exists():
        raise SystemExit(f"{SOXS} not found: run `make install` first")
    return a


@dataclass
class Peers:
    """The peers this run compares with, and what went wrong finding them."""

    tools: list
    sp_exe: Path | None = None
    sp_settings: Path | None = None
    problems: list = field(default_factory=list)
    versions: list = field(default_factory=list)


def find_peers(tools: list) -> Peers:
    peers = Peers(list(tools))
    if "soxspipe" in peers.tools:
        try:
            peers.sp_exe = ensure_soxspipe()
            peers.sp_settings = soxspipe_default_settings()
        except Exception as e:                              # reported, not fatal
            peers.problems.append(f"soxspipe unavailable: {e}")
            peers.tools.remove("soxspipe")
    if "hawki" in peers.tools and not ensure_hawki():
        peers.problems.append("esorex/hawki_cal_dark unavailable: hawki runs skipped")
        peers.tools.remove("hawki")
    peers.versions = peer_versions("soxspipe" in peers.tools, "hawki" in peers.tools)
    return peers


def prepare_cases(cases: list, peers: Peers) -> None:
    for c in cases:
        c.sof, c.files = (packed_raws(c.arm, c.n, c.form) if c.form
                          else soxs_raws(c.arm, c.n))
        if "soxspipe" in peers.tools and not c.form:
            c.sp_files, c.sp_notes = check_soxspipe_headers(c.arm, c.files, WORK / c.name)
            for n in c.sp_notes:
                peers.problems.append(f"{c.name}: simulator header lacks {n} for soxspipe")
        if "hawki" in peers.tools and c.arm == "NIR" and not c.form:
            c.hawki_files = hawki_raws(max(3, round(c.n / 4)))


def measure_cases(a, peers: Peers) -> None:
    """Every case with every tool, alternating; a warm-up first unless quick."""
    runners = {
        "soxs": lambda c, i: run_soxs(c, i, a.timeout),
        "soxspipe": lambda c, i: run_soxspipe(c, i, a.timeout, peers.sp_exe,
                                              peers.sp_settings),
        "hawki": lambda c, i: run_hawki(c, i, a.timeout),
        "floor": lambda c, i: run_floor(c, i, a.timeout),
    }

    def tools_for(c):
        if c.form:
            return [t for t in peers.tools if t in ("soxs", "floor")]
        return [t for t in peers.tools if t != "hawki" or c.hawki_files]

    if not a.quick:
        # warm-up, untimed: page cache, the kernel, .pyc files
        c = a.case_list[0]
        log(f"warm-up on {c.name} (untimed) ...")
        for t in tools_for(c):
            r = runners[t](c, 0)
            if not r.ok:
                log(f"  warm-up {t} FAILED: {r.note}")
    for c in a.case_list:
        _timed_runs(a, c, tools_for(c), runners)


def _timed_runs(a, c, ts: list, runners: dict) -> None:
    """The timed runs of case ``c`` by tools ``ts``, alternating."""
    for i in range(a.quick_repeat):
        for t in ts[i % len(ts):] + ts[:i % len(ts)]:       # rotate the order
            reps = a.quick_repeat if t in QUICK_TOOLS else a.repeat
            if i >= reps:
                continue
            r = runners[t](c, i + 1)
            c.runs.setdefault(t, []).append(r)
            state = "ok" if r.ok else "FAILED"
            log(f"  {c.name:6s} {t:9s} rep {i + 1}/{reps}: {state:6s} "
                f"{r.wall:7.2f} s {r.rss_mb:7.0f} MB  "
                f"{r.note.splitlines()[0] if r.note else ''}")
            if not r.ok:
                log(r.note)


def measure_night(a, peers: Peers):
    """(night table, workflows table or a line saying why not), or Nones."""
    if not (a.night if a.night is not None else not a.quick):
        return None, None
    from night import run_night
    log("night case: soxs reduce all, soxs mdark per set, soxspipe per set ...")
    night_table = run_night(a.repeat, a.timeout, peers.sp_exe, peers.sp_settings)
    workflows = None
    if "soxspipe" in peers.tools:
        from night import run_workflows
        log("night workflows: soxs prep + reduce all, soxspipe prep + reduce all ...")
        workflows = run_workflows(a.repeat, a.timeout)
    return night_table, workflows


def measure_qc(a, peers: Peers) -> Path | None:
    """The QC agreement (``qc_agreement.py``) in its own process; the
    Markdown of its tables, or None."""
    if not (a.qc if a.qc is not None else not a.quick):
        return None
    md = WORK / "qc_agreement.md"
    md.unlink(missing_ok=True)
    cmd = [PY, HERE / "qc_agreement.py", "--md", md]
    if "soxspipe" in peers.tools:
        cmd += ["--sp-exe", peers.sp_exe, "--sp-settings", peers.sp_settings]
    log("QC agreement: soxs, soxspipe and the truth on the same sets ...")
    if subprocess.run([str(c) for c in cmd], cwd=HERE).returncode != 0:
        peers.problems.append("the QC agreement failed (see its output above)")
    return md if md.exists() else None


def report(a, peers: Peers, header: list, tables: tuple, elapsed: float) -> None:
    """The tables on the terminal, the raw runs as JSON, the Markdown file."""
    night_table, workflows, _ = tables
    cases = a.case_list
    head, rows = build_table(cases, peers.tools)
    log("")
    log("=" * 100)
    for line in header + peers.versions:
        log(line)
    log(f"{a.repeat} timed run(s) per tool and case ({a.quick_repeat} of soxs and the floor), "
        f"alternating; wall = end-to-end child "
        f"process time; RSS = child's peak (os.wait4); Mpx-fr = frames x pixels/frame / 1e6")
    log("hawki: hawki_cal_dark on max(3, round(N/4)) synthetic HAWK-I darks of 4 chips "
        "(same pixel-frames order as the NIR case); floor: import numpy+astropy, read "
        "all frames, write FLUX/QUAL/ERR with checksums")
    log("")
    log(format_text(head, rows))
    breakdown = build_breakdown(cases)
    if breakdown[1]:
        log("")
        log("where the time of one soxs mdark goes (medians, s):")
        log(format_text(*breakdown, grouped=False))
    for extra in (night_table, workflows):
        if isinstance(extra, str):
            log(extra)
        elif extra:
            log("")
            log(format_text(*extra, grouped=False))
    for p in peers.problems:
        log(f"NOTE: {p}")
    import resource
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log(f"this benchmark process peaked at {own:.0f} MB: on Linux a child's ru_maxrss "
        f"starts from its parent's peak, so every RSS above includes up to that much")
    log(f"benchmark total time {elapsed / 60:.1f} min")
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "results.json").write_text(json.dumps(
        {"machine": header, "versions": peers.versions, "repeat": a.repeat,
         "quick_repeat": a.quick_repeat,
         "cases": {c.name: {t: [r.__dict__ for r in rs] for t, rs in c.runs.items()}
                   for c in cases}}, indent=1))
    if a.md:
        write_md(Path(a.md), header + peers.versions, (a.repeat, a.quick_repeat), cases, tables,
                 (head, rows), peers.problems)
        log(f"wrote {a.md}")


def main(argv=None) -> int:
    a = parse_args(argv)
    t_start = time.perf_counter()
    header = machine_info()
    for line in header:
        log(line)
    peers = find_peers(a.tool_list)
    for line in peers.versions:
        log(line)
    prepare_cases(a.case_list, peers)
    measure_cases(a, peers)
    tables = measure_night(a, peers) + (measure_qc(a, peers),)
    report(a, peers, header, tables, time.perf_counter() - t_start)
    failed = any(not r.ok for c in a.case_list for rs in c.runs.values() for r in rs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
