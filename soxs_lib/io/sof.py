"""Sets of frames (SOFs): ``path TAG [GROUP]`` lines and ``#`` comments, as
esorex, PyEsoRex and soxspipe write them, read in one place."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from soxs_lib.config import keywords as kw
from soxs_lib.config.errors import DataNotFound, InputError

SOF_FOLDER, CURRENT_FOLDER = "the SOF's folder", "the current folder"

log = logging.getLogger("soxs")


def locate(word: str, sof: Path, where: str) -> tuple[Path, str]:
    """The file a SOF line names, and which reading found it.

    A relative path is taken relative to the SOF's folder (as PyCPL's
    FrameSet), and when no file is there, relative to the current folder (as
    esorex and soxspipe, whose workspaces write ``./raw/...`` from the root).

    Parameters
    ----------
    word : str
        The path as written in the SOF.
    sof : Path
        The SOF file.
    where : str
        ``"<sof>, line N"`` for messages.

    Returns
    -------
    path : Path
        The file (relative to the current folder or absolute).
    reading : str
        ``"absolute"``, ``SOF_FOLDER`` or ``CURRENT_FOLDER``.

    Raises
    ------
    InputError
        Both readings name existing files that are not the same file.
    DataNotFound
        Neither reading names an existing file; the message gives both.
    """
    path = Path(os.path.expandvars(word))
    if path.is_absolute():
        return path, "absolute"
    by_sof, by_cwd = sof.parent / path, path
    in_sof, in_cwd = by_sof.exists(), by_cwd.exists()
    if in_sof and in_cwd and not os.path.samefile(by_sof, by_cwd):
        raise InputError(f"{where}: {word} is ambiguous: it names {by_sof.resolve()} "
                         f"relative to {SOF_FOLDER} and {by_cwd.resolve()} relative to "
                         f"{CURRENT_FOLDER}; write an absolute path")
    if in_sof:
        return by_sof, SOF_FOLDER
    if in_cwd:
        return by_cwd, CURRENT_FOLDER
    raise DataNotFound(f"{where}: {word}: file not found (neither {by_sof.resolve()}, "
                       f"relative to {SOF_FOLDER}, nor {by_cwd.resolve()}, relative to "
                       f"{CURRENT_FOLDER})")


def split_sof_line(line: str) -> tuple[str, str] | None:
    """(file, TAG) of a SOF line without its comment (``path TAG [RAW|CALIB]``),
    or None if it is not one.  A path with spaces (which ESO's SOFs cannot
    hold) is taken whole when one of soxs_mdark's tags ends the line, so the
    SOFs ``soxs prep`` writes for such folders read back."""
    words = line.split()
    if len(words) >= 2 and words[-1].upper() in ("RAW", "CALIB"):
        words = words[:-1]
    if len(words) < 2:
        return None
    if len(words) == 2:
        return words[0], words[1]
    if words[-1] in kw.KNOWN_TAGS:
        return " ".join(words[:-1]), words[-1]
    return None


def _lines(text: str):
    """(line number, line, (file, TAG) or None) of each line that is not
    blank or a comment."""
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            yield lineno, line, split_sof_line(line)


def _text(sof: Path) -> str:
    try:
        return sof.read_text()
    except UnicodeDecodeError:
        raise InputError(f"{sof}: is not a text SOF file") from None
    except OSError as exc:
        raise InputError(f"{sof}: cannot be read ({exc.strerror})") from None


def parse_sof(sof: Path) -> list[tuple[Path, str | None]]:
    """Read a SOF: ``path TAG [GROUP]`` lines and ``#`` comments.

    Relative paths are resolved by ``locate``; the log says which reading
    found them.

    Parameters
    ----------
    sof : Path
        The SOF file.

    Returns
    -------
    list of (Path, str)
        Each frame and its tag, in SOF order.

    Raises
    ------
    InputError
        Unreadable SOF, a malformed line, an unknown tag, a frame listed twice
        or an ambiguous path.
    DataNotFound
        A listed file exists under neither reading, or the SOF lists nothing.
    """
    sof = Path(sof)
    entries, seen, readings = [], {}, {}
    for lineno, line, words in _lines(_text(sof)):
        if words is None:
            raise InputError(f"{sof}, line {lineno}: expected '<file> <TAG>', got {line!r}")
        name, tag = words
        if tag not in kw.KNOWN_TAGS:
            raise InputError(f"{sof}, line {lineno}: unknown tag {tag!r} for {name} "
                             f"(soxs_mdark takes {', '.join(kw.KNOWN_TAGS)})")
        path, reading = locate(name, sof, f"{sof}, line {lineno}")
        readings[reading] = readings.get(reading, 0) + 1
        key = path.resolve()
        if key in seen:
            raise InputError(f"{sof}, line {lineno}: {name} is listed twice "
                             f"(first on line {seen[key]})")
        seen[key] = lineno
        entries.append((path, tag))
    if not entries:
        raise DataNotFound(f"{sof}: the SOF lists no frames")
    for reading, where in ((SOF_FOLDER, sof.parent.resolve()),
                           (CURRENT_FOLDER, Path.cwd())):
        if readings.get(reading):
            log.info("%s: %d relative path(s) read relative to %s (%s)", sof,
                     readings[reading], reading, where)
    return entries


def sof_files(sof: Path) -> list[Path]:
    """The files a SOF names, found as ``parse_sof`` finds them, without its
    checks: a line naming no file (or an ambiguous one) is left out, for the
    reduction to report.

    Parameters
    ----------
    sof : Path
        The SOF file.

    Returns
    -------
    list of Path

    Raises
    ------
    OSError
        The SOF cannot be read.
    """
    out = []
    for lineno, _, words in _lines(sof.read_text()):
        if words:
            try:
                out.append(locate(words[0], sof, f"{sof}, line {lineno}")[0])
            except InputError:
                continue
    return out
