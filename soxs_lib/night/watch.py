"""``soxs watch``: ``prep`` and ``reduce all`` every few seconds, for the
instrument workstation, until SIGINT or SIGTERM.  A set is reduced once its
last frame is complete; nothing is printed when nothing changes."""

from __future__ import annotations

import time

from soxs_lib.night import batch
from soxs_lib.cli import tables
from soxs_lib.runtime.pool import release
from soxs_lib.night.db import Database
from soxs_lib.night.outcome import Reduced


def watch(ws, interval: float = 15.0, settings_path=None, nworkers: int = 0,
          passes: int | None = None) -> int:
    """Watch the workspace ``ws``.

    Parameters
    ----------
    ws : Path
    interval : float
        Seconds between passes.
    settings_path : str, optional
    nworkers : int
        Worker processes for ``reduce all`` (0: the number of cores).
    passes : int, optional
        Stop after this many passes (tests); by default run until a signal.

    Returns
    -------
    int
        0 (a signal ends the watch through the caller).

    Raises
    ------
    Busy
        Another soxs process holds the workspace.
    """
    done = 0
    with batch.workspace_lock(ws):
        db = Database(ws)
        try:
            while passes is None or done < passes:
                found = batch.prep(ws, db)
                reduced = batch.reduce_all(ws, settings_path, False, nworkers, db=db,
                                           keep_workers=True)
                fresh = reduced.fresh
                if found.written or fresh:
                    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
                    print(f"[{stamp}] {len(found.written)} new SOF(s), "
                          f"{len(fresh)} set(s) reduced", flush=True)
                    if fresh:
                        print(tables.reduce_text(Reduced(fresh)), flush=True)
                done += 1
                if passes is None or done < passes:
                    time.sleep(interval)
        finally:
            release()                 # the workers kept between passes
            db.close()
    return 0
