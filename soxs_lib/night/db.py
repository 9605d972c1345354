"""The workspace's SQLite database, ``<workspace>/soxs.db``: raw frames,
sets, products and QC, readable by any SQLite client.

Only the process that runs ``prep`` or ``reduce all`` writes it (workers and
Dask tasks return results to it), each change in one transaction, so a crash
or a kill leaves the state before or after it, never half of it; creating
or migrating the database is one transaction too.  The schema version is
SQLite's ``user_version``.  Other tools read it through views: the SOXS QC
monitor through ``monitor.VIEW``.
"""

from __future__ import annotations

from dataclasses import asdict, fields, replace
from pathlib import Path
import sqlite3

from soxs_lib.config import keywords as kw, params
from soxs_lib.config.errors import OutputError
from soxs_lib.night import monitor
from soxs_lib.night.classify import Frame
from soxs_lib.night.outcome import ERROR, PASS, READY, QCValue, SetOutcome, utc_now

SCHEMA_VERSION = 2
# the database as this soxs creates it, one statement each
SCHEMA = (
    """CREATE TABLE raw_frames (
    path TEXT PRIMARY KEY, size INTEGER, mtime REAL, kind TEXT, reason TEXT,
    complete INTEGER, arm TEXT, exptime REAL, readout TEXT, readout_id TEXT,
    binning TEXT, night TEXT, tpl_start TEXT, tpl_nexp INTEGER, mjd_obs REAL,
    date_obs TEXT, sof TEXT, template TEXT, object TEXT)""",
    """CREATE TABLE sets (
    sof TEXT PRIMARY KEY, arm TEXT, exptime REAL, readout TEXT, binning TEXT,
    night TEXT, tpl_start TEXT, nframes INTEGER, nexp INTEGER, status TEXT,
    first_date_obs TEXT, bias TEXT, updated_utc TEXT, readout_id TEXT, template TEXT,
    object TEXT)""",
    """CREATE TABLE products (
    sof TEXT PRIMARY KEY, path TEXT, status TEXT, error TEXT, exit_status INTEGER,
    reduction_date_utc TEXT, seconds REAL, inputs_mtime REAL)""",
    """CREATE TABLE quality_control (
    id INTEGER PRIMARY KEY AUTOINCREMENT, recipe TEXT, product TEXT, sof TEXT,
    qc_name TEXT, qc_value REAL, qc_unit TEXT, qc_comment TEXT, qc_min REAL,
    qc_max REAL, qc_status TEXT, obs_date_utc TEXT, reduction_date_utc TEXT)""",
    "CREATE INDEX quality_control_sof ON quality_control (sof)",
    "CREATE INDEX quality_control_name ON quality_control (qc_name, obs_date_utc)",
    monitor.view_sql(),
)
# from version k to k + 1
MIGRATIONS = {
    1: (
        # the QC monitor's view needs the readout id, template and object of a
        # set; frames classified before carry none: the next prep reads their
        # headers again (an unknown mtime never matches)
        "ALTER TABLE raw_frames ADD COLUMN template TEXT",
        "ALTER TABLE raw_frames ADD COLUMN object TEXT",
        "UPDATE raw_frames SET mtime = NULL",
        "ALTER TABLE sets ADD COLUMN readout_id TEXT",
        "ALTER TABLE sets ADD COLUMN template TEXT",
        "ALTER TABLE sets ADD COLUMN object TEXT",
        "UPDATE sets SET readout_id = (SELECT r.readout_id FROM raw_frames r "
        "WHERE r.sof = sets.sof LIMIT 1)",
        monitor.view_sql(),
    ),
}
_FRAME_FIELDS = [f.name for f in fields(Frame)]


class Database:
    """The workspace database, created on first use.

    ``created`` says whether this opening made it (a new file, or an empty one).

    Raises
    ------
    OutputError
        It cannot be opened or created, or was written by a newer soxs.
    """

    def __init__(self, workspace: Path):
        self.path = Path(workspace) / kw.WORKSPACE_DB
        self.created = False
        try:
            self.conn = sqlite3.connect(self.path, timeout=60)
            if self._version() != SCHEMA_VERSION:
                self._upgrade()
        except sqlite3.Error as exc:
            raise OutputError(f"{self.path}: cannot use the database ({exc}); soxs prep "
                              "moves a damaged one aside and rebuilds it") from None

    def _version(self) -> int:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise OutputError(f"{self.path}: database schema {version} is newer than "
                              f"this soxs knows ({SCHEMA_VERSION})")
        return version

    def _upgrade(self) -> None:
        """Create the database, or migrate it to ``SCHEMA_VERSION``, in one
        transaction: whatever ends the process meanwhile leaves the old
        state or the new one (SQLite's DDL and ``user_version`` are
        transactional).  The version is read again under the write lock: a
        process that waited for another's upgrade finds it done."""
        self.conn.isolation_level = None      # this method's BEGIN and COMMIT only
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                version = self._version()
                self.created = version == 0
                steps = SCHEMA if version == 0 else [
                    sql for v in range(version, SCHEMA_VERSION) for sql in MIGRATIONS[v]]
                for sql in steps:
                    self.conn.execute(sql)
                self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        finally:
            self.conn.isolation_level = ""

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    # -- prep ------------------------------------------------------------
    def cached_frame(self, path: str, size: int, mtime: float) -> Frame | None:
        """The classification of ``path`` if its size and mtime are unchanged."""
        row = self.conn.execute(
            f"SELECT {', '.join(_FRAME_FIELDS)} FROM raw_frames WHERE path = ?",
            (path,)).fetchone()
        if row is None:
            return None
        frame = Frame(**dict(zip(_FRAME_FIELDS, row, strict=True)))
        if frame.size != size or frame.mtime != mtime:
            return None
        return replace(frame, complete=bool(frame.complete))   # SQLite stores 0/1

    def record_prep(self, frames: list[Frame], sets, sof_of: dict) -> None:
        """Replace what is known of the workspace's files and sets."""
        now = utc_now()
        with self.conn:
            self.conn.execute("DELETE FROM raw_frames")
            self.conn.executemany(
                f"INSERT INTO raw_frames ({', '.join(_FRAME_FIELDS)}, sof) "
                f"VALUES ({', '.join('?' * (len(_FRAME_FIELDS) + 1))})",
                [tuple(asdict(f).values()) + (sof_of.get(f.path),) for f in frames])
            self.conn.execute("DELETE FROM sets")
            columns = ("sof", "arm", "exptime", "readout", "readout_id", "binning", "night",
                       "tpl_start", "nframes", "nexp", "status", "first_date_obs", "bias",
                       "updated_utc", "template", "object")
            self.conn.executemany(
                f"INSERT INTO sets ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))})",
                [(s.sof_name, s.arm, s.exptime, s.readout, s.readout_id, s.binning, s.night,
                  s.tpl_start, len(s.frames), s.nexp, s.status, s.first.date_obs,
                  s.bias.path if s.bias else None, now, s.template, s.object) for s in sets])

    def set_names(self) -> set[str]:
        """The SOF names of the sets the last prep recorded as ready."""
        return {r[0] for r in self.conn.execute("SELECT sof FROM sets WHERE status = ?",
                                                (READY,))}

    # -- reduce all ----------------------------------------------------------
    def product_of(self, sof: str) -> tuple | None:
        """(path, status, error) of the last reduction of ``sof``."""
        return self.conn.execute("SELECT path, status, error FROM products WHERE sof = ?",
                                 (sof,)).fetchone()

    def last_failure(self, sof: str) -> tuple[float | None, int | None, str] | None:
        """If the last reduction of ``sof`` failed: the modification time of
        its newest input then, its exit status and when it ran (UTC, ISO)."""
        return self.conn.execute("SELECT inputs_mtime, exit_status, reduction_date_utc "
                                 "FROM products WHERE sof = ? AND status = ?",
                                 (sof, ERROR)).fetchone()

    def record_result(self, result: SetOutcome) -> None:
        """Store one set's outcome and replace its QC rows, in one transaction."""
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO products VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (result.sof, result.product, result.status, result.error,
                 result.exit_status, result.reduction_date_utc, result.seconds,
                 result.inputs_mtime))
            self.conn.execute("DELETE FROM quality_control WHERE sof = ?", (result.sof,))
            self.conn.executemany(
                "INSERT INTO quality_control (recipe, product, sof, qc_name, qc_value, "
                "qc_unit, qc_comment, qc_min, qc_max, qc_status, obs_date_utc, "
                "reduction_date_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(params.RECIPE, result.product, result.sof, q.name, q.value, q.unit,
                  q.comment, q.min, q.max, q.status, result.obs_date_utc,
                  result.reduction_date_utc) for q in result.qc])

    def known_outcome(self, sof: Path, product: Path) -> SetOutcome:
        """The outcome recorded for a set that is up to date, with its QC."""
        known = self.product_of(sof.name)
        rows = self.conn.execute(
            "SELECT qc_name, qc_value, qc_unit, qc_status FROM quality_control WHERE sof = ?",
            (sof.name,)).fetchall()
        return SetOutcome(sof.name, str(sof), known[1] if known else PASS,
                          product=str(product) if product.exists() else None,
                          error=known[2] if known else None, up_to_date=True,
                          qc=[QCValue(n, v, u or "", status=st) for n, v, u, st in rows])

    def qc_rows(self) -> list[sqlite3.Row]:
        """Every QC row with its set's arm, EXPTIME and readout, by date."""
        self.conn.row_factory = sqlite3.Row
        try:
            return self.conn.execute(
                "SELECT q.*, s.arm, s.exptime, s.readout, s.binning FROM quality_control q "
                "LEFT JOIN sets s ON s.sof = q.sof ORDER BY q.obs_date_utc").fetchall()
        finally:
            self.conn.row_factory = None
