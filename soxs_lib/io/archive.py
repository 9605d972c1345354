"""The forms archives deliver raw frames in: what a file is from its first
bytes, and a stream archive (gzip, bzip2, Unix compress) decompressed once,
in blocks of ``BLOCK_BYTES``, into an anonymous temporary file.  It has no
name in any folder, so nothing is left behind whatever ends the run (an
error, SIGTERM, SIGKILL), and memory holds one block, not the frame."""

from __future__ import annotations

import bz2
import gzip
import os
from pathlib import Path
import shutil
import tempfile
import zlib

from soxs_lib.config.errors import DataNotFound, InputError, Truncated

BLOCK_BYTES = 4 << 20     # the smallest chunk_mbytes: a block never exceeds the budget

# stream archives: leading bytes -> (name, opener of a decompressing stream or None)
_ARCHIVES = (
    (b"\x1f\x8b", "gzip", gzip.open),
    (b"BZh", "bzip2", bz2.open),
    (b"\x1f\x9d", "Unix compress (.Z)", None),
)
# cfitsio, which the PyEsoRex recipe's CPL reads raw headers with, cannot read these
_UNSUPPORTED = ((b"PK\x03\x04", "a zip archive"), (b"\xfd7zXZ\x00", "an xz archive"),
                (b"\x1f\xa0", "an LZH archive"))

FITS_SUFFIXES = (".fits", ".fit", ".fts")
ARCHIVE_SUFFIXES = (".gz", ".z", ".bz2", ".fz")

def looks_like_fits(name) -> bool:
    """Whether a file name is one of a FITS file or an archive of one
    (``x.fits``, ``x.fits.gz``, ``x.fits.Z``, ``x.fits.bz2``, ``x.fz``, ...)."""
    name = str(name).lower()
    if name.endswith(".fz"):
        return True
    for suffix in ARCHIVE_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.endswith(FITS_SUFFIXES)


def sniff(path: Path) -> tuple[str, object]:
    """('fits', None) or (archive name, opener); raises InputError otherwise."""
    if not path.exists():
        raise DataNotFound(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a FITS file")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(80)
    except PermissionError:
        raise InputError(f"{path}: cannot be read (permission denied)") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    for lead, name, opener in _ARCHIVES:
        if magic.startswith(lead):
            return name, opener
    for lead, what in _UNSUPPORTED:
        if magic.startswith(lead):
            raise InputError(f"{path}: is {what}; soxs_mdark reads FITS files, plain or "
                             "compressed with gzip, bzip2, Unix compress (.Z) or fpack "
                             "(decompress it first)")
    if not magic.startswith(b"SIMPLE  =") or len(magic) < 80:
        raise InputError(f"{path}: is not a FITS file (no SIMPLE card at its start)")
    return "fits", None


def damaged(path: Path, what: str, exc: BaseException) -> InputError:
    """The error for a damaged file: its name, what is damaged and why."""
    why = str(exc).strip() or type(exc).__name__
    return InputError(f"{path}: damaged {what} ({why})")


def decompress(path: Path, kind: str, opener):
    """The archive's content in an anonymous temporary file (read/write)."""
    out = tempfile.TemporaryFile()
    try:
        if opener is None:
            import ncompress
            with open(path, "rb") as src:
                ncompress.decompress(src, out)
        else:
            with opener(path, "rb") as src:
                shutil.copyfileobj(src, out, BLOCK_BYTES)
        out.flush()
        out.seek(0)
        if out.read(9) != b"SIMPLE  =":
            raise InputError(f"{path}: the {kind} archive does not hold a FITS file "
                             "(no SIMPLE card at its start)")
    except InputError:
        out.close()
        raise
    except EOFError as exc:      # the archive stops short: cut, or still arriving
        out.close()
        raise Truncated(f"{path}: damaged {kind} archive, truncated ({exc})") from None
    except (OSError, ValueError, zlib.error) as exc:
        out.close()
        raise damaged(path, f"{kind} archive", exc) from None
    except BaseException:
        out.close()
        raise
    return out


def reader(tmp) -> object:
    """A read-only handle on a temporary file, for astropy (which refuses a
    read/write one); closing it leaves the temporary file open."""
    return open(os.dup(tmp.fileno()), "rb")
