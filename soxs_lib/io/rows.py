"""Rows of a raw image's stored values, read with ``os.preadv`` from a file
descriptor: what ``rawimage.RawImage`` reads with, and what another process
reads a frame set with (``RowSource``; ``runtime.child.can_share``), neither
needing astropy."""

from __future__ import annotations

from dataclasses import dataclass
import os

import numpy as np

from soxs_lib.config.errors import InputError, Truncated


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

    def open(self) -> RowReader:
        """Open it for ``read_rows_raw``.

        Raises
        ------
        InputError
            The file cannot be opened.
        """
        try:
            return RowReader(os.open(self.path, os.O_RDONLY), self)
        except OSError as exc:
            raise InputError(f"{self.path}: cannot be read ({exc.strerror})") from None


class RowReader:
    """An opened ``RowSource``, with ``RawImage``'s ``dtype``, ``shape`` and
    ``read_rows_raw``; ``close()`` releases it."""

    def __init__(self, fd: int, source: RowSource):
        self._fd, self.path = fd, source.path
        self.dtype, self.shape = np.dtype(source.dtype), tuple(source.shape)
        self._layout = (source.offset, self.dtype, self.shape)

    def read_rows_raw(self, r0: int, r1: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows [r0, r1) in the stored type, unscaled."""
        return read_rows(self._fd, self._layout, r0, r1, out, self.path)

    def close(self) -> None:
        """Release the file."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
