"""A dark stack streamed through the compiled kernel (``kernel``) block by
block: frames (``RawImage`` or the in-memory ``ArrayImage``) in, the master's
FLUX/ERR/QUAL out, so the memory used does not grow with the number of
frames beyond one block.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from soxs_lib.config.params import thread_count
from soxs_lib.core.kernel import StackSet, clip_and_combine, stored
from soxs_lib.core.model import FrameModel, StackResult


class ArrayImage:
    """An image held in memory with the row interface of ``RawImage``
    (``dtype``, ``shape``, ``read_rows_raw``), so arrays take the same path
    to the kernel as files."""

    def __init__(self, data: np.ndarray):
        # a type the kernel does not read is held as float32, as it would
        # convert it
        self.data = np.ascontiguousarray(data, None if stored(data.dtype) else np.float32)
        self.dtype, self.shape = self.data.dtype, self.data.shape

    def read_rows_raw(self, r0: int, r1: int, _out: np.ndarray | None = None) -> np.ndarray:
        """Rows [r0, r1): a view (a buffer to read into, the third argument
        of ``RawImage.read_rows_raw``, is not needed)."""
        return self.data[r0:r1]


def stack_arrays(stack: np.ndarray, model: FrameModel, clipping: tuple, bias=None,
                 threads: int = 0) -> StackResult:
    """Clip and combine a whole (N, ny, nx) stack held in memory.

    Parameters
    ----------
    stack : numpy.ndarray
        N frames of raw values (``model`` converts them to electrons).
    model, clipping, bias, threads
        As for ``stack_frames``.

    Returns
    -------
    StackResult
        Arrays of shape (ny, nx).
    """
    n, ny, nx = stack.shape
    return stack_frames([ArrayImage(f) for f in stack], (0, ny, 0, nx), model, clipping,
                        max(1, stack.nbytes) * 2, bias, threads)


def stack_frames(images, region, model: FrameModel, clipping: tuple, chunk_bytes: int,
                 bias=None, threads: int = 0, out: tuple | None = None) -> StackResult:
    """Stream the science region of ``images`` through the kernel
    in blocks of rows.

    The next block is read while the current one is combined; two blocks of
    ``chunk_bytes`` at most are held, whatever the number of frames.

    Parameters
    ----------
    images : sequence of RawImage, RowReader or ArrayImage
        The frames, each with ``dtype``, ``shape`` and ``read_rows_raw``
        (which returns the rows read into its ``out``, or a view of them).
    region : tuple of int
        (row0, row1, col0, col1) of the pixels to stack, end exclusive.
    model : FrameModel
        Per-frame conversion to electrons, saturation, levels and noise.
    clipping : tuple
        (frame_clipping_sigma, stacked_clipping_sigma,
        stacked_clipping_iterations).
    chunk_bytes : int
        Memory budget of one block of the stack.
    bias : array-like, optional
        (offset, variance), (2, rows, columns): per-pixel offset (e-)
        subtracted and variance (e-^2) added (a master bias); zeros if None.
        A float32 array of that shape is used as it is, not copied.
    threads : int
        Kernel threads: the ``nthreads`` parameter (``thread_count``).
    out : tuple of numpy.ndarray, optional
        Where to write: (2, rows, columns) float32 FLUX and ERR, (2, rows,
        columns) uint16 samples used and rejected, (rows, columns) uint8
        QUAL (memory another process shares); new arrays if None.

    Returns
    -------
    StackResult
        FLUX (NaN where no valid sample), ERR, number of samples used, QUAL
        and number rejected, of the region's shape.
    """
    r0, r1, c0, c1 = region
    nfr, ncol = len(images), c1 - c0
    row_bytes = max(img.shape[1] * img.dtype.itemsize for img in images)
    rows = int(max(1, min(r1 - r0, chunk_bytes // (2 * nfr * row_bytes))))
    sums, counts, qual = out or (np.empty((2, r1 - r0, ncol), np.float32),   # FLUX, ERR
                                 np.empty((2, r1 - r0, ncol), np.uint16),    # used, rejected
                                 np.empty((r1 - r0, ncol), np.uint8))
    pix = (np.zeros((2, r1 - r0, ncol), np.float32) if bias is None else
           np.asarray(bias, np.float32))
    # two blocks of each frame's rows, for the images read into memory (a
    # mapped frame's or an array's rows are views: these stay untouched)
    bufs = [[np.empty((rows, img.shape[1]), img.dtype) for img in images] for _ in range(2)]

    def read(a, b, slot):
        block = [img.read_rows_raw(a, b, buf[: b - a]) for img, buf in zip(images, slot, strict=True)]
        # a type the kernel does not read goes as numpy converts it
        return [r if stored(r.dtype) else r.astype(np.float32) for r in block]

    kset, nthreads = StackSet(model, clipping), thread_count(threads)
    starts = list(range(r0, r1, rows))
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(read, starts[0], min(starts[0] + rows, r1), bufs[0])
        for k, a in enumerate(starts):
            b = min(a + rows, r1)
            block = pending.result()
            if k + 1 < len(starts):
                na = starts[k + 1]
                pending = pool.submit(read, na, min(na + rows, r1), bufs[(k + 1) % 2])
            sl = slice(a - r0, b - r0)
            clip_and_combine(kset, block, c0, (pix[0, sl], pix[1, sl]),
                             (sums[0, sl], sums[1, sl], counts[0, sl], counts[1, sl], qual[sl]),
                             nthreads)
    return StackResult(sums[0], sums[1], counts[0], qual, counts[1])
