"""Work in a forked process: results and errors come back whole."""

import os
import time

import numpy as np
import pytest

from soxs_lib import frames, params, qc
from soxs_lib.errors import InputError
from soxs_lib.forked import ForkedCall
from soxs_lib.mdark import make_master_dark


def _fails(path):
    raise InputError(f"{path}: truncated")


def _sleeps():
    time.sleep(60)


def test_value_and_exception_come_back():
    assert ForkedCall(np.add, np.arange(3), 2).result().tolist() == [2, 3, 4]
    with pytest.raises(InputError, match="x.fits: truncated"):
        ForkedCall(_fails, "x.fits").result()


def test_cancel_ends_the_child():
    call = ForkedCall(_sleeps)
    pid = call.pid
    call.cancel()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)             # reaped: no zombie left


def test_frames_measured_in_a_forked_process_give_the_same_master(vis):
    _, sof = vis
    out = []
    for fork in (False, True):
        fs = frames.load_frameset(frames.collect_inputs([str(sof)]))
        out.append(make_master_dark(fs, params.resolve(), qc.default_ranges(fs.arm),
                                    fork=fork))
    threaded, forked = out
    assert forked.frames == threaded.frames
    for name in ("flux", "err", "qual", "nused"):
        np.testing.assert_array_equal(getattr(forked, name), getattr(threaded, name))
    assert [r.value for r in forked.qc] == [r.value for r in threaded.qc]
