"""Products appear whole or not at all.

Every file of a product set is written under a hidden temporary name in its
final folder, then all are moved into place at once, with SIGINT/SIGTERM
deferred (``signals.deferred``), under a lock on the set so that two runs on
one workspace cannot mix their files.  Without overwrite an existing file is never replaced (the link
that publishes it fails instead); a failed or interrupted run removes its
temporary files; one killed outright leaves them to ``sweep_stale``, which
the next run calls."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
from pathlib import Path
import re
import shutil
import socket
import uuid

from soxs_lib.config import keywords as kw
from soxs_lib.config.errors import OutputError
from soxs_lib.io import naming
from soxs_lib.runtime import signals

log = logging.getLogger("soxs")


def ensure_dir(path: Path) -> Path:
    """Create a folder (and its parents) to write products in.

    Raises
    ------
    OutputError
        It cannot be created or written, or a file has its name.
    """
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
    """A person's words for why ``path`` could not be written."""
    reason = {errno.ENOSPC: "disk full", errno.EFBIG: "file too large (size limit)",
              errno.EDQUOT: "disk quota exceeded", errno.EACCES: "permission denied",
              errno.EROFS: "read-only file system"}.get(exc.errno, exc.strerror or str(exc))
    return f"{path}: cannot write ({reason})"


class ProductSet:
    """The files of one product set, published all together or not at all.

    Parameters
    ----------
    overwrite : bool
        Replace existing files; without it an existing file is never
        replaced (OutputError instead).
    lock_dir : Path
        The folder whose lock serialises the publishing of two runs.
    """

    def __init__(self, overwrite: bool, lock_dir: Path):
        self.overwrite = overwrite
        self.lock_dir = Path(lock_dir)
        self.staged: list[tuple[Path, Path]] = []
        self.token = f"{_HOST}.{os.getpid()}.{uuid.uuid4().hex[:8]}"   # see STAGED

    def refuse_existing(self, finals) -> None:
        """Raise OutputError naming the files of ``finals`` that exist,
        unless overwriting."""
        if self.overwrite:
            return
        existing = [str(f) for f in finals if Path(f).exists()]
        if existing:
            raise OutputError(f"{', '.join(existing)}: product exists; not overwritten "
                              "(use -x to overwrite)")

    def stage(self, final: Path, same_name: bool = False) -> Path:
        """Where to write ``final`` before ``commit`` moves it into place.

        Parameters
        ----------
        final : Path
            The file to publish.
        same_name : bool
            Stage it under its own name in a private hidden folder beside it
            (for writers that record the file name inside the file, as
            ``cpl.dfs`` does in PIPEFILE), not under a hidden temporary name.

        Returns
        -------
        Path
            The staging path; the folder of a ``same_name`` one exists.
        """
        final = Path(final)
        if same_name:
            folder = final.with_name(f".{final.name}.{self.token}.d")
            try:
                folder.mkdir()
            except OSError as exc:
                raise OutputError(describe_oserror(folder, exc)) from None
            tmp = folder / final.name
        else:
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
        """Move every staged file into place, with SIGINT/SIGTERM deferred
        to the end and the folder locked; all or nothing.  Returns the files
        published.

        Raises
        ------
        OutputError
            A file exists (without overwrite) or cannot be moved; what was
            already moved is removed again.
        """
        signals.check()                # an interruption Python dropped earlier
        with signals.deferred():       # all or nothing, also when interrupted
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
                        if tmp.parent != final.parent:
                            os.rmdir(tmp.parent)
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

    def abort(self) -> None:
        """Remove every staged file (and private folder) not yet published."""
        for tmp, final in self.staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if tmp.parent != final.parent:
                with contextlib.suppress(OSError):
                    os.rmdir(tmp.parent)
        self.staged = []


# a staged file or folder: .<final name>.<host>.<pid>.<token>.tmp or .d; in
# those of earlier versions the pid follows the final name's extension
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0]) or "host"
STAGED = (re.compile(r"^\.(?P<final>.+\.(fits|png|txt|sof))(?P<host>)\.(?P<pid>[0-9]+)"
                     r"\.[0-9a-f]{8}\.(tmp|d)$"),
          re.compile(r"^\.(?P<final>.+)\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>[0-9]+)"
                     r"\.[0-9a-f]{8}\.(tmp|d)$"))


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs: it exists and is not a zombie (an exited
    process its parent has not reaped: a worker of a killed ``reduce all``
    waits so until init, which in a container may be slow, reaps it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:       # another user's process
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]   # after "pid (comm)"
    except (OSError, IndexError):
        return True               # no /proc: kill's answer stands
    return state != b"Z"


def sweep_stale(folder) -> list[Path]:
    """Remove the staged files and folders in ``folder`` that no live
    process of this host owns: what a writer killed outright (SIGKILL, the
    out-of-memory killer, a power cut) left behind.  Those of other hosts
    (a Dask worker writing to a shared file system) are left alone.

    Parameters
    ----------
    folder : str or Path
        A folder products are published in (need not exist).

    Returns
    -------
    list of Path
        What was removed.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        m = STAGED[0].match(entry.name) or STAGED[1].match(entry.name)
        if m is None or m["host"] not in ("", _HOST) or _alive(int(m["pid"])):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue              # another sweep was first
        except OSError as exc:
            log.warning("%s: a stale staged file, cannot be removed (%s)", path, exc.strerror)
            continue
        log.warning("removed %s, staged by process %s of this host, which is gone "
                    "(killed while it wrote)", path, m["pid"])
        removed.append(path)
    return removed


def sweep_workspace(root) -> list[Path]:
    """``sweep_stale`` on every folder soxs publishes in under the workspace
    ``root``: products, QC plots, SOFs."""
    root = Path(root)
    return [p for folder in (naming.products_dir(root), naming.plots_dir(root),
                             root / kw.WORKSPACE_SOF)
            for p in sweep_stale(folder)]


def write_atomic(path, text: str, overwrite: bool = True) -> None:
    """Write one text file (a SOF) whole or not at all, through ``ProductSet``.

    Raises
    ------
    OutputError
        It cannot be written, or exists and ``overwrite`` is False.
    """
    files = ProductSet(overwrite, Path(path).parent)
    try:
        files.write(path, lambda tmp: Path(tmp).write_text(text))
        files.commit()
    finally:
        files.abort()
