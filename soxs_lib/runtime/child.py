"""One piece of work elsewhere: ``Child`` in a forked process (the QC plot,
the stacking), ``InThread`` on a thread (hashing the product's data).

A forked child uses the other core for work that would hold the GIL in
this process (drawing, the statistics of frame pairs).  Fork only
from a process that owns all its threads: the command line and the pool's
workers do; a host such as PyEsoRex may not, so the recipe never forks.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
import fcntl
import os
import pickle
import select
import signal
import sys

from soxs_lib.runtime import signals


def can_fork() -> bool:
    """Whether this platform forks (``Child`` needs it)."""
    return hasattr(os, "fork")


def can_share() -> bool:
    """Whether a child can open this process's descriptors, anonymous files
    included (Linux's ``/proc/<pid>/fd``)."""
    return sys.platform.startswith("linux") and os.path.isdir(f"/proc/{os.getpid()}/fd")


def die_with(parent: int) -> None:
    """End this process when its parent ends, however (SIGKILL included): a
    pool's workers share its pipes, so none would see the parent go, and a
    killed worker's plot must not be written after the sweep.

    Parameters
    ----------
    parent : int
        The parent's process id, read before the fork: if the parent is
        already gone, this process ends at once.
    """
    if sys.platform.startswith("linux"):
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    if os.getppid() != parent:        # gone before that took effect
        os._exit(1)


class Child:
    """``target(*args, inbox)`` in a forked child.

    The parent may ``send`` picklable messages, which the child takes from
    ``inbox.receive()`` in order (EOFError once the parent ``close_inbox``es
    or goes away), and take the child's ``inbox.reply``s with ``receive()``;
    ``result()`` returns the child's return value or raises its exception;
    ``cancel()`` ends the child.  The child shares nothing back
    but its pickled result, and dies of SIGINT/SIGTERM: the parent reports
    interruptions.

    Parameters
    ----------
    target : callable
        Called in the child as ``target(*args, inbox)`` when ``inbox`` is
        true, else ``target(*args)``.
    *args
        Its arguments (inherited by the fork, never pickled).
    inbox : bool
        Whether the parent sends messages.
    pipe_bytes : int or None
        Size of the message pipe (fewer context switches for large arrays).
    """

    def __init__(self, target, *args, inbox: bool = False, pipe_bytes: int | None = None):
        self._inbox = self._result = self._replies = None
        self.pid = None
        res_r, res_w = os.pipe()
        job_r = job_w = rep_r = rep_w = None
        if inbox:
            job_r, job_w = os.pipe()
            rep_r, rep_w = os.pipe()
            if pipe_bytes:
                try:
                    fcntl.fcntl(job_w, fcntl.F_SETPIPE_SZ, pipe_bytes)
                except (AttributeError, OSError):   # not Linux, or above the system's limit
                    pass
        parent = os.getpid()
        try:
            self.pid = os.fork()
            if self.pid == 0:                                  # the child
                os.close(res_r)
                if job_w is not None:
                    os.close(job_w)
                    os.close(rep_r)
                _serve(res_w, target, args,
                       None if job_r is None else Inbox(job_r, rep_w), parent)
            os.close(res_w)
            self._result = os.fdopen(res_r, "rb")
            if job_r is not None:
                os.close(job_r)
                os.close(rep_w)
                self._inbox = os.fdopen(job_w, "wb")
                self._replies = os.fdopen(rep_r, "rb")
            signals.check()         # one whose exception os.fork's callbacks dropped
        except BaseException:
            self.cancel()
            raise

    def send(self, message) -> bool:
        """Pickle ``message`` to the child; False if the child is gone (then
        ``result()`` tells why)."""
        try:
            pickle.dump(message, self._inbox, protocol=pickle.HIGHEST_PROTOCOL)
            self._inbox.flush()
            return True
        except (BrokenPipeError, ValueError):
            return False

    def has_reply(self) -> bool:
        """Whether a reply (or the child's end) waits to be ``receive``d."""
        return bool(select.select([self._replies], [], [], 0)[0])

    def receive(self):
        """The child's next ``inbox.reply``.

        Raises
        ------
        Exception
            The child ended before it replied: its exception, or
            RuntimeError.
        """
        try:
            return pickle.load(self._replies)
        except EOFError:
            self.result()             # raises what ended the child
            raise RuntimeError("worker process ended before it replied") from None

    def close_inbox(self) -> None:
        """No more messages: the child's next ``receive`` raises EOFError."""
        if self._inbox is not None:
            try:
                self._inbox.close()
            except BrokenPipeError:
                pass

    def result(self):
        """Wait for the child; its return value, or its exception raised here.

        Raises
        ------
        RuntimeError
            The child ended without a result (killed, or crashed hard).
        """
        self.close_inbox()
        with self._result as fh:
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
        """Kill and reap the child, if it still runs; close the pipes."""
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        self.pid = None
        for f in (self._inbox, self._result, self._replies):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass


class InThread:
    """``fn(*args)`` on a thread of this process, with ``Child``'s
    ``result()`` and ``cancel()``: work that releases the GIL (hashing the
    product's data), or where forking is not safe (a host such as PyEsoRex
    may own threads)."""

    def __init__(self, fn, *args):
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._future = self._pool.submit(fn, *args)

    def result(self):
        """The value of ``fn(*args)``, or its exception raised here."""
        try:
            return self._future.result()
        finally:
            self._pool.shutdown(wait=True)

    def cancel(self) -> None:
        """Forget the call (a running call finishes in the background)."""
        self._future.cancel()
        self._pool.shutdown(wait=False)


class Inbox:
    """The child's end of the message pipes."""

    def __init__(self, fd: int, reply_fd: int):
        self._file = os.fdopen(fd, "rb")
        self._replies = os.fdopen(reply_fd, "wb")

    def receive(self):
        """The next message; EOFError when there are no more."""
        return pickle.load(self._file)

    def reply(self, value) -> None:
        """Pickle ``value`` to the parent's ``Child.receive``."""
        pickle.dump(value, self._replies, protocol=pickle.HIGHEST_PROTOCOL)
        self._replies.flush()


def _serve(fd: int, target, args, inbox, parent: int) -> None:
    """Compute, send the pickled (ok, value or exception), exit; never
    returns.  Dies with its parent (a worker killed at once must not leave
    its plot being written)."""
    try:
        for sig in signals.STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        die_with(parent)
        try:
            value = target(*args, inbox) if inbox is not None else target(*args)
            payload = pickle.dumps((True, value), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:                  # raised again by the parent
            try:
                payload = pickle.dumps((False, exc))
            except Exception:   # noqa: BLE001 - an exception that does not pickle
                payload = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
    finally:
        os._exit(0)
