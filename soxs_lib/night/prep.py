"""``soxs prep``: a workspace's files classified, its dark sets found and
written as SOFs (``<workspace>/sof``), idempotently."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from soxs_lib.config import keywords as kw
from soxs_lib.night import group as grouping
from soxs_lib.night.classify import Frame, classify, find_files
from soxs_lib.night.db import Database
from soxs_lib.night.outcome import READY, prep_status
from soxs_lib.night.rebuild import Repair, open_database
from soxs_lib.night.workspace import check_workspace


@dataclass
class Prep:
    """What ``prep`` found: every file, the sets, the SOFs it wrote."""

    frames: list[Frame]
    sets: list[grouping.DarkSet]
    written: list[Path]
    statuses: dict            # SOF name -> set status (reduced, failed included)
    removed: list[Path] = field(default_factory=list)   # SOFs of sets that are no more
    repair: Repair | None = None      # the database made anew first (rebuild)

    @property
    def left_out(self) -> list[Frame]:
        """Files that are neither raw darks nor master biases, with reasons."""
        return [f for f in self.frames if not f.kind]


def prep(workspace, db: Database | None = None, refresh: bool = False, progress=None) -> Prep:
    """Classify every file of the workspace, group the darks and write one
    SOF per complete set to ``<workspace>/sof``.

    Headers are read only for new or changed files (the database remembers
    the others).  Idempotent: with nothing new, no file changes.  A database
    SQLite cannot read whole is set aside and rebuilt first (``rebuild``).

    Parameters
    ----------
    workspace : str or Path
    db : Database, optional
        Open database (default: the workspace's).
    refresh : bool
        Set the workspace's database aside and rebuild it even when it is
        sound (``soxs prep --refresh``; not with ``db``).
    progress : callable, optional
        ``progress(total)`` once with the number of files, then
        ``progress(None)`` as each file is taken up.

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
    own, repair = db is None, None
    if own:
        db, repair = open_database(ws, refresh)
    try:
        frames, files = [], find_files(ws)
        if progress is not None:
            progress(len(files))
        for path in files:
            if progress is not None:
                progress(None)
            try:
                st = path.stat()
            except OSError:
                continue                       # gone meanwhile
            cached = db.cached_frame(str(path), st.st_size, st.st_mtime)
            frames.append(cached if cached is not None and cached.complete
                          else classify(path))
        # the database keeps what each file is; which copy of an exposure is
        # used is decided anew, as copies come and go
        shown = grouping.one_copy_each(frames)
        sets = grouping.group(shown)
        written = grouping.write_sofs(sets, ws / kw.WORKSPACE_SOF)
        # a SOF an earlier prep wrote for a set that is no more (regrouped,
        # renamed by an upgrade) would make its product twice
        gone = db.set_names() - {s.sof_name for s in sets if s.status == READY}
        removed = grouping.remove_sofs(sorted(gone), ws / kw.WORKSPACE_SOF)
        sof_of = {f.path: s.sof_name for s in sets for f in s.frames}
        statuses = {}
        new_sofs = {path.name for path in written}      # an earlier outcome is of another SOF
        for s in sets:
            status = s.status
            done = db.product_of(s.sof_name) if status == READY and \
                s.sof_name not in new_sofs else None
            if done is not None:
                status = prep_status(done[1])
            statuses[s.sof_name] = status
        if written or removed or _changed(db, frames, sets):
            db.record_prep(frames, sets, sof_of)
        return Prep(shown, sets, written, statuses, removed, repair)
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
