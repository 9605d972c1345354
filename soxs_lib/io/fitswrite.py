"""A FITS file written in one pass with its checksums and DATAMD5, as CPL
saves a product and then updates its DATAMD5.

Each header goes first with its sums at zero; the data follow, converted to
big-endian a chunk at a time, summed and written while the MD5 of the data
units is computed on another thread, which then flushes them to disk; then
each header is written again in place with its DATASUM and CHECKSUM, the
primary's with DATAMD5.  The MD5 of all data units may instead be computed
ahead (``data_md5``), from when their arrays are final; the file is then
written without hashing, and flushed while the MD5 is finished.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
import hashlib
import os

import numpy as np

from soxs_lib.io.checksum import checksum_card, ones_sum

_CHUNK_BYTES = 1 << 20     # converted, summed, hashed and written while in cache
_BUFFERS = 4               # chunks in flight between this thread and the hasher


def _big_endian(flat: np.ndarray, bufs: list):
    """``flat`` big-endian, a chunk at a time: (slot, bytes) where ``slot``
    is the [buffer, future or None] of ``bufs`` holding it, taken in turn
    once the future of its previous chunk is done."""
    stored = flat.dtype.newbyteorder(">")
    step = _CHUNK_BYTES // stored.itemsize
    for k, a in enumerate(range(0, flat.size, step)):
        slot = bufs[k % len(bufs)]
        if slot[1] is not None:
            slot[1].result()
        chunk = np.frombuffer(slot[0], stored, min(step, flat.size - a))
        np.copyto(chunk, flat[a:a + step], casting="equiv")
        yield slot, memoryview(chunk).cast("B")


def _padding(flat: np.ndarray) -> bytes:
    return bytes(-flat.nbytes % 2880)


def _buffers(n: int) -> list:
    return [[bytearray(_CHUNK_BYTES), None] for _ in range(n)]


def data_md5(arrays):
    """The MD5 (``hashlib``) of the data units of ``arrays`` in turn, each
    big-endian and padded: what ``write_hdus`` computes as it writes them,
    for a caller to compute ahead, on a thread, from when the arrays are
    final (the DATASUMs are summed as the data are written, either way).

    Parameters
    ----------
    arrays : sequence of numpy.ndarray
        The images in file order, in their stored types; they must not
        change until they are written.

    Returns
    -------
    hashlib MD5 object
    """
    md5, bufs = hashlib.md5(), _buffers(1)
    for data in arrays:
        flat = np.ascontiguousarray(data).reshape(-1)
        for _, view in _big_endian(flat, bufs):
            md5.update(view)
        md5.update(_padding(flat))
    return md5


def _write_data(fh, data, md5, hasher, bufs: list) -> int:
    """Write ``data`` big-endian and padded to 2880 bytes, and feed it to
    ``md5`` on the ``hasher`` thread (None: not hashed); its DATASUM."""
    flat = np.ascontiguousarray(data).reshape(-1)
    datasum = 0
    for slot, view in _big_endian(flat, bufs):
        datasum = ones_sum(view, datasum)
        if md5 is not None:
            slot[1] = hasher.submit(md5.update, view)
        fh.write(view)
    pad = _padding(flat)
    if md5 is not None:
        hasher.submit(md5.update, pad)
    fh.write(pad)
    return datasum


def write_hdus(hdus, path, ahead=None) -> None:
    """Write ``hdus`` with their checksums and the primary's DATAMD5.

    Parameters
    ----------
    hdus : astropy.io.fits.HDUList
        A primary header without data (it has a DATAMD5 card, which is
        set), then images in native or big-endian byte order.
    path : str or Path
        The file to write (created or replaced).
    ahead : (sequence of numpy.ndarray, call), optional
        An MD5 already under way: ``call.result()`` is ``data_md5`` of the
        arrays; used, instead of hashing here, if they are the images' data
        (the very arrays, in order), and waited for once the data are
        written.

    Raises
    ------
    OSError
        The file cannot be written.
    """
    images = [hdu.data for hdu in hdus if hdu.data is not None]
    done = ahead is not None and len(ahead[0]) == len(images) and all(
        a is b for a, b in zip(ahead[0], images, strict=True))
    md5, placed = hashlib.md5(), []
    bufs = _buffers(_BUFFERS)
    with open(path, "w+b") as fh, ThreadPoolExecutor(max_workers=1) as hasher:
        for hdu in hdus:
            hdu.header["CHECKSUM"] = ("0" * 16, "HDU checksum")
            hdu.header["DATASUM"] = ("0", "data unit checksum")
            head = hdu.header.tostring().encode("ascii")
            at = fh.tell()
            fh.write(head)
            datasum = 0 if hdu.data is None else _write_data(
                fh, hdu.data, None if done else md5, hasher, bufs)
            placed.append((at, len(head), datasum))
        fh.flush()
        # one worker, in order: the digest once every chunk is hashed; then
        # the data go to disk while their MD5 is finished and the headers
        # written again (the caller syncs the file once more for those)
        digest = None if done else hasher.submit(md5.hexdigest)
        synced = hasher.submit(os.fsync, fh.fileno())
        hdus[0].header["DATAMD5"] = ahead[1].result().hexdigest() if done else digest.result()
        for hdu, (at, size, datasum) in zip(hdus, placed, strict=True):
            hdu.header["DATASUM"] = str(datasum)
            hdu.header["CHECKSUM"] = checksum_card(hdu.header.tostring().encode("ascii"),
                                                   datasum)
            head = hdu.header.tostring().encode("ascii")
            if len(head) != size:                      # a bug, never data
                raise RuntimeError(f"{path}: the header of HDU {hdu.name} changed size")
            fh.seek(at)
            fh.write(head)
        synced.result()
