"""Read-only access to raw FITS frames: header checks and row reads.

Pixel rows are read with ``os.pread`` from a descriptor opened read-only, so
a frame is never modified and never mapped into memory as a whole: reading
N frames costs one block of rows each, not N full images.
"""

from __future__ import annotations

import os
from pathlib import Path
import warnings

import numpy as np
from astropy.io import fits

from .errors import DataNotFound, InputError

_BITPIX = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"PK\x03\x04", b"\xfd7zXZ")


def read_header(path: Path) -> tuple[fits.Header, int, list[str]]:
    """Primary header, the byte offset of its data and the names of any
    further HDUs.  Raises InputError naming the file and the problem."""
    path = Path(path)
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
    if any(magic.startswith(m) for m in _COMPRESSED_MAGIC):
        raise InputError(f"{path}: is a compressed file; soxs_mdark reads plain FITS "
                         "raw frames (decompress it first)")
    if not magic.startswith(b"SIMPLE  =") or len(magic) < 80:
        raise InputError(f"{path}: is not a FITS file (no SIMPLE card at its start)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path, mode="readonly", memmap=False, lazy_load_hdus=True,
                           do_not_scale_image_data=True) as hdul:
                header = hdul[0].header.copy()
                offset = hdul.fileinfo(0)["datLoc"]
                extra = []
                try:
                    for hdu in hdul[1:]:
                        extra.append(hdu.name or hdu.__class__.__name__)
                except Exception:  # trailing garbage after the primary HDU
                    pass
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise InputError(f"{path}: corrupt or truncated FITS header ({exc})") from None
    return header, offset, extra


class RawImage:
    """A 2-D primary image opened for row reads; ``header`` is the primary header."""

    def __init__(self, path, tag: str | None = None):
        self._fd = None
        self.path = Path(path)
        self.tag = tag
        self.header, self._offset, extra = read_header(self.path)
        h = self.header
        naxis = h.get("NAXIS", 0)
        if naxis == 0:
            what = f" (the image is in extension(s) {', '.join(extra)})" if extra else ""
            raise InputError(f"{self.path}: the primary HDU holds no image{what}; "
                             "a raw dark is a single 2-D primary image")
        if extra:
            raise InputError(f"{self.path}: unexpected extension(s) {', '.join(extra)}; "
                             "a raw dark is a single 2-D primary image")
        if naxis != 2:
            raise InputError(f"{self.path}: the image has {naxis} axes (NAXIS={naxis}); "
                             "a raw dark is 2-D")
        bitpix = h.get("BITPIX")
        if bitpix not in _BITPIX:
            raise InputError(f"{self.path}: unsupported BITPIX={bitpix}")
        self.dtype = np.dtype(_BITPIX[bitpix])
        self.shape = (int(h["NAXIS2"]), int(h["NAXIS1"]))
        self.bscale = float(h.get("BSCALE", 1.0))
        self.bzero = float(h.get("BZERO", 0.0))
        need = self._offset + self.shape[0] * self.shape[1] * self.dtype.itemsize
        size = self.path.stat().st_size
        if size < need:
            raise InputError(f"{self.path}: truncated: the header announces "
                             f"{need} bytes of data and header, the file has {size}")

    # -- row access ------------------------------------------------------
    def open(self):
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY)
            except OSError as exc:
                raise InputError(f"{self.path}: cannot be read ({exc.strerror})") from None
        return self

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        self.close()

    def read_rows_raw(self, r0: int, r1: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows [r0, r1) in the file's own (big-endian) type, unscaled."""
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
                raise InputError(f"{self.path}: truncated while reading rows {r0}-{r1}")
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
        return self.read_rows(0, self.shape[0])
