"""A lost or damaged workspace database rebuilt, and nothing lost.

A ``soxs.db`` that SQLite cannot read whole (a file cut short, pages zeroed
by a failing disk, a file that is not SQLite at all) is moved aside to
``<workspace>/backups/`` under a dated name, never deleted, and a new one is
made; ``soxs prep --refresh`` does the same to a sound one.  The new
database learns each set's reduction and QC from the products already on
disk (their headers state every QC value, range and status: the very rows a
reduction records, ``SetOutcome.from_product``), and ``prep`` fills in the
frames and sets from the raw headers as always.  So ``reduce all`` redoes
nothing that was done, and the QC monitor's view holds the rows it held.
A set whose last reduction failed left no product: it is tried again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
import os
from pathlib import Path
import sqlite3

from soxs_lib.config import keywords as kw
from soxs_lib.config.errors import OutputError
from soxs_lib.io import naming
from soxs_lib.night.db import SCHEMA_VERSION, Database
from soxs_lib.night.outcome import SetOutcome

REFRESH = "soxs prep --refresh"      # Repair.reason: asked for
MISSING = "missing"                  # Repair.reason: there was no database
# SQLite's companions of a database file, moved with it
COMPANIONS = ("-journal", "-wal", "-shm")


@dataclass
class Repair:
    """What was done to the workspace's database before it was used."""

    reason: str                       # why it was made anew
    kept: Path | None = None          # where the old file went (None: there was none)
    recovered: list[str] = field(default_factory=list)   # SOFs whose outcome came back


def fault(path: Path) -> str:
    """Why ``path`` cannot serve as the workspace's database; empty when it
    can, or when there is no file (a new one is made).

    SQLite reads the whole file (``PRAGMA quick_check``) through a
    read-write connection, so the journal of a writer that was killed is
    rolled back first, as every later use would, and is not taken for damage.
    A database of a newer soxs is not damaged: ``Database`` refuses it.

    Parameters
    ----------
    path : Path

    Returns
    -------
    str
    """
    if not path.exists():
        return ""
    try:
        conn = sqlite3.connect(path, timeout=60)
        try:
            found = [r[0] for r in conn.execute("PRAGMA quick_check")]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    if found != ["ok"]:
        return "; ".join(found[:3])
    missing = {"raw_frames", "sets", "products", "quality_control"} - tables
    if 0 < version <= SCHEMA_VERSION and missing:
        return f"table(s) {', '.join(sorted(missing))} missing"
    return ""


def set_aside(path: Path) -> Path:
    """Move the database (and its journal) to ``backups/`` beside it, under
    a dated name that no earlier backup holds; returns its new path.

    Raises
    ------
    OutputError
        It cannot be moved.
    """
    folder = path.parent / kw.WORKSPACE_BACKUPS
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    try:
        folder.mkdir(exist_ok=True)
        kept, k = folder / f"{path.stem}-{stamp}{path.suffix}", 1
        while kept.exists():
            k += 1
            kept = folder / f"{path.stem}-{stamp}-{k}{path.suffix}"
        for suffix in COMPANIONS:
            if Path(f"{path}{suffix}").exists():
                os.replace(f"{path}{suffix}", f"{kept}{suffix}")
        os.replace(path, kept)
    except OSError as exc:
        raise OutputError(f"{path}: cannot move the database aside to {folder} "
                          f"({exc.strerror})") from None
    return kept


def recover(db: Database, ws: Path) -> list[str]:
    """Record the outcome of every set of ``<workspace>/sof`` whose product
    is on disk and the database does not hold.

    Returns
    -------
    list of str
        The SOFs recovered, by name.
    """
    sof_dir = ws / kw.WORKSPACE_SOF
    found = []
    for sof in sorted(sof_dir.glob("*" + naming.SOF_SUFFIX)) if sof_dir.is_dir() else []:
        product = naming.set_files(ws, sof.stem).product
        if db.product_of(sof.name) is not None or not product.is_file():
            continue
        try:
            outcome = SetOutcome.from_product(sof, product)
        except (OSError, ValueError):
            continue                   # not a soxs_mdark product it can read: made again
        db.record_result(outcome)
        found.append(sof.name)
    return found


def open_database(ws: Path, refresh: bool = False) -> tuple[Database, Repair | None]:
    """The workspace's database, ready to use: one SQLite cannot read whole
    (or, with ``refresh``, any) is set aside and made anew, and a new one
    learns the reductions whose products are on disk.

    Parameters
    ----------
    ws : Path
        The workspace (its lock held).
    refresh : bool
        Make the database anew even when it is sound.

    Returns
    -------
    db : Database
    repair : Repair or None
        What was done; None when the database was used as it was.

    Raises
    ------
    OutputError
        The database cannot be moved aside, created or written.
    """
    path = ws / kw.WORKSPACE_DB
    reason = REFRESH if refresh and path.exists() else fault(path)
    kept = set_aside(path) if reason else None
    if not path.exists() and not reason:
        reason = MISSING
    db = Database(ws)
    try:
        recovered = recover(db, ws) if db.created else []
    except BaseException:
        db.close()
        raise
    if not reason or (reason == MISSING and not recovered):
        return db, None               # a new workspace's first database
    return db, Repair(reason, kept, recovered)
