"""Rows of a raw image's stored values, without astropy: read with
``os.preadv`` from a file descriptor (what ``rawimage.RawImage`` reads
with), or mapped, as another process streams a frame set through the
kernel (``RowSource``; ``runtime.child.can_share``): the rows are then
converted straight from the page cache, not copied out of it first."""

from __future__ import annotations

from dataclasses import dataclass
import mmap
import os

import numpy as np

from soxs_lib.config.errors import InputError, Truncated
from soxs_lib.io import tiles


def read_rows(fd: int, layout: tuple, r0: int, r1: int, out=None, name="") -> np.ndarray:
    """Rows [r0, r1) of stored values.

    Parameters
    ----------
    fd : int
        The file, open for reading.
    layout : tuple
        (offset of the first value in bytes, numpy.dtype, (rows, columns)).
    r0, r1 : int
        The rows, end exclusive.
    out : numpy.ndarray, optional
        Where to read them, at least (r1 - r0, columns) of ``dtype``.
    name : str or Path
        The file, for messages.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    Truncated
        The file ends before the rows.
    """
    offset, dtype, (_, ncol) = layout
    if out is None:
        out = np.empty((r1 - r0, ncol), dtype=dtype)
    nbytes = (r1 - r0) * ncol * dtype.itemsize
    view = memoryview(out.reshape(-1).view(np.uint8))[:nbytes]
    pos = offset + r0 * ncol * dtype.itemsize
    got = 0
    while got < nbytes:
        n = os.preadv(fd, [view[got:]], pos + got)
        if n <= 0:
            raise Truncated(f"{name}: truncated while reading rows {r0}-{r1}")
        got += n
    return out


def fd_path(fd: int) -> str:
    """Where another process of this user opens this process's descriptor
    ``fd``, an anonymous file's included (``runtime.child.can_share``)."""
    return f"/proc/{os.getpid()}/fd/{fd}"


@dataclass(frozen=True)
class RowSource:
    """A raw image as another process of this user reads it: the file (a
    decompressed copy, which has no name, through ``/proc/<pid>/fd``), and
    where its values are."""

    path: str
    offset: int
    dtype: str
    shape: tuple

    @property
    def end(self) -> int:
        """The byte after its last value."""
        return self.offset + self.shape[0] * self.shape[1] * np.dtype(self.dtype).itemsize

    def check(self, size: int | None = None) -> None:
        """Raise ``Truncated`` if the file (of ``size`` bytes, by default as
        it is now) ends before its values do; a file that cannot be
        reached is an InputError."""
        if size is None:
            try:
                size = os.stat(self.path).st_size
            except OSError as exc:
                raise InputError(f"{self.path}: cannot be read ({exc.strerror})") from None
        if size < self.end:      # as a frame found short when it is opened says it
            raise tiles.truncated(self.path, f"the header announces {self.end} bytes of "
                                  "data and header", size, "fits")

    def open(self) -> RowReader:
        """Map it for ``read_rows_raw``.

        Raises
        ------
        InputError
            The file cannot be opened or mapped; ``Truncated`` when it ends
            before its values do.
        """
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise InputError(f"{self.path}: cannot be read ({exc.strerror})") from None
        try:
            return RowReader(fd, self)
        finally:
            os.close(fd)


class RowReader:
    """An opened ``RowSource``, with ``RawImage``'s ``dtype``, ``shape`` and
    ``read_rows_raw``; ``close()`` releases it.  The file is mapped: its
    size is checked first, so that no row lies beyond its end.  Rows are
    read in increasing order: those before the rows asked for the time
    before (which the kernel may still read while the next block is asked
    for) are let go, so that the pages mapped stay those of about two
    blocks of rows, however large the frame."""

    def __init__(self, fd: int, source: RowSource):
        self.path = source.path
        self.dtype, self.shape = np.dtype(source.dtype), tuple(source.shape)
        count = self.shape[0] * self.shape[1]
        source.check(os.fstat(fd).st_size)
        try:
            self._map = mmap.mmap(fd, source.end, prot=mmap.PROT_READ)
        except OSError as exc:
            raise InputError(f"{self.path}: cannot be mapped ({exc.strerror})") from None
        self._values = np.frombuffer(self._map, self.dtype, count,
                                     source.offset).reshape(self.shape)
        self._row_bytes = self.shape[1] * self.dtype.itemsize
        self._offset, self._released, self._last = source.offset, 0, 0

    def read_rows_raw(self, r0: int, r1: int, _out: np.ndarray | None = None) -> np.ndarray:
        """Rows [r0, r1) in the stored type, unscaled: a read-only view of
        the mapped file (a buffer to read into, the third argument of
        ``RawImage.read_rows_raw``, is not needed).  The pages wholly
        before the first row asked for the time before are unmapped (the
        file keeps them: a row read again is mapped again)."""
        last, self._last = self._last, r0
        before = (self._offset + last * self._row_bytes) // mmap.PAGESIZE * mmap.PAGESIZE
        if before > self._released:
            try:
                self._map.madvise(mmap.MADV_DONTNEED, self._released, before - self._released)
                self._released = before
            except (AttributeError, OSError):    # no madvise: the pages stay mapped
                pass
        return self._values[r0:r1]

    def close(self) -> None:
        """Release the file: unmapped once no view of its rows is left."""
        self._values = self._map = None
