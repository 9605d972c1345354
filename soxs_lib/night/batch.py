"""``soxs prep`` and ``soxs reduce all``: a workspace's dark sets found,
written as SOFs, and reduced unattended, in parallel, once.

A set is reduced when its product is missing or older than its SOF, its raw
frames, its master bias or the settings file (``-x``: every set).  The sets
run on this machine's worker processes or an existing Dask cluster
(``runner``), each as ``soxs mdark <sof> -o <workspace>`` would.  Only this
process writes the database.  One lock per workspace: a second ``prep`` or
``reduce all`` on it is refused while one runs.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
import fcntl
import os
from pathlib import Path

from soxs_lib.config import keywords as kw, params
from soxs_lib.io import naming
from soxs_lib.config.errors import InputError, OutputError, SoxsError
from soxs_lib.io.publish import sweep_workspace
from soxs_lib.config.params import thread_count
from soxs_lib.night import group as grouping, runner
from soxs_lib.night.classify import Frame, classify, find_files
from soxs_lib.night.db import Database
from soxs_lib.night.outcome import ERROR, Reduced, SetOutcome
EXIT_LOCKED = 75          # EX_TEMPFAIL: another soxs process holds the workspace


class Busy(SoxsError):
    """Another ``soxs prep``/``reduce all``/``watch`` works on the workspace."""

    exit_status = EXIT_LOCKED


def check_workspace(workspace) -> Path:
    """The workspace folder, which must exist and be readable.

    Raises
    ------
    InputError
        Missing, not a folder, or unreadable (exit status 2).
    """
    ws = Path(workspace)
    if not ws.exists():
        raise InputError(f"{ws}: workspace not found")
    if not ws.is_dir():
        raise InputError(f"{ws}: the workspace is not a folder")
    if not os.access(ws, os.R_OK | os.X_OK):
        raise InputError(f"{ws}: the workspace cannot be read (permission denied)")
    return ws


@contextmanager
def workspace_lock(ws: Path):
    """Hold the workspace's lock (``.soxs.lock``, an flock: released by the
    kernel whatever ends the process; the file itself is never rewritten, so
    a pass with nothing new changes no file).

    Raises
    ------
    Busy
        Another process holds it.
    """
    path = ws / kw.WORKSPACE_LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create the workspace lock ({exc.strerror})") \
            from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(f"{ws}: another soxs process (prep, reduce all or watch) is "
                       f"working on this workspace (it holds {path}); try again when it "
                       "has finished") from None
        yield
    finally:
        os.close(fd)


# -- prep --------------------------------------------------------------------

@dataclass
class Prep:
    """What ``prep`` found: every file, the sets, the SOFs it wrote."""

    frames: list[Frame]
    sets: list[grouping.DarkSet]
    written: list[Path]
    statuses: dict            # SOF name -> set status (reduced, failed included)
    removed: list[Path] = field(default_factory=list)   # SOFs of sets that are no more

    @property
    def left_out(self) -> list[Frame]:
        """Files that are neither raw darks nor master biases, with reasons."""
        return [f for f in self.frames if not f.kind]


def prep(workspace, db: Database | None = None) -> Prep:
    """Classify every file of the workspace, group the darks and write one
    SOF per complete set to ``<workspace>/sof``.

    Headers are read only for new or changed files (the database remembers
    the others).  Idempotent: with nothing new, no file changes.

    Parameters
    ----------
    workspace : str or Path
    db : Database, optional
        Open database (default: the workspace's).

    Returns
    -------
    Prep

    Raises
    ------
    InputError
        The workspace is missing or unreadable.
    OutputError
        The SOF folder or the database cannot be written.
    """
    ws = check_workspace(workspace).resolve()     # SOFs name frames by absolute path
    own = db is None
    db = db or Database(ws)
    try:
        frames = []
        for path in find_files(ws):
            try:
                st = path.stat()
            except OSError:
                continue                       # gone meanwhile
            cached = db.cached_frame(str(path), st.st_size, st.st_mtime)
            frames.append(cached if cached is not None and cached.complete
                          else classify(path))
        sets = grouping.group(frames)
        written = grouping.write_sofs(sets, ws / kw.WORKSPACE_SOF)
        # a SOF an earlier prep wrote for a set that is no more (regrouped,
        # renamed by an upgrade) would make its product twice
        gone = db.set_names() - {s.sof_name for s in sets if s.status == grouping.READY}
        removed = grouping.remove_sofs(sorted(gone), ws / kw.WORKSPACE_SOF)
        sof_of = {f.path: s.sof_name for s in sets for f in s.frames}
        statuses = {}
        for s in sets:
            status = s.status
            done = db.product_of(s.sof_name) if status == grouping.READY else None
            if done is not None:
                status = grouping.FAILED if done[1] == ERROR else grouping.REDUCED
            statuses[s.sof_name] = status
        if written or removed or _changed(db, frames, sets):
            db.record_prep(frames, sets, sof_of)
        return Prep(frames, sets, written, statuses, removed)
    finally:
        if own:
            db.close()


def _changed(db: Database, frames, sets) -> bool:
    """Whether the database's picture of the workspace differs (a prep with
    nothing new writes nothing, the database included)."""
    known = db.conn.execute("SELECT path, size, mtime, kind, reason FROM raw_frames").fetchall()
    now = sorted((f.path, f.size, f.mtime, f.kind, f.reason) for f in frames)
    if sorted(known) != now:
        return True
    statuses = dict(db.conn.execute("SELECT sof, status FROM sets").fetchall())
    return statuses != {s.sof_name: s.status for s in sets}


# -- reduce all -----------------------------------------------------------------

@dataclass
class Job:
    """One set to reduce: its SOF and the product it makes."""

    sof: Path
    product: Path                  # named as the SOF (``naming``)
    inputs_mtime: float = 0.0      # the newest of its SOF, frames and settings


def _sof_inputs(sof: Path) -> list[Path]:
    """The files a SOF names, found as ``soxs mdark`` finds them (missing
    ones left out: the reduction reports them)."""
    from soxs_lib.io.frames import locate, split_sof_line
    out = []
    for k, line in enumerate(sof.read_text().splitlines(), 1):
        words = split_sof_line(line.split("#", 1)[0])
        if words:
            try:
                out.append(locate(words[0], sof, f"{sof}, line {k}")[0])
            except InputError:
                continue
    return out


def product_path(ws: Path, sof: Path) -> Path:
    """The product a SOF of the workspace makes: the SOF's name with
    ``.fits``, as soxspipe's (``runner.reduce_one`` names it so; prep names
    SOFs by ``naming``'s rule)."""
    return ws / kw.WORKSPACE_PRODUCTS / params.RECIPE / (sof.stem + naming.PRODUCT_SUFFIX)


def plan(ws: Path, settings_path=None, redo: bool = False,
         db: Database | None = None) -> tuple[list[Job], list[Job]]:
    """(to reduce, up to date) among the SOFs in ``<workspace>/sof``.

    A set is up to date when its product is newer than its SOF, raw frames,
    master bias and settings file and the database holds its outcome; a set
    whose last reduction failed is not tried again until one of those
    changes (or ``redo``)."""
    todo, done = [], []
    sof_dir = ws / kw.WORKSPACE_SOF
    for sof in sorted(sof_dir.glob("*.sof")) if sof_dir.is_dir() else []:
        files = _sof_inputs(sof)
        product = product_path(ws, sof)
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
            failed = db.failed_inputs(sof.name) if db is not None else None
            (done if failed is not None and failed >= newest else todo).append(job)
    return todo, done


def reduce_all(workspace, settings_path=None, redo: bool = False, nworkers: int = 0,
               scheduler: str | None = None, db: Database | None = None,
               keep_workers: bool = False) -> Reduced:
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
    keep_workers : bool
        Leave the local workers running for the next call (``soxs watch``).

    Returns
    -------
    Reduced
        One result per SOF: those reduced now and the ones up to date.

    Raises
    ------
    InputError
        The workspace is missing or unreadable.
    """
    ws = check_workspace(workspace).resolve()
    settings_path = str(Path(settings_path).resolve()) if settings_path else None
    sweep_workspace(ws)                               # what a killed run left
    own = db is None
    db = db or Database(ws)
    try:
        todo, done = plan(ws, settings_path, redo, db)
        results = []
        newest = {j.sof.name: j.inputs_mtime for j in todo}

        def record(result: SetOutcome) -> None:
            result.inputs_mtime = newest.get(result.sof)
            db.record_result(result)
            results.append(result)

        sofs = [str(j.sof) for j in todo]
        if sofs and scheduler:
            runner.run_dask(sofs, ws, settings_path, scheduler, record)
        elif sofs:
            runner.run_local(sofs, ws, settings_path, nworkers or thread_count(0), record,
                             keep_workers)
        for job in done:
            results.append(db.known_outcome(job.sof, job.product))
        order = {j.sof.name: k for k, j in enumerate(sorted(todo + done, key=lambda j: j.sof))}
        results.sort(key=lambda r: order.get(r.sof, 0))
        return Reduced(results)
    finally:
        if own:
            db.close()
