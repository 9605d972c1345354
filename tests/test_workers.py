"""Work in a forked process: results and errors come back whole, messages
arrive in order, and a cancelled child leaves no zombie."""

import os
from pathlib import Path
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from soxs_lib import frames, params, qc
from soxs_lib.errors import InputError
from soxs_lib.mdark import make_master_dark
from soxs_lib.workers import Child, InThread, thread_count

ROOT = Path(__file__).resolve().parents[1]


def _fails(path):
    raise InputError(f"{path}: truncated")


def _sleeps():
    time.sleep(60)


def test_value_and_exception_come_back():
    assert Child(np.add, np.arange(3), 2).result().tolist() == [2, 3, 4]
    with pytest.raises(InputError, match="x.fits: truncated"):
        Child(_fails, "x.fits").result()


def test_cancel_ends_the_child():
    call = Child(_sleeps)
    pid = call.pid
    call.cancel()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)             # reaped: no zombie left


def test_frames_measured_in_a_forked_process_give_the_same_master(vis):
    _, sof = vis
    out = []
    for elsewhere in (InThread, Child):
        with frames.load_frameset(frames.collect_inputs([str(sof)])) as fs:
            out.append(make_master_dark(fs, params.resolve(), qc.default_ranges(fs.arm),
                                        elsewhere=elsewhere))
    threaded, forked = out
    assert forked.frames == threaded.frames
    for name in ("flux", "err", "qual", "nused"):
        np.testing.assert_array_equal(getattr(forked, name), getattr(threaded, name))
    assert [r.value for r in forked.qc] == [r.value for r in threaded.qc]


def _echo(inbox):
    got = []
    try:
        while True:
            got.append(inbox.receive())
    except EOFError:
        return got


def test_messages_reach_the_child_in_order():
    child = Child(_echo, inbox=True, pipe_bytes=1 << 16)
    big = np.arange(300_000, dtype=np.float32)        # larger than the pipe
    assert child.send("a") and child.send(big) and child.send(3)
    got = child.result()                              # closes the inbox
    assert got[0] == "a" and got[2] == 3
    np.testing.assert_array_equal(got[1], big)


def test_thread_count_policy(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert thread_count(0) == 3 and thread_count(5) == 5
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert thread_count(0) == (os.cpu_count() or 1)


def _python(code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter: it installs signal handlers and
    fork hooks that must not stay in the test process."""
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    return res


# for the snippets below: a SIGTERM handler that raises Stop, a SIGTERM to this
# process at every fork, and whether a child still runs (the process table,
# not multiprocessing's bookkeeping)
_SIGTERM_AT_EVERY_FORK = """
        import os, signal, time
        class Stop(BaseException):
            pass
        def stop(signum, frame):
            raise Stop
        signal.signal(signal.SIGTERM, stop)
        os.register_at_fork(after_in_parent=lambda: os.kill(os.getpid(), signal.SIGTERM))
        def a_child_runs():
            try:
                while os.waitpid(-1, os.WNOHANG)[0]:
                    pass                        # one that ended: go on
                return True
            except ChildProcessError:
                return False
"""


def test_a_signal_during_a_fork_is_handled_not_dropped():
    # Python runs a handler inside os.fork's callbacks, where its exception is
    # printed and dropped: a bare fork loses the signal, Child does not, and
    # the child it forked does not outlive the interruption
    out = _python(_SIGTERM_AT_EVERY_FORK + """
        from soxs_lib.workers import Child
        try:
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
            print("bare fork: lost")
        except Stop:
            print("bare fork: handled")
        try:
            print("Child: lost", Child(time.sleep, 30).result())
        except Stop:
            print("Child: handled")
        print("a child runs:", a_child_runs())
    """).stdout.splitlines()
    assert out == ["bare fork: lost", "Child: handled", "a child runs: False"]


def test_a_signal_during_a_hold_waits_for_its_end_whichever_thread_takes_it():
    # another thread that does not block the signal (an OpenMP team) takes
    # it; Python would still run the handler in the main thread, in the hold
    out = _python("""
        import os, signal, threading
        from soxs_lib.workers import signals_held
        threading.Thread(target=threading.Event().wait, daemon=True).start()
        class Stop(BaseException):
            pass
        def stop(signum, frame):
            raise Stop
        signal.signal(signal.SIGTERM, stop)
        step = "before"
        try:
            with signals_held():
                os.kill(os.getpid(), signal.SIGTERM)
                for step in range(10 ** 6):
                    pass
                step = "end of the hold"
            step = "after the hold"
        except Stop:
            print("stopped at", step)
        print(signal.getsignal(signal.SIGTERM) is stop)
    """).stdout.splitlines()
    assert out == ["stopped at end of the hold", "True"]


def test_a_signal_while_the_workers_start_ends_them():
    # the signal held back while the pool forks is raised when the hold ends;
    # workers left waiting for tasks would outlive their parent (and keep its
    # standard output open, so a caller reading it waits for ever)
    out = _python(_SIGTERM_AT_EVERY_FORK + """
        from soxs_lib.workers import map_in_workers
        def task(k):
            time.sleep(30)
        import __main__
        __main__.task = task
        try:
            print(list(map_in_workers(task, [(k,) for k in range(4)], 2)))
        except Stop:
            print("stopped")
        print("a worker runs:", a_child_runs())
    """).stdout.splitlines()
    assert out == ["stopped", "a worker runs: False"]


def test_a_task_that_ends_its_worker_fails_alone_and_the_others_finish():
    out = _python("""
        import os, signal, time
        from soxs_lib.workers import WorkerDied, map_in_workers
        def task(k):
            if k == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            if k == 5:
                raise ValueError("five")
            if k == 6:         # SIGTERM's exception dropped: the worker still ends
                try:
                    os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(5)
                except SystemExit:
                    pass
            return k * 10
        import __main__
        __main__.task = task
        got = {a[0]: (ok, v) for a, ok, v in map_in_workers(task, [(k,) for k in range(8)], 2)}
        for k in sorted(got):
            ok, v = got[k]
            print(k, ok, v if ok else type(v).__name__)
    """).stdout.splitlines()
    assert out == ["0 True 0", "1 True 10", "2 True 20", "3 False WorkerDied",
                   "4 True 40", "5 False ValueError", "6 False WorkerDied", "7 True 70"]


def test_a_sigterm_outside_a_task_ends_the_worker_at_once():
    # an exception raised in the pool's own code (here while the worker
    # pickles a result) may leave a lock the workers share taken, or come
    # back to this process as the task's SystemExit
    out = _python("""
        import os, signal
        from soxs_lib.workers import map_in_workers
        class Result:
            def __reduce__(self):
                os.kill(os.getpid(), signal.SIGTERM)
                return (int, (1,))
        def task(k):
            return Result() if k == 2 else k
        import __main__
        __main__.task = task
        got = sorted((a[0], ok, v if ok else type(v).__name__)
                     for a, ok, v in map_in_workers(task, [(k,) for k in range(4)], 2))
        print(got)
    """).stdout.strip()
    assert out == "[(0, True, 0), (1, True, 1), (2, False, 'WorkerDied'), (3, True, 3)]"


def test_a_worker_serves_many_tasks_and_its_initializer_threads_never_take_sigterm():
    out = _python("""
        import os, signal, threading
        from soxs_lib.workers import map_in_workers
        masks = {}
        def init(tag):
            t = threading.Thread(target=lambda: masks.update(
                thread=signal.pthread_sigmask(signal.SIG_BLOCK, [])), daemon=True)
            t.start()
            t.join()
            masks["tag"] = tag
        def task(k):
            main = signal.pthread_sigmask(signal.SIG_BLOCK, [])
            return (os.getpid(), masks["tag"], {signal.SIGINT, signal.SIGTERM} <= masks["thread"],
                    bool({signal.SIGINT, signal.SIGTERM} & main))
        import __main__
        __main__.task, __main__.init = task, init
        got = [v for _, ok, v in map_in_workers(task, [(k,) for k in range(6)], 1, init, ("x",))]
        print(len({g[0] for g in got}), {g[1:] for g in got})
    """).stdout.strip()
    assert out == "1 {('x', True, False)}"


def test_a_second_sigterm_does_not_cut_the_workers_clean_up_short(tmp_path):
    # the pool SIGTERMs every other worker when one dies, also one already
    # unwinding from the parent's SIGTERM
    marker = tmp_path / "cleaned"
    out = _python(f"""
        import os, signal, time
        from soxs_lib.workers import map_in_workers
        def task():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
            finally:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.2)
                open({str(marker)!r}, "w").close()
        import __main__
        __main__.task = task
        print([type(v).__name__ for _, ok, v in map_in_workers(task, [()], 1)])
    """).stdout.strip()
    assert out == "['WorkerDied']" and marker.exists()
