"""Read-only row access to a raw 2-D image in every form archives deliver it.

A frame may be plain FITS; gzip (``.gz``), bzip2 (``.bz2``) or Unix compress
(``.Z``) archives of one; tile-compressed (a compressed-image extension:
``.fz``, Rice, GZIP_1/2, HCOMPRESS, PLIO); or a file whose primary HDU holds
only the header and whose one image extension holds the pixels (the header
is then ``fitsfile.merge_headers``' merge of both).

``locate`` finds where the stored values are (``Layout``); ``RawImage``
reads rows of them.  Plain images are read with ``os.pread`` from a
descriptor opened read-only, so a frame is never modified and never read
whole; every other form is first decompressed once into an anonymous
temporary file (``archive.decompress``, ``tiles.expand``).
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path

from astropy.io import fits
import numpy as np

from soxs_lib.config.errors import InputError
from soxs_lib.io.archive import decompress, reader, sniff
from soxs_lib.io.fitsfile import image_hdu, quiet_astropy
from soxs_lib.io import tiles
from soxs_lib.io.rows import RowSource, fd_path, read_rows

_BITPIX = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


@dataclass(frozen=True)
class Layout:
    """Where a raw image's stored values are, and what they mean."""

    header: fits.Header     # the header to use (``fitsfile.image_hdu``)
    shape: tuple            # (NAXIS2, NAXIS1)
    dtype: np.dtype         # the stored values' type
    offset: int             # byte offset of the first value
    bscale: float           # ADU = stored * bscale + bzero
    bzero: float


def _scaling(header) -> tuple[float, float]:
    return float(header.get("BSCALE", 1.0)), float(header.get("BZERO", 0.0))


def _shape(path: Path, header) -> tuple[int, int]:
    naxis = int(header.get("NAXIS", 0))
    if naxis != 2:
        raise InputError(f"{path}: the image has {naxis} axes (NAXIS={naxis}); "
                         "a raw dark is 2-D")
    return int(header["NAXIS2"]), int(header["NAXIS1"])


def _size(path: Path, tmp) -> int:
    return os.fstat(tmp.fileno()).st_size if tmp else path.stat().st_size


def locate(path: Path, kind: str, tmp):
    """The layout of the one image of a raw frame, and the file that holds
    its stored values.

    Parameters
    ----------
    path : Path
        The frame as given.
    kind : str
        ``archive.sniff``'s name of its form (``"fits"`` when plain).
    tmp : file or None
        Its decompressed copy (``archive.decompress``) unless plain.

    Returns
    -------
    tmp : file or None
        The file holding the values: ``tmp``, or for a tile-compressed image
        a new anonymous temporary file of them (``tmp`` is then closed).
    layout : Layout

    Raises
    ------
    InputError
        A damaged header, no or several images, not 2-D, an unsupported
        BITPIX; ``Truncated`` when the data stop short.
    """
    source = path if tmp is None else reader(tmp)
    try:
        with quiet_astropy():
            # memmap: tile decompression reads each tile's bytes; mapped,
            # that is a slice rather than a read call per tile
            with fits.open(source, mode="readonly", memmap=True, lazy_load_hdus=True,
                           do_not_scale_image_data=True) as hdul:
                index, header = image_hdu(hdul, path)
                hdu = hdul[index]
                shape = _shape(path, hdu.header)
                info = hdul.fileinfo(index)
                if isinstance(hdu, fits.CompImageHDU):
                    out, dtype = tiles.expand(hdu, path, shape, (
                        info["datLoc"] + info["datSpan"], kind, _size(path, tmp)))
                    if tmp is not None:
                        tmp.close()
                    return out, Layout(header, shape, dtype, 0, *_scaling(hdu.header))
                bitpix = hdu.header.get("BITPIX")
                layout = (header, shape, info["datLoc"], _scaling(hdu.header))
    except (OSError, EOFError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise InputError(f"{path}: corrupt or truncated FITS header ({exc})") from None
    finally:
        if source is not path:
            source.close()
    if bitpix not in _BITPIX:
        raise InputError(f"{path}: unsupported BITPIX={bitpix}")
    header, shape, offset, scaling = layout
    dtype = np.dtype(_BITPIX[bitpix])
    need = offset + shape[0] * shape[1] * dtype.itemsize
    size = _size(path, tmp)
    if size < need:
        raise tiles.truncated(path, f"the header announces {need} bytes of data and header",
                              size, kind)
    return tmp, Layout(header, shape, dtype, offset, *scaling)


class RawImage:
    """A raw 2-D image opened for row reads, in any supported form.

    Attributes
    ----------
    path : Path
        The file as given (an archive keeps its own name).
    tag : str or None
        Its SOF tag.
    header : astropy.io.fits.Header
        The header to use (``fitsfile.image_hdu``).
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
        kind, opener = sniff(self.path)
        if kind != "fits":
            self._tmp = decompress(self.path, kind, opener)
        try:
            self._tmp, layout = locate(self.path, kind, self._tmp)
        except BaseException:
            self.close()
            raise
        self.header, self.shape, self.dtype = layout.header, layout.shape, layout.dtype
        self.bscale, self.bzero, self._offset = layout.bscale, layout.bzero, layout.offset

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
        return read_rows(self._fd, (self._offset, self.dtype, self.shape), r0, r1, out,
                         self.path)

    def source(self) -> RowSource:
        """The image as another process reads it (``runtime.child.can_share``)."""
        self.open()
        path = (str(self.path.resolve()) if self._tmp is None
                else fd_path(self._fd))
        return RowSource(path, self._offset, self.dtype.str, self.shape)

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
