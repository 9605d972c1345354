"""A function computed in a forked child process, to use the other core for
work that holds the GIL in this one (such as importing and loading the
compiled kernel).  Fork only from a process that owns all its threads: the
command line does; a host such as PyEsoRex may not."""

from __future__ import annotations

import os
import pickle
import signal


class ForkedCall:
    """``fn(*args)`` in a forked child; ``result()`` returns its value or
    raises its exception, ``cancel()`` ends it.  The child shares nothing
    back but its pickled result."""

    def __init__(self, fn, *args):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:                                   # the child
            os.close(read)
            _serve(write, fn, args)
        os.close(write)
        self.pid, self._file = pid, os.fdopen(read, "rb")

    def result(self):
        with self._file as fh:
            data = fh.read()
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        if not data:
            raise RuntimeError(f"worker process ended with status {status} and no result")
        ok, value = pickle.loads(data)
        if ok:
            return value
        raise value

    def cancel(self) -> None:
        if self.pid is not None:
            end_child(self.pid, self._file)
            self.pid = None


def end_child(pid: int, *files) -> None:
    """Kill and reap a child process, then close our ends of its pipes."""
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
    for f in files:
        try:
            f.close()
        except OSError:
            pass


def _serve(fd: int, fn, args) -> None:
    """Compute, send the pickled (ok, value or exception), exit; never returns."""
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)        # the parent reports interruptions
        try:
            payload = pickle.dumps((True, fn(*args)), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:                  # raised again by the parent
            try:
                payload = pickle.dumps((False, exc))
            except Exception:
                payload = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
    finally:
        os._exit(0)
