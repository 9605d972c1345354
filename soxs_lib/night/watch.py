"""``soxs watch``: ``prep`` and ``reduce all`` every few seconds, for the
instrument workstation, until SIGINT or SIGTERM.  A set is reduced once its
last frame is complete; a pass that finds nothing new reports nothing.  A
pass that cannot finish (a folder in the way, a full disk, the workspace's
disk gone) is reported and the watch goes on: the next pass may.  A pass
that finds the database damaged leaves it to the next, which sets it aside
and rebuilds it (``rebuild``)."""

from __future__ import annotations

from collections.abc import Callable
import sqlite3
import time
from types import SimpleNamespace

from soxs_lib.config.errors import SoxsError
from soxs_lib.night.outcome import Reduced
from soxs_lib.night.prep import Prep, prep
from soxs_lib.night.rebuild import open_database
from soxs_lib.night.reduce import reduce_all
from soxs_lib.night.workspace import workspace_lock
from soxs_lib.runtime.pool import release

# a set that failed for other reasons than its inputs (a full disk, a killed
# worker) is tried again after this long, not on every pass
RETRY_AFTER_S = 600.0


def watch(ws, show: Callable[[Prep, Reduced], None], interval: float = 15.0,
          settings_path=None, nworkers: int = 0, passes: int | None = None,
          trouble: Callable[[str | None], None] = lambda _: None,
          each_pass: Callable[[int], None] | None = None) -> int:
    """Watch the workspace ``ws``.

    Parameters
    ----------
    ws : Path
    show : callable
        ``show(found, reduced)`` after a pass that wrote SOFs or reduced
        sets: what ``prep`` found, and the sets reduced in that pass.
    interval : float
        Seconds between passes.
    settings_path : str, optional
    nworkers : int
        Worker processes for ``reduce all`` (0: the number of cores).
    passes : int, optional
        Stop after this many passes (tests); by default run until a signal.
    trouble : callable
        ``trouble(message)`` when a pass fails with another message than the
        pass before; ``trouble(None)`` when a pass succeeds after failures.
    each_pass : callable, optional
        ``each_pass(passes)`` after every pass, with the number done.

    Returns
    -------
    int
        0 (a signal ends the watch through the caller).

    Raises
    ------
    Busy
        Another soxs process holds the workspace.
    """
    done, state = 0, SimpleNamespace(db=None)
    with workspace_lock(ws):
        try:
            failing = None                # the message of the last pass, if it failed
            while passes is None or done < passes:
                try:
                    found, fresh = _pass(ws, state, settings_path, nworkers)
                except (SoxsError, OSError, sqlite3.Error) as exc:
                    if str(exc) != failing:
                        trouble(str(exc))
                    failing = str(exc)
                else:
                    if failing is not None:
                        trouble(None)
                    failing = None
                    if found.written or fresh or found.repair:
                        show(found, Reduced(fresh))
                done += 1
                if each_pass is not None:
                    each_pass(done)
                if passes is None or done < passes:
                    time.sleep(interval)
        finally:
            release()                 # the workers kept between passes
            if state.db is not None:
                state.db.close()
    return 0


def _pass(ws, state: SimpleNamespace, settings_path, nworkers: int) -> tuple[Prep, list]:
    """One pass: prep, then reduce all, on ``state.db``, opened (and, if
    damaged, rebuilt) first when None; a database found damaged meanwhile is
    closed, for the next pass to rebuild."""
    repair = None
    if state.db is None:
        state.db, repair = open_database(ws)
    try:
        found = prep(ws, state.db)
        found.repair = repair
        fresh = reduce_all(ws, settings_path, False, nworkers, db=state.db,
                           watching=RETRY_AFTER_S).fresh
    except sqlite3.DatabaseError:
        state.db.close()
        state.db = None
        raise
    return found, fresh
