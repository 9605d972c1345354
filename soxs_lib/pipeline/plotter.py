"""The QC plot drawn by a forked child while the parent works: it reduces the
master for display while the parent flags hot pixels, and draws while the
parent writes the FITS product."""

from __future__ import annotations

import numpy as np

from soxs_lib.config import flags
from soxs_lib.config.errors import OutputError
from soxs_lib.runtime.child import Child, can_fork

_PIPE_BYTES = 1 << 20    # fewer context switches while the master is sent
_LEVEL = "level"         # the message of send_level


def plot_data(md, title: str) -> dict:
    """What the plot shows besides the master, as plain arrays and numbers."""
    hot = (md.qual & flags.HOT) != 0
    return dict(hot=np.packbits(hot), shape=hot.shape,     # 1/8 of the bytes to send
                qc={r.qc.name: r.value for r in md.qc},
                failed=[r.qc.name for r in md.qc if r.passed is False],
                ksig=md.params.hot_pixel_sigma, title=title)


class PlotProcess:
    """The QC plot drawn by a forked child (``child.Child``).

    Fork it before the work it should overlap, and before any thread
    starts.  ``send_master`` passes the master as soon as it is stacked,
    ``send_level`` its level once hot pixels are found (if it may),
    ``submit`` the rest and the file to write; ``wait`` returns when the file
    is written or raises OutputError with the child's reason; ``cancel`` ends
    the child.  Where fork is not available the plot is drawn in-process."""

    def __init__(self, fork: bool = True):
        self._child = self._figure = self.path = None
        if fork and can_fork():
            self._child = Child(_draw_sent, inbox=True, pipe_bytes=_PIPE_BYTES)

    @property
    def pid(self) -> int | None:
        """The plotting child's process id; None when drawing in-process."""
        return None if self._child is None else self._child.pid

    def send_master(self, flux: np.ndarray, region) -> None:
        """The master as stacked (NaN where it has no data) and the detector
        region it covers (first row, last row + 1, first column, last + 1)."""
        if self._child is None:
            from soxs_lib.pipeline import plot
            self._figure = plot.figure_for(flux.shape)
            self._figure.show_master(flux, region)
        else:
            self._child.send((flux, region))     # a dead child: wait() tells why

    def send_level(self, med: float, rms: float, ksig: float) -> None:
        """The master's median and robust scatter (e-) and the hot threshold
        in sigmas, as soon as hot pixels are found: the histogram is drawn
        while QC goes on (else ``submit`` draws it)."""
        if self._child is None:
            self._figure.show_histogram(med, rms, ksig)
        else:
            self._child.send((_LEVEL, med, rms, ksig))

    def submit(self, data: dict, path) -> None:
        """What QC found (``plot_data``) and the PNG file to write."""
        self.path = path
        if self._child is None:
            from soxs_lib.pipeline import plot
            plot.draw(self._figure, data, path)
            return
        self._child.send((data, str(path)))
        self._child.close_inbox()

    def wait(self) -> None:
        """Return once the PNG is written.

        Raises
        ------
        OutputError
            The plot could not be drawn, with the child's reason.
        """
        if self._child is None or self._child.pid is None:
            return
        try:
            self._child.result()
        except Exception as exc:   # noqa: BLE001 - whatever failed, the plot is missing
            raise OutputError(f"{self.path}: the QC plot could not be drawn "
                              f"({type(exc).__name__}: {exc})") from None

    def cancel(self) -> None:
        """End the child, if it still runs (a no-op once the plot is written)."""
        if self._child is not None:
            self._child.cancel()


def _draw_sent(inbox) -> None:
    """In the plotting child: show the master, its histogram if its level
    comes first, draw; quietly nothing if the parent gives up.  The renderer is imported once the master arrives: while
    the parent starts, the other core is the stacking process's."""
    try:
        master = inbox.receive()
        from soxs_lib.pipeline import plot
        figure = plot.figure_for(master[0].shape)
        figure.show_master(*master)
        got = inbox.receive()
        if got[0] == _LEVEL:
            figure.show_histogram(*got[1:])
            got = inbox.receive()
    except EOFError:
        return
    plot.draw(figure, *got)
