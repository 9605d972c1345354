"""Work in other processes: a forked child's results and errors come back
whole, messages arrive in order, a cancelled child leaves no zombie; a pool
task that kills its worker fails alone; SIGINT/SIGTERM are one exception,
raised again where Python dropped it, deferred while publishing."""

import os
from pathlib import Path
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from soxs_lib.config.errors import InputError
from soxs_lib.runtime.child import Child
from soxs_lib.config.params import thread_count

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


# the snippets below run with the signals taken as the soxs command takes them,
# and tell whether a child of theirs still runs (the process table itself)
_TAKEN = """
        import os, signal, sys, time
        from soxs_lib.runtime import signals
        from soxs_lib.runtime.signals import Interrupted
        def a_child_runs():
            try:
                while os.waitpid(-1, os.WNOHANG)[0]:
                    pass                        # one that ended: go on
                return True
            except ChildProcessError:
                return False
"""


def test_taken_raises_one_interrupted_and_gives_the_handlers_back():
    out = _python(_TAKEN + """
        before = signal.getsignal(signal.SIGTERM)
        with signals.taken():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
                print("not interrupted")
            except Interrupted as exc:
                print("interrupted", exc)
                try:
                    os.kill(os.getpid(), signal.SIGINT)   # while unwinding: noted only
                    time.sleep(0.1)
                    print("clean-up finished")
                except Interrupted:
                    print("clean-up cut short")
            print(signals.interrupted())
        print(signal.getsignal(signal.SIGTERM) is before, sys.unraisablehook is sys.__unraisablehook__)
    """).stdout.splitlines()
    assert out == ["interrupted SIGTERM", "clean-up finished", "SIGTERM", "True True"]


def test_an_interruption_python_drops_is_raised_at_the_next_check_and_not_printed():
    # a handler that runs inside a weakref callback (imports use them) raises
    # where Python prints the exception and drops it
    res = _python(_TAKEN + """
        import weakref
        class Frame:
            pass
        with signals.taken():
            frame = Frame()
            ref = weakref.ref(frame, lambda _: signal.raise_signal(signal.SIGINT))
            try:
                del frame
                print("dropped")
                signals.check()
                print("lost")
            except Interrupted as exc:
                print("raised again", exc)
    """)
    assert res.stdout.splitlines() == ["dropped", "raised again SIGINT"] and res.stderr == ""


def test_a_signal_in_a_deferred_block_is_raised_once_the_block_is_whole():
    out = _python(_TAKEN + """
        with signals.taken():
            step = "before"
            try:
                with signals.deferred():
                    os.kill(os.getpid(), signal.SIGTERM)
                    for step in range(10 ** 6):
                        pass
                    step = "end of the block"
                step = "after the block"
            except Interrupted:
                print("stopped at", step)
    """).stdout.splitlines()
    assert out == ["stopped at end of the block"]


def test_a_signal_during_a_fork_is_raised_and_the_child_ends():
    # Python runs a handler inside os.fork's callbacks, where its exception is
    # printed and dropped: a bare fork loses it, Child raises it again and
    # ends the child it forked
    res = _python(_TAKEN + """
        from soxs_lib.runtime.child import Child
        with signals.taken():
            os.register_at_fork(after_in_parent=lambda: os.kill(os.getpid(), signal.SIGTERM))
            try:
                Child(time.sleep, 30).result()
                print("Child: lost")
            except Interrupted:
                print("Child: raised")
            print("a child runs:", a_child_runs())
    """)
    assert res.stdout.splitlines() == ["Child: raised", "a child runs: False"]
    assert res.stderr == ""


_TASKS = """
        import os, signal, time
        from soxs_lib.runtime.pool import run_isolated
        def task(k, pids=None):
            if pids:
                with open(pids, "a") as fh:
                    fh.write(f"{os.getpid()}\\n")
            if k == 3:
                os.kill(os.getpid(), signal.SIGKILL)    # out of memory, say
            if k == 5:
                raise ValueError("five")
            if k == 6:
                time.sleep(30)
            return k * 10
        import __main__
        __main__.task = task
"""


def test_a_task_that_kills_its_worker_fails_alone_and_the_others_finish():
    out = _python(_TASKS + """
        got = {a[0]: (ok, v) for a, ok, v in run_isolated(task, [(k,) for k in (0, 1, 2, 3, 4, 5, 7)], 2)}
        for k in sorted(got):
            ok, v = got[k]
            print(k, ok, v if ok else type(v).__name__)
    """).stdout.splitlines()
    assert out == ["0 True 0", "1 True 10", "2 True 20", "3 False WorkerDied",
                   "4 True 40", "5 False ValueError", "7 True 70"]


def test_closing_the_results_early_ends_every_worker_at_once(tmp_path):
    pids = tmp_path / "pids"
    out = _python(_TASKS + f"""
        from contextlib import closing
        t0 = time.monotonic()
        with closing(run_isolated(task, [(6, {str(pids)!r}), (0, {str(pids)!r})], 2)) as results:
            for args, ok, value in results:
                break                               # an Interrupted in the caller, say
        print(time.monotonic() - t0 < 10)
    """).stdout.split()
    assert out == ["True"]
    workers = {int(p) for p in pids.read_text().split()}
    assert len(workers) == 2                        # the sleeping task had started
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_workers_ignore_ctrl_c_and_die_with_their_parent(tmp_path):
    pids = tmp_path / "pids"
    script = _TASKS + f"""
        from soxs_lib.runtime import signals
        with signals.taken():
            for a, ok, v in run_isolated(task, [(6, {str(pids)!r})], 1):
                print(a, ok, v)
    """
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while not (pids.exists() and pids.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    worker = int(pids.read_text().split()[0])
    os.killpg(proc.pid, signal.SIGINT)              # Ctrl-C: the whole process group
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "Interrupted: SIGINT" in err   # the parent's own
    for _ in range(100):                            # the worker went with its parent
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the worker outlived its parent")
    assert "KeyboardInterrupt" not in err
