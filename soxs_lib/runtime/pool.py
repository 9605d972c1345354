"""Many tasks on worker processes: ``local_pool`` gives the long-lived
workers of ``reduce all`` (the standard library's pool), ``each_done`` is the
one loop over any ``concurrent.futures`` executor, that pool or a Dask
cluster's, and ``run_isolated`` keeps a task that kills its worker from
taking others with it.  One piece of work
in another process is ``child.Child``.
"""

from __future__ import annotations

from concurrent.futures import BrokenExecutor, ProcessPoolExecutor, as_completed
import multiprocessing
import os
import signal

from soxs_lib.runtime import signals
from soxs_lib.runtime.child import die_with


# -- many tasks: worker processes --------------------------------------------------

class WorkerDied(RuntimeError):
    """A worker process ended in the middle of a task: killed (out of memory,
    a signal from outside) or crashed."""


def local_pool(n: int, initializer=None, initargs: tuple = ()):
    """``n`` long-lived worker processes forked from this one (the standard
    library's ``ProcessPoolExecutor``): they inherit its imported modules,
    so a worker starts at once.  The one ``run_isolated`` kept for the same
    arguments is given again (``soxs watch``, pass after pass).

    A worker leaves SIGINT to this process (Ctrl-C reaches the whole
    process group; this process decides) and dies of SIGTERM at once: what
    it was writing stays staged, for ``publish.sweep_stale``.

    Parameters
    ----------
    n : int
        Worker processes.
    initializer : callable, optional
        Called once in each worker as ``initializer(*initargs)`` (import
        the stacking and plotting modules).
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
    die_with(os.getppid())
    signal.pthread_sigmask(signal.SIG_UNBLOCK, signals.STOP_SIGNALS)
    if initializer is not None:
        initializer(*initargs)


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
    arglists = [tuple(args) for args in arglists]
    # a submit starts the workers: forked with the signals blocked, they take
    # none before they can ignore SIGINT (see local_pool)
    try:
        with signals.blocked():
            futures = {executor.submit(fn, *args): args for args in arglists}
    except BrokenExecutor as exc:     # a kept pool whose worker died while it waited
        for args in arglists:
            yield args, False, WorkerDied(f"the worker process died: {exc}")
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
