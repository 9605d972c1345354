"""Tile-compressed images (``.fz``: Rice, GZIP_1/2, HCOMPRESS, PLIO)
expanded block by block into an anonymous temporary file of their stored
values, so that rows are read from them as from a plain image; and the one
message for data that stop short."""

from __future__ import annotations

import tempfile

import numpy as np

from soxs_lib.config.errors import Truncated
from soxs_lib.io.archive import BLOCK_BYTES, damaged


def truncated(path, announced: str, size: int, kind: str) -> Truncated:
    """The error for a file shorter than its header says.

    Parameters
    ----------
    path : Path
        The file as given.
    announced : str
        What announced more (``"the header announces N bytes of ..."``).
    size : int
        The bytes the file (or its decompressed copy) has.
    kind : str
        Its form (``"fits"`` when plain, else the archive's name).

    Returns
    -------
    Truncated
    """
    what = "" if kind == "fits" else f" once decompressed ({kind})"
    return Truncated(f"{path}: truncated: {announced}, the file has {size}{what}")


def expand(hdu, path, shape: tuple, extent: tuple):
    """Decompress a tile-compressed image into an anonymous temporary file
    of its stored values, in native byte order.

    Parameters
    ----------
    hdu : astropy.io.fits.CompImageHDU
        The image, opened by the caller (within ``fitsfile.quiet_astropy``).
    path : Path
        The file, for messages.
    shape : tuple of int
        (NAXIS2, NAXIS1).
    extent : tuple
        (end, kind, size): where the compressed table ends, padding
        included; the file's form; the bytes it has.

    Returns
    -------
    file : tempfile.TemporaryFile
        The values, row after row.
    dtype : numpy.dtype
        Their type (quantised floats come back as floats).

    Raises
    ------
    Truncated
        The file ends before the table does.
    InputError
        A tile cannot be decompressed.
    """
    end, kind, size = extent
    out = tempfile.TemporaryFile()
    try:
        nrow, ncol = shape
        itemsize = abs(int(hdu.header.get("BITPIX", -64))) // 8 or 8
        rows = max(1, BLOCK_BYTES // (itemsize * ncol))
        dtype = None
        for a in range(0, nrow, rows):
            block = np.ascontiguousarray(hdu.section[a:min(a + rows, nrow)])
            dtype = block.dtype      # stored as decompressed: native order
            out.write(memoryview(block).cast("B"))
        out.flush()
    except Exception as exc:   # noqa: BLE001 - any failure of a tile is damage
        out.close()
        if size < end:
            raise truncated(path, f"the tile-compressed image announces {end} bytes "
                            "with its header", size, kind) from None
        raise damaged(path, "tile-compressed image", exc) from None
    except BaseException:
        out.close()
        raise
    return out, np.dtype(dtype)
