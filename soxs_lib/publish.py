"""Products appear whole or not at all.

Every file of a product set is written under a hidden temporary name in its
final folder, then all are moved into place at once, with SIGINT/SIGTERM held
back, under a lock on the set so that two runs on one workspace cannot mix
their files.  Without overwrite an existing file is never replaced (the link
that publishes it fails instead); a failed or interrupted run removes its
temporary files."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path
import signal
import uuid

from .errors import OutputError


def ensure_dir(path: Path) -> Path:
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{path}: cannot create the output folder: a file of that "
                          "name exists") from None
    except OSError as exc:
        raise OutputError(f"{path}: cannot create the output folder ({exc.strerror})") \
            from None
    if not path.is_dir():
        raise OutputError(f"{path}: is not a folder")
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: no write permission")
    return path


def describe_oserror(path, exc: OSError) -> str:
    reason = {errno.ENOSPC: "disk full", errno.EFBIG: "file too large (size limit)",
              errno.EDQUOT: "disk quota exceeded", errno.EACCES: "permission denied",
              errno.EROFS: "read-only file system"}.get(exc.errno, exc.strerror or str(exc))
    return f"{path}: cannot write ({reason})"


class ProductSet:
    def __init__(self, overwrite: bool, lock_dir: Path):
        self.overwrite = overwrite
        self.lock_dir = Path(lock_dir)
        self.staged: list[tuple[Path, Path]] = []
        self.token = f"{os.getpid()}.{uuid.uuid4().hex[:8]}"

    def refuse_existing(self, finals) -> None:
        if self.overwrite:
            return
        existing = [str(f) for f in finals if Path(f).exists()]
        if existing:
            raise OutputError(f"{', '.join(existing)}: product exists; not overwritten "
                              "(use -x to overwrite)")

    def stage(self, final: Path) -> Path:
        final = Path(final)
        tmp = final.with_name(f".{final.name}.{self.token}.tmp")
        self.staged.append((tmp, final))
        return tmp

    def write(self, final: Path, writer) -> None:
        """Call writer(tmp_path) and flush it to disk; errors name the file."""
        tmp = self.stage(final)
        self.complete(final, lambda: writer(tmp))

    def complete(self, final: Path, finish) -> None:
        """Call finish() (which writes the staged file of ``final``) and flush
        that file to disk; errors name the file."""
        tmp = next(t for t, f in self.staged if f == Path(final))
        try:
            finish()
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise OutputError(describe_oserror(final, exc)) from None

    def commit(self) -> list[Path]:
        blocked = {signal.SIGINT, signal.SIGTERM}
        old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        try:
            lock = os.open(self.lock_dir, os.O_RDONLY)   # a folder lock leaves no file
            try:
                fcntl.flock(lock, fcntl.LOCK_EX)
                self.refuse_existing(f for _, f in self.staged)
                done = []
                try:
                    for tmp, final in self.staged:
                        if self.overwrite:
                            os.replace(tmp, final)
                        else:
                            os.link(tmp, final)
                            os.unlink(tmp)
                        done.append(final)
                except OSError as exc:
                    for f in done:            # all or nothing
                        with contextlib.suppress(OSError):
                            if not self.overwrite:
                                os.unlink(f)
                    raise OutputError(describe_oserror(final, exc)) from None
            finally:
                os.close(lock)
            self.staged = [(t, f) for t, f in self.staged if t.exists()]
            return done
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def abort(self) -> None:
        for tmp, _ in self.staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self.staged = []
