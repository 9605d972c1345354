"""Processes and threads: ``Child`` runs one piece of work in a forked
process (the QC plot, the frame statistics) and ``InThread`` the same on a
thread where forking is not safe; ``local_pool`` gives the long-lived worker
processes of ``reduce all`` (the standard library's pool), ``each_done`` is
the one loop over any ``concurrent.futures`` executor, that pool or a Dask
cluster's, and ``run_isolated`` keeps a task that kills its worker from
taking others with it; and the one thread-count policy.

A forked child uses the other core for work that holds the GIL in this
process (importing and loading the compiled kernel, drawing).  Fork only
from a process that owns all its threads: the command line and the pool's
workers do; a host such as PyEsoRex may not, so the recipe never forks.
"""

from __future__ import annotations

from concurrent.futures import (BrokenExecutor, ProcessPoolExecutor, ThreadPoolExecutor,
                                as_completed)
import fcntl
import multiprocessing
import os
import pickle
import signal
import sys

from . import signals



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


def can_fork() -> bool:
    """Whether this platform forks (``Child`` needs it)."""
    return hasattr(os, "fork")


# -- many tasks: worker processes --------------------------------------------------

class WorkerDied(RuntimeError):
    """A worker process ended in the middle of a task: killed (out of memory,
    a signal from outside) or crashed."""


def local_pool(n: int, initializer=None, initargs: tuple = ()):
    """``n`` long-lived worker processes forked from this one (the standard
    library's ``ProcessPoolExecutor``): they inherit its imported modules,
    so a worker starts at once.  The one ``run_isolated`` kept for the same
    arguments is given again (``soxs watch``, pass after pass).

    Fork only from a process that never ran the compiled kernel (numba's
    GNU OpenMP layer kills a forked process that runs the kernel after its
    parent did): ``reduce all`` and ``watch`` do not, their workers do.
    A worker leaves SIGINT to this process (Ctrl-C reaches the whole
    process group; this process decides) and dies of SIGTERM at once: what
    it was writing stays staged, for ``publish.sweep_stale``.

    Parameters
    ----------
    n : int
        Worker processes.
    initializer : callable, optional
        Called once in each worker as ``initializer(*initargs)`` (load the
        kernel, import the plot's modules).
    initargs : tuple
        Its arguments.

    Returns
    -------
    concurrent.futures.ProcessPoolExecutor
    """
    kept = _kept.pop((n, initializer, initargs), None)
    if kept is not None:
        return kept
    return ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork"),
                               initializer=_start_worker, initargs=(initializer, initargs))


_kept: dict = {}        # (n, initializer, initargs) -> the pool run_isolated kept


def _start_worker(initializer, initargs) -> None:
    """A worker's start; it was forked with the signals blocked (``each_done``
    submits so), so none came before it could ignore SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with(os.getppid())
    signal.pthread_sigmask(signal.SIG_UNBLOCK, signals.STOP_SIGNALS)
    if initializer is not None:
        initializer(*initargs)


def _die_with(parent: int) -> None:
    """End this process when its parent ends, however (SIGKILL included): a
    pool's workers share its pipes, so none would see the parent go."""
    if sys.platform.startswith("linux"):
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    if os.getppid() != parent:        # gone before that took effect
        os._exit(1)


def release() -> None:
    """Shut down the pool ``run_isolated`` kept (its workers are idle)."""
    for pool in _kept.values():
        pool.shutdown(wait=True)
    _kept.clear()


def stop_pool(pool) -> None:
    """End the workers now, in the middle of their tasks (SIGKILL): all the
    worker processes of this process, this pool's and any kept one."""
    pool.shutdown(wait=False, cancel_futures=True)
    _kept.clear()
    for worker in multiprocessing.active_children():
        worker.kill()
        worker.join()


def each_done(executor, fn, arglists):
    """``fn(*args)`` for every ``args`` of ``arglists`` on ``executor``,
    yielded as each finishes.  Closing the generator early (an
    ``Interrupted``) leaves the tasks to the executor's shutdown, which the
    caller owns (``stop_pool``).

    Parameters
    ----------
    executor : concurrent.futures.Executor
        ``local_pool``'s, or a Dask client's (``Client.get_executor()``).
    fn : callable
        A module-level function (workers find it by name).
    arglists : iterable of tuple
        The arguments of each task.

    Yields
    ------
    tuple
        ``(args, True, value)``, or ``(args, False, exception)`` for a task
        that raised, ``WorkerDied`` where its worker (or the pool with it)
        died: the tasks of a broken pool all end so.
    """
    # a submit starts the workers: forked with the signals blocked, they take
    # none before they can ignore SIGINT (see local_pool)
    try:
        with signals.blocked():
            futures = {executor.submit(fn, *args): tuple(args) for args in arglists}
    except BrokenExecutor as exc:     # a kept pool whose worker died while it waited
        for args in arglists:
            yield tuple(args), False, WorkerDied(f"the worker process died: {exc}")
        return
    for fut in as_completed(futures):
        try:
            value = fut.result()
        except BrokenExecutor as exc:
            yield futures[fut], False, WorkerDied(
                f"the worker process died (killed, e.g. out of memory, or crashed): {exc}")
        except Exception as exc:   # noqa: BLE001 - the task's own failure, handed on
            yield futures[fut], False, exc
        else:
            yield futures[fut], True, value


def run_isolated(fn, arglists, n: int, initializer=None, initargs: tuple = (),
                 keep: bool = False):
    """``each_done`` on ``local_pool(n)``, where a task that kills its worker
    fails alone: the tasks of the pool its death broke run again, each on a
    pool of its own, and only the one that kills its worker again yields
    ``WorkerDied``.  Closing the generator early (``contextlib.closing``; an
    ``Interrupted``) ends the workers at once.

    Parameters
    ----------
    fn, arglists
        As for ``each_done``.
    n, initializer, initargs
        As for ``local_pool``.
    keep : bool
        Leave the workers running once every task is done, for the next
        call with the same arguments.

    Yields
    ------
    tuple
        As ``each_done``.
    """
    pool = None
    try:
        pool = local_pool(n, initializer, initargs)
        died = []
        for args, ok, value in each_done(pool, fn, arglists):
            if isinstance(value, WorkerDied):
                died.append(args)
            else:
                yield args, ok, value
        for args in died:                     # which of them killed its worker
            pool = local_pool(1, initializer, initargs)
            yield from each_done(pool, fn, [args])
    except BaseException:
        if pool is not None:
            stop_pool(pool)
        raise
    if keep:
        release()
        _kept[(n, initializer, initargs)] = pool
    else:
        pool.shutdown(wait=True)


# -- one task: a forked child or a thread -------------------------------------------

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
        self._inbox = self._result = None
        self.pid = None
        res_r, res_w = os.pipe()
        job_r = job_w = None
        if inbox:
            job_r, job_w = os.pipe()
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
                _serve(res_w, target, args, None if job_r is None else Inbox(job_r), parent)
            os.close(res_w)
            self._result = os.fdopen(res_r, "rb")
            if job_r is not None:
                os.close(job_r)
                self._inbox = os.fdopen(job_w, "wb")
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


def _serve(fd: int, target, args, inbox, parent: int) -> None:
    """Compute, send the pickled (ok, value or exception), exit; never
    returns.  Dies with its parent (a worker killed at once must not leave
    its plot being written)."""
    try:
        for sig in signals.STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        _die_with(parent)
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
