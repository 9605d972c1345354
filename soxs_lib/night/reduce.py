"""``soxs reduce all``: a workspace's dark sets reduced unattended, in
parallel, once.

A set is reduced when its product is missing or older than its SOF, its raw
frames, its master bias or the settings file (``-x``: every set).  The sets
run on this machine's worker processes or an existing Dask cluster
(``runner``), each as ``soxs mdark <sof> -o <workspace>`` would.  Only this
process writes the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from soxs_lib.config import keywords as kw
from soxs_lib.config.errors import INPUT_EXIT_STATUSES
from soxs_lib.config.params import thread_count
from soxs_lib.io import naming
from soxs_lib.io.publish import sweep_workspace
from soxs_lib.io.sof import sof_files
from soxs_lib.night import runner
from soxs_lib.night.db import Database
from soxs_lib.night.outcome import Reduced, SetOutcome
from soxs_lib.night.rebuild import open_database
from soxs_lib.night.workspace import check_workspace


@dataclass
class Job:
    """One set to reduce: its SOF and the product it makes."""

    sof: Path
    product: Path                  # named as the SOF (``naming.set_files``)
    inputs_mtime: float = 0.0      # the newest of its SOF, frames and settings


def plan(ws: Path, settings_path=None, redo: bool = False, db: Database | None = None,
         retry_after: float = 0.0) -> tuple[list[Job], list[Job]]:
    """(to reduce, up to date) among the SOFs in ``<workspace>/sof``.

    A set is up to date when its product is newer than its SOF, raw frames,
    master bias and settings file and the database holds its outcome.  A set
    whose last reduction failed for its inputs (bad input, bad settings) is
    not tried again until one of those changes (or ``redo``); one that failed
    otherwise (a full disk, a killed worker) is tried again once
    ``retry_after`` seconds have passed since."""
    todo, done = [], []
    sof_dir = ws / kw.WORKSPACE_SOF
    for sof in sorted(sof_dir.glob("*.sof")) if sof_dir.is_dir() else []:
        files = sof_files(sof)
        product = naming.set_files(ws, sof.stem).product
        inputs = [sof, *files]
        if settings_path:
            inputs.append(Path(settings_path))
        newest = max((p.stat().st_mtime for p in inputs if p.exists()), default=0.0)
        job = Job(sof, product, newest)
        if redo:
            todo.append(job)
        elif product.exists():
            # a product the database does not know (its run was stopped as the
            # result came back) is made again, so its QC is recorded
            known = db is None or db.product_of(sof.name) is not None
            (todo if product.stat().st_mtime < newest or not known else done).append(job)
        else:
            failure = db.last_failure(sof.name) if db is not None else None
            (done if _wait(failure, newest, retry_after) else todo).append(job)
    return todo, done


def _wait(failure, newest: float, retry_after: float) -> bool:
    """Whether a set whose last reduction ended in ``failure`` (see
    ``Database.last_failure``) waits rather than being tried again."""
    if failure is None:
        return False
    inputs_mtime, exit_status, when = failure
    if inputs_mtime is None or inputs_mtime < newest:
        return False                  # its inputs changed since
    if exit_status in INPUT_EXIT_STATUSES:
        return True
    if not when:
        return False
    ran = datetime.fromisoformat(when).replace(tzinfo=timezone.utc)
    return (datetime.now(timezone.utc) - ran).total_seconds() < retry_after


def reduce_all(workspace, settings_path=None, redo: bool = False, nworkers: int = 0,
               scheduler: str | None = None, db: Database | None = None,
               watching: float | None = None, progress=None) -> Reduced:
    """Reduce every SOF of the workspace whose product is missing or stale.

    Parameters
    ----------
    workspace : str or Path
    settings_path : str or Path, optional
        Settings file for every set (its change makes products stale).
    redo : bool
        Reduce every set again (``-x``).
    nworkers : int
        Local worker processes; 0: the number of cores.
    scheduler : str, optional
        Address of a Dask distributed scheduler to send the sets to instead
        (its workers must see the same file system).
    db : Database, optional
        Open database (default: the workspace's).
    watching : float, optional
        A pass of ``soxs watch``: the local workers are left running for the
        next pass, and a set that failed for other reasons than its inputs
        is tried again only this many seconds after (None, a single run:
        the workers end with it, and such a set is tried again at once).
    progress : callable, optional
        ``progress(total, outcome)``: once with the number of sets to reduce
        and None, then as each finishes, with its ``SetOutcome``.

    Returns
    -------
    Reduced
        One result per SOF: those reduced now and the ones up to date; a
        damaged database was set aside and rebuilt first (``repair``).

    Raises
    ------
    InputError
        The workspace is missing or unreadable.
    """
    ws = check_workspace(workspace).resolve()
    settings_path = str(Path(settings_path).resolve()) if settings_path else None
    sweep_workspace(ws)                               # what a killed run left
    own, repair = db is None, None
    if own:
        db, repair = open_database(ws)
    try:
        todo, done = plan(ws, settings_path, redo, db, watching or 0.0)
        results = []
        newest = {j.sof.name: j.inputs_mtime for j in todo}

        def record(result: SetOutcome) -> None:
            result.inputs_mtime = newest.get(result.sof)
            db.record_result(result)
            results.append(result)
            if progress is not None:
                progress(len(todo), result)

        if progress is not None:
            progress(len(todo), None)

        sofs = [str(j.sof) for j in todo]
        if sofs and scheduler:
            runner.run_dask(sofs, ws, settings_path, scheduler, record)
        elif sofs:
            runner.run_local(sofs, ws, settings_path, nworkers or thread_count(0), record,
                             watching is not None)
        for job in done:
            results.append(db.known_outcome(job.sof, job.product))
        order = {j.sof.name: k for k, j in enumerate(sorted(todo + done, key=lambda j: j.sof))}
        results.sort(key=lambda r: order.get(r.sof, 0))
        return Reduced(results, repair)
    finally:
        if own:
            db.close()
