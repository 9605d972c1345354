"""Read-only access to raw FITS frames in every form archives deliver them.

A frame may be plain FITS; gzip (``.gz``), bzip2 (``.bz2``) or Unix compress
(``.Z``) archives of one; tile-compressed (a compressed-image extension:
``.fz``, Rice, GZIP_1/2, HCOMPRESS, PLIO); or a file whose primary HDU holds
only the header and whose one image extension holds the pixels.  The header
a recipe uses is the primary header merged with that extension's (see
``merge_headers``).

Plain images are read by rows with ``os.pread`` from a descriptor opened
read-only, so a frame is never modified and never read whole.  Every other
form is decompressed once, in blocks of ``BLOCK_BYTES``, into an anonymous
temporary file: it has no name in any folder, so nothing is left behind
whatever ends the run (an error, SIGTERM, SIGKILL), and memory holds one
block, not the frame.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import os
from pathlib import Path
import re
import shutil
import tempfile
import threading
import warnings
import zlib

import numpy as np
from astropy.io import fits

from soxs_lib.config.errors import DataNotFound, InputError, Truncated

_BITPIX = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
BLOCK_BYTES = 4 << 20     # the smallest chunk_mbytes: a block never exceeds the budget
# astropy's header parsing and tile decompression hold the GIL, and
# warnings.catch_warnings swaps process-wide filters (two threads inside it at
# once can restore each other's): frames opened on several threads take turns
# in astropy (stream archives still decompress in parallel)
_ASTROPY = threading.RLock()


@contextlib.contextmanager
def _quiet_astropy():
    """Hold ``_ASTROPY`` with astropy's warnings silenced: damage is reported
    by the errors raised here, naming the file."""
    with _ASTROPY, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield

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

# keywords of the HDU structure, not of the observation
_STRUCTURE = {"SIMPLE", "XTENSION", "EXTEND", "PCOUNT", "GCOUNT", "CHECKSUM", "DATASUM",
              "EXTNAME", "EXTVER", "EXTLEVEL", "INHERIT", "COMMENT", "HISTORY", ""}
# keywords that describe the pixels: the image's HDU has the say
_DATA_DESCRIPTION = re.compile(
    r"(BITPIX|NAXIS\d*|BSCALE|BZERO|BUNIT|BLANK|DATAMIN|DATAMAX|WCSAXES|WCSNAME"
    r"|CTYPE\d+|CRPIX\d+|CRVAL\d+|CDELT\d+|CUNIT\d+|CROTA\d+|CD\d+_\d+|PC\d+_\d+)$")


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


def merge_headers(primary: fits.Header, image: fits.Header) -> fits.Header:
    """The header of an image stored in an extension, as ESO tools see it.

    Parameters
    ----------
    primary : astropy.io.fits.Header
        The primary header (the ESO keywords of the observation).
    image : astropy.io.fits.Header
        The image extension's header (for a compressed image, its image
        header).

    Returns
    -------
    astropy.io.fits.Header
        The primary's keywords, then the extension's that the primary lacks;
        the extension's win for the data description (BITPIX, NAXISn, BSCALE,
        BZERO, BUNIT, WCS), the primary's for every other keyword in both (the
        ESO keywords among them).  Structural keywords are dropped.
    """
    out = fits.Header()
    for card in primary.cards:
        if card.keyword not in _STRUCTURE and not _DATA_DESCRIPTION.match(card.keyword):
            out.append(card)
    for card in image.cards:
        key = card.keyword
        if key in _STRUCTURE:
            continue
        if _DATA_DESCRIPTION.match(key):
            out[key] = (card.value, card.comment)
        elif key not in out:
            out.append(card)
    return out


def _sniff(path: Path) -> tuple[str, object]:
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


def _damaged(path: Path, what: str, exc: BaseException) -> InputError:
    why = str(exc).strip() or type(exc).__name__
    return InputError(f"{path}: damaged {what} ({why})")


def _decompress(path: Path, kind: str, opener):
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
        raise _damaged(path, f"{kind} archive", exc) from None
    except BaseException:
        out.close()
        raise
    return out


def _reader(tmp) -> object:
    """A read-only handle on a temporary file, for astropy (which refuses a
    read/write one); closing it leaves the temporary file open."""
    return open(os.dup(tmp.fileno()), "rb")


@contextlib.contextmanager
def open_fits(path, whole: bool = True, scaled: bool = False):
    """Open a FITS file in any supported form as an astropy HDUList.

    Parameters
    ----------
    path : str or Path
        The file.
    whole : bool
        Decompress a stream archive completely first (needed to read data);
        with False, a gzip or bzip2 archive is read as a stream, so
        reading the first headers costs only their blocks.
    scaled : bool
        Data in physical units (BSCALE/BZERO applied); by default as stored.

    Yields
    ------
    astropy.io.fits.HDUList
        Opened read-only, lazily.

    Raises
    ------
    DataNotFound
        The file does not exist.
    InputError
        It cannot be read, is not FITS or a supported archive of FITS, or is
        damaged; the message names the file.
    """
    path = Path(path)
    kind, opener = _sniff(path)
    with contextlib.ExitStack() as stack:
        if kind == "fits":
            source = path
        elif whole or opener is None:
            source = stack.enter_context(_reader(_decompress(path, kind, opener)))
        else:
            source = stack.enter_context(opener(path, "rb"))
        try:
            with _quiet_astropy():
                hdul = stack.enter_context(fits.open(
                    source, mode="readonly", memmap=False, lazy_load_hdus=True,
                    do_not_scale_image_data=not scaled))
                _ = hdul[0].header        # parse it now: a damaged header fails here
        except (OSError, EOFError, ValueError, TypeError, IndexError, zlib.error) as exc:
            raise InputError(f"{path}: corrupt or truncated FITS header ({exc})") from None
        yield hdul


def _hdus(hdul) -> list:
    """The HDUs that can be read; trailing garbage after them is ignored, as
    cfitsio does."""
    out = []
    with _quiet_astropy():
        try:
            for hdu in hdul:
                out.append(hdu)
        except Exception:   # noqa: BLE001 - whatever astropy makes of the garbage
            pass
    return out


def _is_image(hdu) -> bool:
    return (isinstance(hdu, (fits.ImageHDU, fits.CompImageHDU))
            and int(hdu.header.get("NAXIS", 0)) > 0)


def _name(hdu, index: int) -> str:
    return hdu.name if hdu.name and hdu.name != "PRIMARY" else f"#{index}"


def image_hdu(hdul, path) -> tuple[int, fits.Header]:
    """Index of the HDU holding a raw frame's image, and the header to use.

    Raises
    ------
    InputError
        No image, or more than one (a multi-detector frame), naming them.
    """
    hdus = _hdus(hdul)
    primary = hdus[0]
    images = [(i, h) for i, h in enumerate(hdus[1:], 1) if _is_image(h)]
    names = ", ".join(_name(h, i) for i, h in images)
    if int(primary.header.get("NAXIS", 0)) > 0:
        if images:
            raise InputError(f"{path}: unexpected image extension(s) {names} beside the "
                             "primary image; a raw dark holds one detector image")
        return 0, primary.header
    if not images:
        others = ", ".join(_name(h, i) for i, h in enumerate(hdus[1:], 1))
        what = f" (its extension(s) {others} hold no image)" if others else ""
        raise InputError(f"{path}: the primary HDU holds no image and no image extension "
                         f"follows{what}")
    if len(images) > 1:
        raise InputError(f"{path}: {len(images)} image extensions ({names}): a "
                         "multi-detector frame; soxs_mdark takes one detector image per file")
    index, hdu = images[0]
    return index, merge_headers(primary.header, hdu.header)


def read_header(path) -> fits.Header:
    """The header a recipe uses, reading as little as possible.

    The primary header; merged with the image extension's (``merge_headers``)
    when the primary holds no data and exactly one image extension follows.

    Raises
    ------
    DataNotFound, InputError
        As ``open_fits``.
    """
    with open_fits(path, whole=False) as hdul:
        try:
            primary = hdul[0].header
            if int(primary.get("NAXIS", 0)) > 0:
                return primary.copy()
            images = [h for h in _hdus(hdul)[1:] if _is_image(h)]
            if len(images) == 1:
                return merge_headers(primary, images[0].header)
            return primary.copy()
        except (OSError, EOFError, zlib.error) as exc:
            raise _damaged(Path(path), "file", exc) from None


class RawImage:
    """A raw 2-D image opened for row reads, in any supported form.

    Attributes
    ----------
    path : Path
        The file as given (an archive keeps its own name).
    tag : str or None
        Its SOF tag.
    header : astropy.io.fits.Header
        The header to use (``image_hdu``).
    shape : tuple of int
        (NAXIS2, NAXIS1).
    dtype : numpy.dtype
        Type of the stored values that ``read_rows_raw`` returns.
    bscale, bzero : float
        ADU = stored * bscale + bzero.

    Raises
    ------
    DataNotFound, InputError
        On construction: the file is missing, unreadable, damaged, truncated,
        or does not hold exactly one 2-D image of a supported BITPIX.
    """

    def __init__(self, path, tag: str | None = None):
        self._fd = None
        self._tmp = None
        self.path = Path(path)
        self.tag = tag
        kind, opener = _sniff(self.path)
        if kind != "fits":
            self._tmp = _decompress(self.path, kind, opener)
        try:
            self._locate(kind)
        except BaseException:
            self.close()
            raise

    def _locate(self, kind: str) -> None:
        source = self.path if self._tmp is None else _reader(self._tmp)
        try:
            with _quiet_astropy():
                # memmap: tile decompression reads each tile's bytes; mapped,
                # that is a slice rather than a read call per tile
                with fits.open(source, mode="readonly", memmap=True, lazy_load_hdus=True,
                               do_not_scale_image_data=True) as hdul:
                    index, self.header = image_hdu(hdul, self.path)
                    hdu = hdul[index]
                    self._check_axes(hdu.header)
                    if isinstance(hdu, fits.CompImageHDU):
                        info = hdul.fileinfo(index)
                        self._expand(hdu, info["datLoc"] + info["datSpan"], kind)
                        return
                    self._offset = hdul.fileinfo(index)["datLoc"]
                    bitpix = hdu.header.get("BITPIX")
                    self.bscale = float(hdu.header.get("BSCALE", 1.0))
                    self.bzero = float(hdu.header.get("BZERO", 0.0))
        except (OSError, EOFError, ValueError, TypeError, IndexError, KeyError) as exc:
            raise InputError(f"{self.path}: corrupt or truncated FITS header ({exc})") from None
        finally:
            if source is not self.path:
                source.close()
        if bitpix not in _BITPIX:
            raise InputError(f"{self.path}: unsupported BITPIX={bitpix}")
        self.dtype = np.dtype(_BITPIX[bitpix])
        need = self._offset + self.shape[0] * self.shape[1] * self.dtype.itemsize
        size = self._size()
        if size < need:
            what = "" if kind == "fits" else f" once decompressed ({kind})"
            raise Truncated(f"{self.path}: truncated: the header announces {need} bytes "
                             f"of data and header, the file has {size}{what}")

    def _check_axes(self, h) -> None:
        naxis = int(h.get("NAXIS", 0))
        if naxis != 2:
            raise InputError(f"{self.path}: the image has {naxis} axes (NAXIS={naxis}); "
                             "a raw dark is 2-D")
        self.shape = (int(h["NAXIS2"]), int(h["NAXIS1"]))

    def _size(self) -> int:
        return os.fstat(self._tmp.fileno()).st_size if self._tmp else self.path.stat().st_size

    def _expand(self, hdu, end: int, kind: str) -> None:
        """Decompress a tile-compressed image, block by block, into an
        anonymous temporary file of its stored values (native byte order);
        ``end``: where its table ends, padding included."""
        out = tempfile.TemporaryFile()
        try:
            nrow, ncol = self.shape
            rows = max(1, BLOCK_BYTES // (np.dtype(_BITPIX.get(hdu.header["BITPIX"], "f8"))
                                          .itemsize * ncol))
            dtype = None
            for a in range(0, nrow, rows):      # within _locate's _quiet_astropy
                block = np.ascontiguousarray(hdu.section[a:min(a + rows, nrow)])
                dtype = block.dtype      # stored as decompressed: native order
                out.write(memoryview(block).cast("B"))
            out.flush()
        except Exception as exc:   # noqa: BLE001 - any failure of a tile is damage
            out.close()
            size = self._size()
            if size < end:
                what = "" if kind == "fits" else f" once decompressed ({kind})"
                raise Truncated(f"{self.path}: truncated: the tile-compressed image "
                                 f"announces {end} bytes with its header, the file has "
                                 f"{size}{what}") from None
            raise _damaged(self.path, "tile-compressed image", exc) from None
        except BaseException:
            out.close()
            raise
        if self._tmp is not None:
            self._tmp.close()
        self._tmp, self._offset = out, 0
        # tiles decompress to the stored values (quantised floats restored);
        # BSCALE/BZERO of the image header still apply, as to a plain image
        self.dtype = np.dtype(dtype)
        self.bscale = float(hdu.header.get("BSCALE", 1.0))
        self.bzero = float(hdu.header.get("BZERO", 0.0))

    # -- row access ------------------------------------------------------
    def open(self):
        """Open the file for reading (done on the first read)."""
        if self._fd is None:
            if self._tmp is not None:
                self._fd = self._tmp.fileno()
                return self
            try:
                self._fd = os.open(self.path, os.O_RDONLY)
            except OSError as exc:
                raise InputError(f"{self.path}: cannot be read ({exc.strerror})") from None
        return self

    def close(self):
        """Release the file; a decompressed copy is gone with it."""
        if self._tmp is not None:
            self._tmp.close()
            self._fd = None
            return
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        self.close()

    def read_rows_raw(self, r0: int, r1: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows [r0, r1) in the stored type (``dtype``), unscaled."""
        if self._tmp is not None and self._tmp.closed:
            raise InputError(f"{self.path}: read after close (its decompressed copy is gone)")
        self.open()
        ncol = self.shape[1]
        if out is None:
            out = np.empty((r1 - r0, ncol), dtype=self.dtype)
        nbytes = (r1 - r0) * ncol * self.dtype.itemsize
        view = memoryview(out.reshape(-1).view(np.uint8))[:nbytes]
        pos = self._offset + r0 * ncol * self.dtype.itemsize
        got = 0
        while got < nbytes:
            n = os.preadv(self._fd, [view[got:]], pos + got)
            if n <= 0:
                raise Truncated(f"{self.path}: truncated while reading rows {r0}-{r1}")
            got += n
        return out

    def read_rows(self, r0: int, r1: int) -> np.ndarray:
        """Rows [r0, r1) as float32 in ADU (BSCALE/BZERO applied)."""
        return self._adu(self.read_rows_raw(r0, r1))

    def read_row_set(self, rows) -> np.ndarray:
        """Selected rows, float32 in ADU."""
        raw = np.empty((len(rows), self.shape[1]), self.dtype)
        for k, r in enumerate(rows):
            self.read_rows_raw(r, r + 1, raw[k:k + 1])
        return self._adu(raw)

    def _adu(self, raw: np.ndarray) -> np.ndarray:
        data = raw.astype(np.float32)
        if self.bscale != 1.0:
            data *= np.float32(self.bscale)
        if self.bzero != 0.0:
            data += np.float32(self.bzero)
        return data

    def read_all(self) -> np.ndarray:
        """The whole image, float32 in ADU."""
        return self.read_rows(0, self.shape[0])
