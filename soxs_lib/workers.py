"""Child processes and how many cores to use: one helper for every piece of
work done in another process (the frame statistics, the QC plot, the batch
runner of many sets), and the one thread-count policy.

A forked child uses the other core for work that holds the GIL in this
process (importing and loading the compiled kernel, drawing).  Fork only
from a process that owns all its threads: the command line does; a host such
as PyEsoRex may not, so the recipe never forks.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
import fcntl
import os
import pickle
import signal


def thread_count(requested: int = 0) -> int:
    """Threads the ``nthreads`` parameter asks for.

    Parameters
    ----------
    requested : int
        The parameter: used if positive.

    Returns
    -------
    int
        ``requested`` if positive, else ``OMP_NUM_THREADS`` if set (as EDPS
        sets it per job), else every core.
    """
    if requested > 0:
        return requested
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)


def process_pool(n: int, fresh: bool = False):
    """The standard library's pool of ``n`` forked worker processes.

    ``close()`` and ``join()`` it when done; ``terminate()`` it when
    interrupted.  A worker leaves Ctrl-C to the parent and ends quietly on
    SIGTERM (what ``terminate`` sends), its ``finally`` blocks run: a product
    being written is removed, never left partial.

    Parameters
    ----------
    n : int
        Worker processes.
    fresh : bool
        Fork a fresh worker for every task (from this process, with what it
        has imported): a task may then fork in turn, which is unsafe in a
        process that has run GNU OpenMP threads (numba's kernel), and its
        memory is returned when it ends.  Otherwise a worker serves many
        tasks.
    """
    import multiprocessing
    return multiprocessing.get_context("fork").Pool(
        n, initializer=_pool_worker_signals, maxtasksperchild=1 if fresh else None)


def _pool_worker_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


def _exit_on_sigterm(_signum, _frame):
    raise SystemExit(128 + signal.SIGTERM)


def can_fork() -> bool:
    """Whether this platform forks (the helpers below need it)."""
    return hasattr(os, "fork")


class Child:
    """``target(*args, inbox)`` in a forked child.

    The parent may ``send`` picklable messages, which the child takes from
    ``inbox.receive()`` in order (EOFError once the parent ``close_inbox``es
    or goes away); ``result()`` returns the child's return value or raises
    its exception; ``cancel()`` ends the child.  The child shares nothing back
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
        self._inbox = None
        res_r, res_w = os.pipe()
        job_r = job_w = None
        if inbox:
            job_r, job_w = os.pipe()
            if pipe_bytes:
                try:
                    fcntl.fcntl(job_w, fcntl.F_SETPIPE_SZ, pipe_bytes)
                except (AttributeError, OSError):   # not Linux, or above the system's limit
                    pass
        pid = os.fork()
        if pid == 0:                                   # the child
            os.close(res_r)
            if job_w is not None:
                os.close(job_w)
            _serve(res_w, target, args, None if job_r is None else Inbox(job_r))
        os.close(res_w)
        if job_r is not None:
            os.close(job_r)
            self._inbox = os.fdopen(job_w, "wb")
        self.pid, self._result = pid, os.fdopen(res_r, "rb")

    def send(self, message) -> bool:
        """Pickle ``message`` to the child; False if the child is gone (then
        ``result()`` tells why)."""
        try:
            pickle.dump(message, self._inbox, protocol=pickle.HIGHEST_PROTOCOL)
            self._inbox.flush()
            return True
        except (BrokenPipeError, ValueError):
            return False

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
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        self.pid = None
        for f in (self._inbox, self._result):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass


class InThread:
    """``fn(*args)`` on a thread of this process, with ``Child``'s
    ``result()`` and ``cancel()``: where forking is not safe (a host such as
    PyEsoRex may own threads), ``make_master_dark`` measures the frames this
    way while the kernel loads."""

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
    """The child's end of the message pipe."""

    def __init__(self, fd: int):
        self._file = os.fdopen(fd, "rb")

    def receive(self):
        """The next message; EOFError when there are no more."""
        return pickle.load(self._file)


def _serve(fd: int, target, args, inbox) -> None:
    """Compute, send the pickled (ok, value or exception), exit; never returns."""
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
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
