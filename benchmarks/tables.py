"""The benchmark's tables: the machine, every run, the summary the README
shows, where one run's time goes; as text for the terminal and as Markdown."""

from __future__ import annotations

import os
from pathlib import Path
import platform
import statistics

from cases import RAW_SHAPE, Case
from peers import PY
from runs import PHASES


# ------------------------------------------------------------------------- report
def machine_info() -> list[str]:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 ** 2:.1f} GiB"
    except OSError:
        pass
    from importlib.metadata import version
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    blas = ", ".join(f"{k}={v}" for k, v in sorted(os.environ.items())
                     if k.startswith(("OPENBLAS", "OMP_", "MKL_", "NUMBA_"))) or "none set"
    return [f"machine: {cpu}; {cores} cores ({usable} usable); memory {mem}; "
            f"{platform.system()} {platform.release()}",
            f"python {platform.python_version()} ({PY}); numpy {version('numpy')}; "
            f"astropy {version('astropy')}",
            f"environment (unchanged for every tool): {blas}"]


def summarize(case: Case, tool: str):
    runs = case.runs.get(tool)
    if not runs:
        return None
    ok = [r for r in runs if r.ok]
    d = {"runs": f"{len(ok)}/{len(runs)}", "ok": bool(ok)}
    if ok:
        walls = [r.wall for r in ok]
        d["wall"] = statistics.median(walls)
        d["wmin"], d["wmax"] = min(walls), max(walls)
        d["rss"] = max(r.rss_mb for r in ok)
        d["thr"] = case.mpx(tool) / d["wall"]
    notes = sorted({r.note.splitlines()[0] for r in runs if r.note})
    d["notes"] = "; ".join(notes)
    return d


def ratio(a, b, digits: int = 2):
    return f"{a / b:.{digits}f}" if a and b else "-"


def build_table(cases: list[Case], tools: list[str]):
    head = ["case", "tool", "frames x size", "ok/runs", "median s", "min-max s",
            "peak RSS MB", "Mpx-fr", "Mpx-fr/s", "spipe/soxs t", "spipe/soxs RSS",
            "soxs/floor t", "soxs/hawki thr", "soxs/plain t", "soxs/plain RSS", "notes"]
    rows = []
    plain = {(c.arm, c.n): summarize(c, "soxs") for c in cases if not c.form}
    for c in cases:
        s = {t: summarize(c, t) for t in tools}
        soxs = s.get("soxs") or {}
        first = True
        for t in tools:
            d = s[t]
            if d is None:
                continue
            r = [c.label if first else "", t, c.frames(t), d["runs"]]
            if d["ok"]:
                r += [f"{d['wall']:.2f}", f"{d['wmin']:.2f}-{d['wmax']:.2f}",
                      f"{d['rss']:.0f}", f"{c.mpx(t):.1f}", f"{d['thr']:.1f}"]
            else:
                r += ["FAILED", "-", "-", f"{c.mpx(t):.1f}", "-"]
            if t == "soxs":
                sp = s.get("soxspipe") or {}
                fl = s.get("floor") or {}
                hk = s.get("hawki") or {}
                pl = (plain.get((c.arm, c.n)) or {}) if c.form else {}
                r += [ratio(sp.get("wall"), soxs.get("wall")),
                      ratio(sp.get("rss"), soxs.get("rss")),
                      ratio(soxs.get("wall"), fl.get("wall")),
                      ratio(soxs.get("thr"), hk.get("thr")),
                      ratio(soxs.get("wall"), pl.get("wall")),
                      ratio(soxs.get("rss"), pl.get("rss"))]
            else:
                r += ["", "", "", "", "", ""]
            r.append(d["notes"])
            rows.append(r)
            first = False
    return head, rows


def format_text(head, rows, grouped: bool = True) -> str:
    w = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    w[-1] = len(head[-1])     # notes: free width
    line = lambda r: "  ".join(str(x).ljust(w[i]) if i < 3 or i == len(r) - 1
                               else str(x).rjust(w[i]) for i, x in enumerate(r)).rstrip()
    out = [line(head), "-" * (sum(w) + 2 * (len(w) - 1))]
    prev = None
    for r in rows:
        if grouped and r[0] and prev is not None:
            out.append("")
        out.append(line(r))
        prev = r
    return "\n".join(out)


def build_breakdown(cases: list[Case]):
    """Where a single ``soxs mdark`` run's time goes, per case (medians):
    the phases its log times, and the rest (interpreter start, exit)."""
    head = ["case", "total s", *PHASES, "start and exit", "soxs/floor"]
    rows = []
    for c in cases:
        runs = [r for r in c.runs.get("soxs", []) if r.ok and r.phases]
        if not runs:
            continue
        med = {k: statistics.median(r.phases.get(k, 0.0) for r in runs) for k in PHASES}
        total = statistics.median(r.wall for r in runs)
        floor = summarize(c, "floor") or {}
        rows.append([c.label, f"{total:.2f}", *(f"{med[k]:.2f}" for k in PHASES),
                     f"{statistics.median(r.wall - sum(r.phases.values()) for r in runs):.2f}",
                     ratio(total, floor.get("wall"))])
    return head, rows


def build_summary(cases: list[Case]):
    """One row per case, the columns of the README's table (medians)."""
    head = ["case", "soxs s", "soxs RSS MB", "soxspipe s", "soxspipe RSS MB",
            "hawki_cal_dark s (frames)", "floor s", "soxspipe/soxs time", "soxspipe/soxs RSS",
            "soxs/floor", "Mpx-frames/s soxs / hawki", "soxs/plain time", "soxs/plain RSS"]
    plain = {(c.arm, c.n): summarize(c, "soxs") for c in cases if not c.form}
    rows = []
    for c in cases:
        s = {t: summarize(c, t) or {} for t in ("soxs", "soxspipe", "hawki", "floor")}
        so, sp, hk, fl = s["soxs"], s["soxspipe"], s["hawki"], s["floor"]
        pl = plain.get((c.arm, c.n)) or {} if c.form else {}

        def num(d, key, fmt):
            return format(d[key], fmt) if d.get("ok") and key in d else "-"
        ny, nx = RAW_SHAPE[c.arm]
        size = f"{nx}²" if nx == ny else f"{nx}x{ny}"
        hawki = (f"{num(hk, 'wall', '.2f')} ({len(c.hawki_files)} x 4 chips)"
                 if hk.get("ok") else "-")
        rows.append([f"{c.arm} {c.n} x {size}" + (f" .{c.form}" if c.form else ""),
                     num(so, "wall", ".2f"), num(so, "rss", ".0f"), num(sp, "wall", ".2f"),
                     num(sp, "rss", ".0f"), hawki, num(fl, "wall", ".2f"),
                     ratio(sp.get("wall"), so.get("wall"), 1),
                     ratio(sp.get("rss"), so.get("rss"), 1),
                     ratio(so.get("wall"), fl.get("wall")),
                     f"{num(so, 'thr', '.1f')} / {num(hk, 'thr', '.1f')}",
                     ratio(so.get("wall"), pl.get("wall")), ratio(so.get("rss"), pl.get("rss"))])
    return head, rows


def format_md(head, rows) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    return "\n".join(out)


def write_md(path: Path, about: list, repeat: tuple, cases: list, tables: tuple,
             every_run: tuple, problems: list) -> None:
    night_table, workflows, qc_md = tables
    text = "# soxs mdark benchmark\n\n" + "\n".join(f"- {line}" for line in about)
    text += (f"\n- {repeat[0]} timed runs per tool and case, {repeat[1]} of soxs and the "
             "floor (medians)\n\n")
    text += format_md(*build_summary(cases))
    breakdown = build_breakdown(cases)
    if breakdown[1]:
        text += "\n\n## Where the time of one run goes (medians, s)\n\n" + format_md(*breakdown)
    if night_table:
        text += "\n\n## A night\n\n" + format_md(*night_table)
    if isinstance(workflows, str):
        text += f"\n\n{workflows}"
    elif workflows:
        text += "\n\n" + format_md(*workflows)
    if qc_md:
        text += "\n\n## QC: soxs, soxspipe and the truth\n\n" + qc_md.read_text()
    text += "\n\n## Every run\n\n" + format_md(*every_run) + "\n"
    text += "".join(f"\nNote: {p}\n" for p in problems)
    path.write_text(text)
