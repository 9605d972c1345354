"""Sets reduced on an executor: this machine's worker processes or a Dask
cluster's, through one loop (``runtime.pool.each_done``).

Each worker reduces set after set with ``run.run_mdark``, as
``soxs mdark <sof> -o <workspace>`` would, and hands back a ``SetOutcome``;
only the process that runs ``reduce all`` records it (``record``).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
import socket
import threading
import time

from soxs_lib.runtime import signals
from soxs_lib.config.errors import SoxsError
from soxs_lib.io.publish import sweep_workspace
from soxs_lib.config.params import thread_count
from soxs_lib.runtime.pool import each_done, run_isolated
from soxs_lib.night.outcome import SetOutcome

_ONE_AT_A_TIME = threading.Lock()    # one run per process: run_mdark's log is per process


def reduce_one(sof: str, workspace: str, settings_path: str | None, nthreads: int) -> SetOutcome:
    """Reduce one SOF into the workspace (in a worker); never raises for a
    bad set: its outcome says what failed.

    Parameters
    ----------
    sof : str
        The SOF.
    workspace : str
        The workspace (products go to ``products/soxs_mdark``).
    settings_path : str or None
        Settings file for the set.
    nthreads : int
        Threads for the stacking.

    Returns
    -------
    SetOutcome
    """
    from soxs_lib.pipeline.children import RunChildren
    from soxs_lib.pipeline.plotter import PlotProcess
    from soxs_lib.pipeline.run import run_mdark
    t0 = time.perf_counter()
    argv = ["mdark", str(sof), "-o", str(workspace)]
    if settings_path:
        argv += ["-s", str(settings_path)]
    # fork only from a thread that owns the process (not a Dask worker's)
    fork = threading.current_thread() is threading.main_thread()
    with _ONE_AT_A_TIME:
        try:
            res = run_mdark([str(sof)], workspace, settings_path, {"nthreads": nthreads},
                            overwrite=True, argv=argv, children=RunChildren(PlotProcess(fork)),
                            name=Path(sof).stem)
            # as the product states it: what a rebuilt database reads back
            out = SetOutcome.from_product(sof, res.products[res.md.product_tag])
        except SoxsError as exc:
            out = SetOutcome.failed(sof, exc, exc.exit_status)
        except Exception as exc:      # noqa: BLE001 - one broken set never stops the night
            out = SetOutcome.failed(sof, f"{type(exc).__name__}: {exc}")
    out.worker = f"{socket.gethostname()}:{os.getpid()}"
    out.seconds = time.perf_counter() - t0
    return out


def _warm() -> None:
    """A worker's start: the stacking modules imported, once."""
    importlib.import_module("soxs_lib.core.stack")


def run_local(sofs: list[str], ws: Path, settings_path, nworkers: int, record,
              keep_workers: bool = False) -> None:
    """The sets on ``nworkers`` worker processes of this machine
    (``runtime.pool.run_isolated``: a set that kills its worker fails alone).  On
    an interruption the workers end at once and what they were writing is
    removed.

    Parameters
    ----------
    sofs : list of str
        The SOFs.
    ws : Path
        The workspace.
    settings_path : str or None
        Settings file for every set.
    nworkers : int
        Worker processes (at most one per set).
    record : callable
        Called with each ``SetOutcome``, in this process.
    keep_workers : bool
        Leave the workers running for the next call (``soxs watch``).
    """
    from soxs_lib.pipeline import plot, run  # noqa: F401 - imported here once, inherited by each worker
    from soxs_lib.core import stack  # noqa: F401 - imported here once, inherited by each worker
    plot.import_renderer()                # and the QC plot's renderer
    n = min(nworkers, len(sofs))
    nthreads = max(1, thread_count(0) // n)           # workers x threads <= cores
    tasks = [(sof, str(ws), settings_path, nthreads) for sof in sofs]
    results = run_isolated(reduce_one, tasks, n, _warm, (), keep_workers)
    try:
        _record_each(results, record)
    except BaseException:
        results.close()                               # the workers end now
        sweep_workspace(ws)                           # what they were writing
        raise


def _record_each(results, record) -> None:
    for args, ok, value in results:
        record(value if ok else SetOutcome.failed(args[0], value))
        signals.check()               # one Python dropped while the result came


def run_dask(sofs: list[str], ws: Path, settings_path, scheduler: str, record) -> None:
    """The sets as tasks of an existing Dask cluster (its workers must see
    the same file system); a worker reduces one set at a time, without
    forking.

    Raises
    ------
    SoxsError
        Dask is not installed.
    """
    try:
        from distributed import Client
    except ImportError:
        raise SoxsError("--scheduler needs Dask: pip install 'soxs-mdark[dask]'") from None
    with Client(scheduler) as client:
        nthreads = max(1, min(client.nthreads().values(), default=1))
        executor = client.get_executor(pure=False)
        tasks = [(sof, str(ws), settings_path, nthreads) for sof in sofs]
        try:
            _record_each(each_done(executor, reduce_one, tasks), record)
        finally:
            executor.shutdown(wait=False)     # the sets not reduced: cancelled

