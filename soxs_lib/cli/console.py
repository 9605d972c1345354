"""The ``soxs`` console command (the entry point ``setup.cfg`` declares).

It takes SIGINT and SIGTERM over (``signals.taken``) before importing
anything heavy, so a signal while the command line's modules load is an
interruption (exit status 130), not a traceback; it gives them back when
the run is over.
"""

import ctypes
import logging
import os
import signal
import sys

from soxs_lib.runtime import signals

EXIT_INTERRUPTED = 130
# the reader of standard output went away (| head): the status of the tools
# beside it, which SIGPIPE ends
EXIT_CLOSED_PIPE = 128 + signal.SIGPIPE
# glibc's mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def report_interrupted(command: str, what: str) -> int:
    """Say that the run of ``command`` was interrupted by ``what``; the exit
    status to return."""
    print(f"soxs {command}: interrupted ({what}); products are whole or absent, "
          "never partial", file=sys.stderr)
    return EXIT_INTERRUPTED


def keep_freed_memory() -> None:
    """Have glibc's malloc keep memory that is freed for the next allocation
    instead of giving it back to the system: a single run allocates and frees
    arrays of a frame's or the master's size again and again, and each page
    taken anew from the system costs a fault (the children forked from this
    process inherit it).  Not for ``reduce all`` and ``watch``: there each
    worker runs the kernel's threads, and the memory kept for each thread
    raised both the peak and the faults (see the benchmark).  Elsewhere than
    glibc, nothing changes."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)   # glibc's largest: a master is 16 MB
        libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    except (OSError, AttributeError):       # no C library to load, or not glibc
        pass


def entry() -> None:
    """Run ``cli.main`` with the signals taken, then exit without the
    interpreter's teardown, which would only collect astropy's modules
    (everything is written, closed and flushed by then); never
    returns."""
    # the subcommand: the first argument that is not one of soxs's flags (-V, -x)
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), "")
    # no soxs command does linear algebra; numpy's OpenBLAS would start a
    # thread per core as numpy loads, and that thread spins on the core the
    # stacking child measures frame pairs on (a user's own setting wins)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if command == "mdark":
        keep_freed_memory()
    for sig in signals.STOP_SIGNALS:    # what taken() gives back: once the run is
        signal.signal(sig, signal.SIG_IGN)  # over, only flushing is left
    try:
        with signals.taken():
            from soxs_lib.cli.main import main
            status = main()
    except signals.Interrupted as exc:  # while the command line loaded
        status = report_interrupted(command, str(exc))
    except BrokenPipeError:             # whatever was done is whole; nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = EXIT_CLOSED_PIPE
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):   # a reader that went away
            if stream is sys.stdout and status == 0:
                status = EXIT_CLOSED_PIPE
    os._exit(status)
