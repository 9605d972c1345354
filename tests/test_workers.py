"""Work in a forked process: results and errors come back whole, messages
arrive in order, and a cancelled child leaves no zombie."""

import os
import time

import numpy as np
import pytest

from soxs_lib import frames, params, qc
from soxs_lib.errors import InputError
from soxs_lib.mdark import make_master_dark
from soxs_lib.workers import Child, InThread, thread_count


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
