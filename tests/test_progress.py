"""Progress on long work (``cli/progress.py``): drawn on a terminal only,
never in a pipe, with ``--json`` or in the logs; and every option of every
sub-command says what it does and its default."""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time

import pytest

from soxs_lib.cli import main as cli
from soxs_lib.cli.parser import build_parser
from test_night import MINI, SOXS, make_mini


def on_a_terminal(args, seconds: float = 300.0, stop_after: float | None = None) -> tuple[int, str]:
    """Run ``soxs args`` with standard output and error on a pseudo-terminal;
    (exit status, everything it drew).  ``stop_after``: SIGINT after that long."""
    leader, follower = pty.openpty()
    # a terminal 160 columns wide (a new pseudo-terminal has none: nothing fits)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen([str(SOXS), *map(str, args)], stdin=subprocess.DEVNULL,
                            stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    out, t0, stopped = b"", time.monotonic(), False
    while True:
        if stop_after is not None and not stopped and time.monotonic() - t0 > stop_after:
            proc.send_signal(signal.SIGINT)
            stopped = True
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:               # the terminal closed: the process is gone
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
        assert time.monotonic() - t0 < seconds, out.decode(errors="replace")
    os.close(leader)
    return proc.wait(timeout=60), out.decode(errors="replace")


@pytest.fixture
def ws(tmp_path):
    return make_mini(tmp_path / "ws")


def test_reduce_all_and_prep_show_progress_on_a_terminal(ws):
    status, out = on_a_terminal(["prep", ws])
    assert status == 0 and "prep:" in out and "file" in out
    status, out = on_a_terminal(["reduce", "all", ws, "-j", "2"])
    assert status == 0
    assert "reduce all: 0/3 sets, 0 failed, 0 QC failed" in out
    assert f"reduce all: {len(MINI)}/{len(MINI)} sets, 0 failed" in out and "left]" in out
    assert out.count("PASS") >= len(MINI)                  # the final table still follows


def test_no_progress_in_a_pipe_with_json_or_in_the_logs(ws):
    res = subprocess.run([str(SOXS), "prep", str(ws)], capture_output=True, text=True)
    assert res.returncode == 0 and "prep:" not in res.stderr
    res = subprocess.run([str(SOXS), "reduce", "all", str(ws), "-j", "2"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and res.stderr == ""
    assert "reduce all:" not in res.stdout
    status, out = on_a_terminal(["reduce", "all", ws, "-x", "--json"])
    assert status == 0 and "reduce all:" not in out and out.lstrip().startswith("{")
    for log in (ws / "products" / "soxs_mdark").glob("*_log.txt"):
        assert "sets [" not in log.read_text() and "it/s" not in log.read_text()


def test_watch_shows_its_passes_on_a_terminal(ws):
    assert cli.main(["prep", str(ws)]) == 0
    status, out = on_a_terminal(["watch", ws, "--interval", "0.2", "-j", "1"], stop_after=8.0)
    assert status == 0 and "stopped" in out
    assert "watch:" in out and "pass(es), the last ended" in out


def _options(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from ((f"{name} {a}", h, o) for a, h, o in _options(sub))
        elif action.help != argparse.SUPPRESS and not isinstance(
                action, (argparse._HelpAction, argparse._VersionAction)):
            yield "/".join(action.option_strings) or action.dest, action.help, \
                bool(action.option_strings)


def test_every_option_says_what_it_does_and_its_default():
    seen = list(_options(build_parser(cli.HANDLERS)))
    assert len(seen) > 30
    for name, text, optional in seen:
        assert text and len(text) > 10, name
        if optional:
            assert "default" in text, name
