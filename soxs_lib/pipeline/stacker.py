"""The stacking of a single run in a child forked as the run starts.

As each frame is measured here, the child measures the noise of its pair
with the one before on the other core.  It then reads the frames itself
(``io.rows``: no astropy, each frame mapped, its stored values read by the
kernel straight from the page cache) and writes the master into memory both processes map
(a ``memfd``: it has no name, so nothing is left behind however the run
ends).  ``reduce all``'s workers, which reduce set after set, and hosts that
may not fork stack in-process.
"""

from __future__ import annotations

import logging
import mmap
import os

import numpy as np

from soxs_lib.core.model import StackResult
from soxs_lib.io.rows import fd_path
from soxs_lib.runtime.child import Child, can_fork, can_share

log = logging.getLogger("soxs")
_PAIR, _PAIRS = "pair", "pairs"     # messages before the stacking job


def _planes(buf, shape: tuple, bias: bool) -> tuple:
    """(pix or None, sums, counts, qual) views of the shared buffer: the
    master bias in (offset, variance), FLUX and ERR, samples used and
    rejected, QUAL; each plane aligned for its type."""
    ny, nx = shape
    n = ny * nx
    at = 8 * n if bias else 0
    pix = np.frombuffer(buf, np.float32, 2 * n, 0).reshape(2, ny, nx) if bias else None
    sums = np.frombuffer(buf, np.float32, 2 * n, at).reshape(2, ny, nx)
    counts = np.frombuffer(buf, np.uint16, 2 * n, at + 8 * n).reshape(2, ny, nx)
    qual = np.frombuffer(buf, np.uint8, n, at + 12 * n).reshape(ny, nx)
    return pix, sums, counts, qual


def _size(shape: tuple, bias: bool) -> int:
    return shape[0] * shape[1] * (13 + (8 if bias else 0))


class SharedPlane:
    """A plane of the memory shared with the stacking child, pickled as where
    it lies: a process of this user that receives it maps the memory
    (through ``/proc/<pid>/fd``) instead of receiving a copy of it."""

    def __init__(self, path: str, size: int, offset: int, array):
        self.where = (path, size, offset, array.dtype.str, array.shape)

    def __reduce__(self):
        return _map_plane, self.where


def _map_plane(path: str, size: int, offset: int, dtype: str, shape: tuple):
    """The plane a ``SharedPlane`` names, mapped read-only."""
    fd = os.open(path, os.O_RDONLY)
    try:
        buf = mmap.mmap(fd, size, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    return np.frombuffer(buf, dtype, shape[0] * shape[1], offset).reshape(shape)


class StackProcess:
    """The child that stacks a run's frames; ``usable`` is False where it
    cannot be forked (then the run stacks in-process): no fork or no
    ``/proc``."""

    def __init__(self):
        self._child, self._fd, self._ready, self._flux = None, None, False, None
        if can_fork() and can_share() and hasattr(os, "memfd_create"):
            self._fd = os.memfd_create("soxs-stack")
            try:
                self._child = Child(_serve, self._fd, inbox=True)
            except BaseException:
                self.cancel()
                raise

    @property
    def usable(self) -> bool:
        """Whether the child runs."""
        return self._child is not None and self._child.pid is not None

    def ready(self) -> bool:
        """Whether the child has started, and so takes ``pair``s (never
        waits).

        Raises
        ------
        Exception
            What ended the child.
        """
        if not self._ready and self._child.has_reply():
            self._ready = self._child.receive()      # its first reply: loaded
        return self._ready

    def pair(self, k: int, a, b, sigma: float, iterations: int) -> None:
        """Measure ``stats.pair_noise(a, b, sigma, iterations)`` as pair
        ``k``, in the child."""
        self._child.send((_PAIR, k, a, b, sigma, iterations))  # a dead child: per_pair() tells

    def per_pair(self) -> dict:
        """{k: noise} of the pairs given.

        Raises
        ------
        Exception
            What ended the child.
        """
        self._child.send((_PAIRS,))
        return self._child.receive()

    def __call__(self, fs, model, values, cal) -> StackResult:
        """Stack ``fs`` in the child, as ``core.mdark.stack_set`` would here.

        Parameters
        ----------
        fs : soxs_lib.io.frames.FrameSet
            The usable frames, in the order of ``model``.
        model : soxs_lib.core.model.FrameModel
        values : soxs_lib.config.params.Values
        cal : soxs_lib.core.calibration.Calibration

        Returns
        -------
        StackResult
            Arrays in the memory shared with the child.

        Raises
        ------
        InputError
            A frame cannot be read, or was cut short while the child read
            it (``Truncated``); whatever else the child raised.  Where no
            memory can be shared, it stacks in-process instead.
        """
        # not imported with this module, which a run imports before it forks
        from soxs_lib.core.mdark import stack_options, stack_set
        r0, r1, c0, c1 = cal.region
        shape, bias = (r1 - r0, c1 - c0), cal.pix_offset is not None
        size = _size(shape, bias)
        try:
            os.ftruncate(self._fd, size)
            buf = mmap.mmap(self._fd, size)
        except OSError as exc:      # no memory to share (a file size limit counts it)
            self.cancel()
            log.info("stacked in this process (no memory to share with a child: %s)",
                     exc.strerror)
            return stack_set(fs, model, values, cal)
        pix, sums, counts, qual = _planes(buf, shape, bias)
        if bias:
            pix[0], pix[1] = cal.pix_offset, cal.pix_var
        if not self._ready:          # its first reply, read before the one that ends stacking
            self._ready = self._child.receive()
        sources = [img.source() for img in fs.raws]
        self._child.send(dict(sources=sources, region=cal.region, model=model, bias=bias,
                              options=stack_options(values)))
        try:
            self._child.receive()       # stacked: the child's exit is not waited for
        except RuntimeError:
            # killed without a word: a frame cut short while it was mapped ends
            # its reader with SIGBUS; name it if so
            for source in sources:
                source.check()
            raise
        log.info("stacked in a child process")
        flux = sums[0]
        self._flux = (flux, size, flux.ctypes.data - np.frombuffer(buf, np.uint8).ctypes.data)
        return StackResult(flux, sums[1], counts[0], qual, counts[1])

    def shared(self, flux):
        """``flux`` to send to another process: a ``SharedPlane`` if it is
        the master this child stacked (in the shared memory), else itself."""
        if self._flux is None or flux is not self._flux[0] or self._fd is None:
            return flux
        _, size, offset = self._flux
        return SharedPlane(fd_path(self._fd), size, offset, flux)

    def cancel(self) -> None:
        """End the child if it still runs, and release the shared memory."""
        if self._child is not None:
            self._child.cancel()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _serve(fd: int, inbox) -> None:
    """In the child: say it has started, measure the pairs of frames sent,
    then stack the one set sent and say so (nothing if the parent sends
    none)."""
    from soxs_lib.core import stack
    from soxs_lib.core.stats import pair_noise
    inbox.reply(True)
    per_pair = {}
    try:
        job = inbox.receive()
        while isinstance(job, tuple):
            if job[0] == _PAIR:
                _, k, a, b, sigma, iterations = job
                per_pair[k] = pair_noise(a, b, sigma, iterations)
            else:
                inbox.reply(per_pair)
            job = inbox.receive()
    except EOFError:
        return
    r0, r1, c0, c1 = job["region"]
    shape = (r1 - r0, c1 - c0)
    pix, sums, counts, qual = _planes(mmap.mmap(fd, _size(shape, job["bias"])), shape,
                                      job["bias"])
    readers = [s.open() for s in job["sources"]]
    try:
        stack.stack_frames(readers, job["region"], job["model"], bias=pix,
                           out=(sums, counts, qual), **job["options"])
    finally:
        for r in readers:
            r.close()
    inbox.reply(True)
