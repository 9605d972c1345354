"""Child processes and how many cores to use: ``Child`` for one piece of
work in a forked process (the frame statistics, the QC plot),
``map_in_workers`` for many tasks on a pool of long-lived workers (the sets
of ``reduce all``), ``signals_held`` to fork and publish with SIGINT/SIGTERM
held back, and the one thread-count policy.

A forked child uses the other core for work that holds the GIL in this
process (importing and loading the compiled kernel, drawing).  Fork only
from a process that owns all its threads: the command line does; a host such
as PyEsoRex may not, so the recipe never forks.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
import fcntl
import os
import pickle
import signal
import sys
import threading
import time


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


STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


_holds = 0                  # signals_held blocks open in this process's main thread
_arrived: list[int] = []    # STOP_SIGNALS that came meanwhile


def _note(signum, _frame):
    _arrived.append(signum)


def _forget_holds() -> None:
    """In a child forked inside a hold: it never leaves its parent's block."""
    global _holds
    _holds = 0
    _arrived.clear()


os.register_at_fork(after_in_child=_forget_holds)


@contextmanager
def signals_held():
    """Hold SIGINT and SIGTERM back for the block; one that arrives meanwhile
    is handled when it ends.

    Python runs a signal handler between any two bytecodes, also inside the
    callbacks ``os.fork`` runs, where an exception the handler raises is
    printed and dropped: a fork is made under this hold, and so is
    publishing a product.  Blocking the signals in this thread is not enough:
    another thread that does not block them (an OpenMP team) takes them, and
    Python still runs the handler in the main thread.  So in the main thread
    the handlers are also replaced, by one that notes the signal, for the
    block; at its end the noted signals are raised again.  Threads and
    processes started in the block inherit the blocked signals.

    Yields
    ------
    set
        The signal mask before the block (a forked child restores it).
    """
    global _holds
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        if _holds == 0:
            handlers = {sig: signal.signal(sig, _note) for sig in STOP_SIGNALS
                        if signal.getsignal(sig) is not None}   # None: not set from Python
        _holds += 1
    try:
        yield mask
    finally:
        if threading.current_thread() is threading.main_thread():
            _holds -= 1
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if handlers:
            arrived = sorted(set(_arrived))
            _arrived.clear()
            for sig in arrived:
                signal.raise_signal(sig)


class WorkerDied(RuntimeError):
    """A worker process ended in the middle of a task: killed (out of memory,
    a signal from outside) or crashed."""


def map_in_workers(fn, arglists, n: int, initializer=None, initargs: tuple = ()):
    """``fn(*args)`` for every ``args`` of ``arglists`` in ``n`` forked
    worker processes, each serving many tasks (the standard library's
    ``ProcessPoolExecutor``); results as they come.

    A task whose worker dies never takes the others with it: the tasks of a
    broken pool are run again, each alone, and the one that kills its worker
    again yields ``WorkerDied``.  Closing the generator (``contextlib.closing``)
    or an exception while it waits (SIGINT/SIGTERM) ends the workers:
    SIGTERM, which they end on with their ``finally`` blocks run (a product
    being written is removed), then SIGKILL for one that does not end.
    A worker leaves Ctrl-C to this process.

    Parameters
    ----------
    fn : callable
        A module-level function (workers find it by name).
    arglists : iterable of tuple
        The arguments of each task.
    n : int
        Worker processes (at most one per task).
    initializer : callable, optional
        Called once in each worker as ``initializer(*initargs)``, with SIGINT
        and SIGTERM held back: threads it starts (numba's OpenMP team)
        inherit that mask and never take those signals, so SIGTERM always
        reaches the worker's main thread, the one that can act on it.  If it
        raises, the worker goes on: the failure recurs in the task.
    initargs : tuple
        Its arguments.

    Yields
    ------
    tuple
        ``(args, True, value)``, or ``(args, False, exception)`` for a task
        that raised or whose worker died (``WorkerDied``).
    """
    died = yield from _run_pool(fn, [tuple(a) for a in arglists], n, initializer, initargs)
    for args in died:            # which of them killed its worker: each alone
        if (yield from _run_pool(fn, [args], 1, initializer, initargs)):
            yield args, False, WorkerDied(
                "the worker process died (killed, e.g. out of memory, or crashed)")


def _run_pool(fn, arglists, n, initializer, initargs):
    """Yield as ``map_in_workers`` does; return the tasks whose pool broke."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool
    if not arglists:
        return []
    pool, workers, died, done = None, set(), [], False
    try:
        # a signal held back while forking is raised at the end of the hold,
        # inside this try: the workers it started are ended below
        with signals_held() as mask:   # the workers and the pool's thread start with it
            before = set(multiprocessing.active_children())
            pool = ProcessPoolExecutor(min(n, len(arglists)),
                                       mp_context=multiprocessing.get_context("fork"),
                                       initializer=_start_worker,
                                       initargs=(initializer, initargs, mask))
            futures = {pool.submit(_task, fn, args): args for args in arglists}  # forks them
            workers = set(multiprocessing.active_children()) - before
        for fut in as_completed(futures):
            try:
                value = fut.result()
            except BrokenProcessPool:
                died.append(futures[fut])
            except Exception as exc:   # noqa: BLE001 - the task's own failure, handed on
                yield futures[fut], False, exc
            else:
                yield futures[fut], True, value
        done = True
    finally:
        # held: a second signal must not cut the ending of the workers short
        # (a worker left waiting for tasks would outlive this process)
        with signals_held():
            if pool is not None:
                pool.shutdown(wait=done, cancel_futures=not done)
            if not done:
                _end(workers)
    return died


def _end(processes, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL for those still running after ``grace`` s."""
    for p in processes:
        p.terminate()
    deadline = time.monotonic() + grace
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.exitcode is None:
            p.kill()
            p.join()


def _task(fn, args):
    """One task in a worker.  A SIGTERM whose exception Python dropped (see
    ``signals_held``) still ends the worker, once the task is done."""
    global _in_task
    _in_task = True
    try:
        return fn(*args)
    finally:
        _in_task = False
        if _stopping:
            os._exit(128 + signal.SIGTERM)


_stopping = False
_in_task = False


def _start_worker(initializer, initargs, mask) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if initializer is not None:
        try:
            initializer(*initargs)
        except Exception:   # noqa: BLE001 - recurs in the task, which reports it
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _exit_on_sigterm(_signum, _frame):
    """In a task, SIGTERM unwinds it (its ``finally`` blocks remove what it
    was writing); anywhere else the worker ends at once: an exception raised
    inside the pool's own code (sending a result, waiting for a task) can
    leave a lock it shares with the other workers taken for ever."""
    global _stopping
    _stopping = True
    if not _in_task:
        os._exit(128 + signal.SIGTERM)
    if isinstance(sys.exc_info()[1], SystemExit):
        return      # a second SIGTERM (the pool ends the others when one dies) must
                    # not cut short the clean-up the first one is running
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
        self.pid = None
        try:
            with signals_held() as mask:
                pid = os.fork()
                if pid == 0:                                   # the child
                    os.close(res_r)
                    if job_w is not None:
                        os.close(job_w)
                    _serve(res_w, target, args, None if job_r is None else Inbox(job_r), mask)
                os.close(res_w)
                if job_r is not None:
                    os.close(job_r)
                    self._inbox = os.fdopen(job_w, "wb")
                self.pid, self._result = pid, os.fdopen(res_r, "rb")
        except BaseException:
            # a signal held back while forking is raised at the end of the
            # hold, before the caller has this object to cancel
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


def _serve(fd: int, target, args, inbox, mask) -> None:
    """Compute, send the pickled (ok, value or exception), exit; never returns."""
    try:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
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
