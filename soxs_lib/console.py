"""The ``soxs`` console command (the entry point ``setup.cfg`` declares).

It takes SIGINT and SIGTERM over before importing anything heavy: a signal
that arrives while the command line's modules load is noted, then reported
as an interruption (exit status 130) rather than as a traceback.
"""

import signal

from .workers import STOP_SIGNALS


def entry() -> None:
    """Note SIGINT/SIGTERM, import the command line, run it; never returns."""
    early: list[int] = []
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, _frame: early.append(signum))
    from .cli import entry as run
    run(early)
