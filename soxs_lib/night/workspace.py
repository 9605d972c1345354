"""A night's workspace: the folder checked, and its lock (one ``prep``,
``reduce all`` or ``watch`` at a time)."""

from __future__ import annotations

from contextlib import contextmanager
import fcntl
import os
from pathlib import Path

from soxs_lib.config import keywords as kw
from soxs_lib.config.errors import InputError, OutputError, SoxsError

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
