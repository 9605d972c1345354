"""SIGINT and SIGTERM as one exception, ``Interrupted``, in the main thread.

The ``soxs`` command takes the two signals over for its run (``taken``) and
gives the previous handlers back when it returns.  The first signal raises
``Interrupted`` wherever the main thread is; the run unwinds through its
``finally`` blocks, which remove whatever is not whole.  A later signal is
only noted: it never cuts that clean-up short.

Python runs a handler between any two bytecodes, also inside callbacks whose
exceptions it prints and drops (``os.fork``'s, a weakref's).  Such a lost
``Interrupted`` is not lost for long: ``check`` raises it again, and the
run calls it at its checkpoints (after a fork, before publishing, between
sets).  Publishing a product set is ``deferred``: a signal meanwhile is
raised once the set is in place.
"""

from __future__ import annotations

from contextlib import contextmanager
import os
import signal
import sys

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; the argument is the signal's name."""


_noted: list[str] = []      # the signals of this run, in order
_deferring = 0              # open ``deferred`` blocks
_raised = False             # Interrupted was raised once (maybe into a callback that dropped it)


def _handler(signum, _frame) -> None:
    global _raised
    _noted.append(signal.Signals(signum).name)
    if _deferring or _raised:
        return
    _raised = True
    raise Interrupted(_noted[0])


def _forget() -> None:
    """In a forked child: its parent's signals are not its own."""
    global _deferring, _raised
    _noted.clear()
    _deferring, _raised = 0, False


os.register_at_fork(after_in_child=_forget)


def interrupted() -> str | None:
    """The name of the first signal of this run, if one arrived."""
    return _noted[0] if _noted else None


def check() -> None:
    """Raise ``Interrupted`` if a signal arrived (also one whose exception
    Python dropped, or one noted in a ``deferred`` block).

    Raises
    ------
    Interrupted
    """
    if _noted and not _deferring:
        raise Interrupted(_noted[0])


def _unraisable(unraisable) -> None:
    """``sys.unraisablehook`` while the signals are taken: an ``Interrupted``
    Python dropped is not printed (``check`` raises it again)."""
    if not isinstance(unraisable.exc_value, Interrupted):
        _hook_before(unraisable)


_hook_before = sys.unraisablehook


@contextmanager
def taken():
    """SIGINT and SIGTERM raise ``Interrupted`` in this process for the
    block (from the main thread only); the previous handlers come back at
    its end.  Nested blocks keep what the outer one noted."""
    global _raised, _hook_before
    if signal.getsignal(signal.SIGINT) is _handler:
        yield
        return
    previous = {sig: signal.signal(sig, _handler) for sig in STOP_SIGNALS}
    _hook_before, sys.unraisablehook = sys.unraisablehook, _unraisable
    _noted.clear()
    _raised = False
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.unraisablehook = _hook_before


@contextmanager
def deferred():
    """A block no signal interrupts: one that arrives meanwhile is raised at
    its end (for publishing, all files or none).

    Raises
    ------
    Interrupted
        At the end of the block, if a signal arrived.
    """
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    check()


@contextmanager
def blocked():
    """SIGINT and SIGTERM held pending by this thread for the block;
    threads started and processes forked meanwhile inherit that (a worker
    must not take a Ctrl-C before it can ignore it; a fork followed by exec,
    as ``subprocess`` does, starts with the signals unblocked).  At the end
    one that arrived is handled here."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
