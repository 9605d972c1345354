"""The terminal tables of ``prep`` and ``reduce all``, and the JSON of the
latter for automation."""

from __future__ import annotations

import json
from pathlib import Path
import sys
import time

from soxs_lib.config import keywords as kw
from soxs_lib.night.outcome import READY, Reduced
from soxs_lib.night.rebuild import MISSING, REFRESH
from soxs_lib.night.prep import Prep
from soxs_lib.pipeline.report import text_table

# the QC values the summary shows (the database holds them all)
SUMMARY_QC = ("MDARK MEDIAN", "RAW RON", "HOTPIX FRAC")


def prep_text(prep: Prep, workspace) -> str:
    """The sets found (with their status) and the files left out, with reasons."""
    ws = Path(workspace).resolve()
    rows = [(s.arm, f"{s.exptime:g}", s.readout, s.binning, s.night, s.tpl_start or "-",
             f"{len(s.complete)}" + (f"/{s.nexp}" if s.nexp else ""),
             prep.statuses[s.sof_name], s.sof_name if s.status == READY else "-")
            for s in prep.sets]
    removed = f", {len(prep.removed)} removed" if prep.removed else ""
    out = [repair_text(prep.repair, ws), ""] if prep.repair else []
    out += [f"soxs prep {ws}: {len(prep.sets)} dark set(s), {len(prep.written)} SOF(s) "
            f"written{removed}, {len(prep.left_out)} file(s) left out", ""]
    if rows:
        out += text_table(("arm", "EXPTIME", "readout", "binning", "night", "template",
                       "frames", "status", "SOF"), rows)
    if prep.removed:
        out += ["", "SOFs of sets that are no more, removed:"] + \
            [f"  {_rel(p, ws)}" for p in prep.removed]
    waiting = [f for s in prep.sets for f in s.frames if not f.complete]
    if waiting:
        out += ["", "Still being written:"] + [f"  {_rel(f.path, ws)}" for f in waiting]
    if prep.left_out:
        out += ["", "Left out:"] + [f"  {_rel(f.path, ws)}: {f.reason}" for f in prep.left_out]
    return "\n".join(out)


def repair_text(repair, workspace) -> str:
    """What was done to a damaged, missing or refreshed database (``rebuild.Repair``)."""
    ws = Path(workspace).resolve()
    why = {MISSING: "was missing", REFRESH: "refreshed"}.get(
        repair.reason, f"was damaged ({repair.reason})")
    kept = f"; the old file is kept as {_rel(repair.kept, ws)}" if repair.kept else ""
    return (f"database {kw.WORKSPACE_DB} {why}: made anew{kept}; the reductions of "
            f"{len(repair.recovered)} set(s) recovered from their products")


def _rel(path, ws: Path) -> str:
    try:
        return str(Path(path).relative_to(ws))
    except ValueError:
        return str(path)


def reduce_text(reduced: Reduced) -> str:
    """One row per set: SOF, product, status and the main QC values."""
    rows = []
    for r in reduced.results:
        qc = {q.name: q for q in r.qc}
        values = [f"{qc[n].value:.4g}" if n in qc and qc[n].value is not None else "-"
                  for n in SUMMARY_QC]
        status = r.status + (" (up to date)" if r.up_to_date else "")
        rows.append((r.sof, Path(r.product).name if r.product else "-", status, *values))
    out = text_table(("set (SOF)", "product", "status", *SUMMARY_QC), rows) if rows else \
        ["nothing to reduce: no SOF in the workspace's sof/ folder"]
    errors = [r for r in reduced.results if r.error]
    if errors:
        out += ["", "Errors:"] + [f"  {r.sof}: {r.error}" for r in errors]
    return "\n".join(out)


def print_pass(found: Prep, reduced: Reduced) -> None:
    """What a pass of ``soxs watch`` did: a time-stamped line, and the table
    of the sets it reduced."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    if found.repair:
        print(f"[{stamp}] {repair_text(found.repair, '.')}", flush=True)
    print(f"[{stamp}] {len(found.written)} new SOF(s), {len(reduced.results)} set(s) "
          "reduced", flush=True)
    if reduced.results:
        print(reduce_text(reduced), flush=True)


def print_trouble(message: str | None) -> None:
    """A pass of ``soxs watch`` failed (``message``), or passes succeed
    again (None): a time-stamped line on standard error."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    what = f"pass failed, trying again: {message}" if message else "passes succeed again"
    print(f"[{stamp}] soxs watch: {what}", file=sys.stderr, flush=True)


def reduce_json(reduced: Reduced) -> str:
    """The same as ``reduce_text``, and every QC value, as JSON."""
    return json.dumps({"exit_status": reduced.exit_status,
                       "sets": [r.as_dict() for r in reduced.results]}, indent=1, default=str)
