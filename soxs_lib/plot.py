"""The QC plot: the master with a robust stretch, its histogram with the hot
threshold, and the map of hot pixels.

Drawn on a bare ``Figure`` with a fixed layout: pyplot's state and the
constrained-layout solver cost more than the drawing itself.  Importing
matplotlib and drawing take about as long as making the master, so
``PlotProcess`` does both in a forked child: it imports while the parent
stacks and draws while the parent writes the FITS product.
"""

from __future__ import annotations

import os
import pickle
import signal

import numpy as np

from . import flags
from .errors import OutputError
from .mdark import MasterDark

MAX_DISPLAY = 512    # display pixels per axis (a panel is ~350 pixels wide)


def _matplotlib():
    import matplotlib
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    return Figure, FigureCanvasAgg


def _bin(a: np.ndarray, f: int, how) -> np.ndarray:
    """Reduce f x f blocks with ``how`` along the last axis."""
    r, c = (a.shape[0] // f) * f, (a.shape[1] // f) * f
    blocks = a[:r, :c].reshape(r // f, f, c // f, f).swapaxes(1, 2)
    return how(blocks.reshape(r // f, c // f, f * f), axis=-1)


def plot_data(md: MasterDark, title: str) -> dict:
    """What the plot shows, as plain arrays and numbers (sent to the child)."""
    return dict(flux=md.flux, hot=(md.qual & flags.HOT) != 0,
                good=(md.qual & flags.NODATA) == 0, region=md.region,
                qc={r.qc.name: r.value for r in md.qc},
                failed=[r.qc.name for r in md.qc if r.passed is False],
                ksig=md.params["hot_pixel_sigma"], title=title)


def draw(d: dict, path) -> None:
    Figure, FigureCanvasAgg = _matplotlib()
    qc, flux, hot = d["qc"], d["flux"], d["hot"]
    med, rms = qc["MDARK MEDIAN"], qc["MDARK RMS"]
    ksig = d["ksig"]
    thresh = med + ksig * rms
    f = max(1, -(-max(flux.shape) // MAX_DISPLAY))
    shown = _bin(flux, f, np.median) if f > 1 else flux
    hot_shown = _bin(hot, f, np.any) if f > 1 else hot
    r0, _, c0, _ = d["region"]
    # axes in detector pixels of the raw frame, whatever the display binning
    extent = (c0 - 0.5, c0 + shown.shape[1] * f - 0.5, r0 - 0.5, r0 + shown.shape[0] * f - 0.5)
    binned = f" ({f}x{f} medians)" if f > 1 else ""

    fig = Figure(figsize=(16, 5.6), dpi=80)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3, gridspec_kw=dict(left=0.04, right=0.985, bottom=0.1,
                                               top=0.84, wspace=0.28))
    lo, hi = np.percentile(shown, [0.5, 99.5])
    im = axes[0].imshow(shown, origin="lower", cmap="gray", vmin=lo, vmax=hi,
                        interpolation="nearest", extent=extent)
    fig.colorbar(im, ax=axes[0], label="e-", shrink=0.85, pad=0.02)
    axes[0].set_title(f"master dark{binned}\nstretch: 0.5-99.5 percentile")

    good = flux[d["good"]]
    span = max(10 * rms, thresh - med + 5 * rms)
    edges = np.linspace(med - span, med + 2 * span, 201)
    counts, _ = np.histogram(np.clip(good, edges[0], edges[-1]), bins=edges)
    axes[1].stairs(counts, edges, fill=True, color="0.3")
    axes[1].set_yscale("log")
    axes[1].set_ylim(0.7, max(2.0, counts.max()) * 1.5)
    axes[1].axvline(med, color="C0", label=f"median {med:.2f} e-")
    axes[1].axvline(thresh, color="C3", ls="--",
                    label=f"hot threshold {thresh:.2f} e- ({ksig:g} x {rms:.2f})")
    axes[1].set_xlabel("master dark signal (e-); the end bins hold everything beyond")
    axes[1].set_ylabel("pixels")
    axes[1].legend(loc="upper right", fontsize=8)
    axes[1].set_title(f"histogram of {good.size} pixels with data")

    axes[2].imshow(hot_shown, origin="lower", cmap="Reds", interpolation="nearest",
                   extent=extent, vmin=0, vmax=1)
    axes[2].set_title(f"hot pixels: {int(qc['HOTPIX NUM'])} "
                      f"({100 * qc['HOTPIX FRAC']:.3f}%)"
                      f"{' (any in a %dx%d bin)' % (f, f) if f > 1 else ''}")
    for ax in (axes[0], axes[2]):
        ax.set_xlabel("x (raw frame pixels)")
        ax.set_ylabel("y")
    status = "QC FAIL: " + ", ".join(d["failed"]) if d["failed"] else "QC PASS"
    fig.suptitle(f"{d['title']}   {status}", color="C3" if d["failed"] else "black")
    fig.savefig(path, format="png")


class PlotProcess:
    """The QC plot drawn by a forked child.

    Fork it before the work it should overlap (and, in the command line,
    before any thread starts); ``submit`` sends the data and the file to
    write, ``wait`` returns when the file is written or raises OutputError
    with the child's reason; ``cancel`` ends the child.  Where fork is not
    available the plot is drawn in-process by ``submit``."""

    def __init__(self):
        self.pid = None
        if not hasattr(os, "fork"):
            return
        job_r, job_w = os.pipe()
        res_r, res_w = os.pipe()
        pid = os.fork()
        if pid == 0:                                  # the child
            os.close(job_w)
            os.close(res_r)
            _child(job_r, res_w)
        os.close(job_r)
        os.close(res_w)
        self.pid, self._job, self._result = pid, job_w, res_r

    def submit(self, data: dict, path) -> None:
        self.path = path
        if self.pid is None:
            draw(data, path)
            return
        try:
            with os.fdopen(self._job, "wb") as fh:
                pickle.dump((data, str(path)), fh, protocol=pickle.HIGHEST_PROTOCOL)
        except BrokenPipeError:       # the child died; wait() tells why
            pass

    def wait(self) -> None:
        if self.pid is None:
            return
        with os.fdopen(self._result, "rb") as fh:
            reason = fh.read().decode(errors="replace").strip()
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        if status != 0 or reason:
            raise OutputError(f"{self.path}: the QC plot could not be drawn "
                              f"({reason or 'plotting process ended with status %d' % status})")

    def cancel(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.pid = None
            for fd in (self._job, self._result):
                try:
                    os.close(fd)
                except OSError:
                    pass


def _child(job_fd: int, result_fd: int) -> None:
    """Import matplotlib, wait for a job, draw it; never returns."""
    status = 0
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)        # die with the parent's run
        _matplotlib()
        with os.fdopen(job_fd, "rb") as fh:
            job = fh.read()
        if job:                                       # empty: the parent gave up
            data, path = pickle.loads(job)
            draw(data, path)
    except BaseException as exc:                      # reported by the parent
        os.write(result_fd, f"{type(exc).__name__}: {exc}".encode()[:2000])
        status = 1
    finally:
        os._exit(status)
