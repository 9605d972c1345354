"""The QC plot: the master with a robust stretch, its histogram with the hot
threshold, and the map of hot pixels.

Drawn on a bare ``Figure`` with a fixed layout: pyplot's state, the
constrained-layout solver and automatic title placement would cost more than
the drawing itself.  Importing matplotlib and drawing are long next to making
the master, so ``plotter.PlotProcess`` does both in a forked child.
"""

from __future__ import annotations

from dataclasses import dataclass
import warnings

import numpy as np

from soxs_lib.config import flags

MAX_DISPLAY = 512    # display pixels per axis (a panel is ~350 pixels wide)


def import_matplotlib(spare: bool = False) -> None:
    """Import what the plot needs, for a process that forks plotters.

    Parameters
    ----------
    spare : bool
        Also build a figure skeleton with its tick artists, for a process
        that forks many plotters (a ``reduce all`` worker): each starts from
        its own copy of it instead of building one.
    """
    _matplotlib()
    if spare and not _SPARE:
        for name in LAYOUTS:
            _SPARE[name] = QCFigure(name)
            for axis in _SPARE[name].axes_to_tick():
                axis.get_major_ticks(_SPARE_TICKS)


def _matplotlib():
    import matplotlib
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    return Figure, FigureCanvasAgg


def _blocks(a: np.ndarray, f: int) -> np.ndarray:
    """The f x f blocks of ``a`` as rows of the last axis (a copy)."""
    r, c = (a.shape[0] // f) * f, (a.shape[1] // f) * f
    blocks = a[:r, :c].reshape(r // f, f, c // f, f).swapaxes(1, 2)
    return blocks.reshape(r // f, c // f, f * f)


def display_factor(shape) -> int:
    """The binning that fits an image of ``shape`` in ``MAX_DISPLAY`` pixels."""
    return max(1, -(-max(shape) // MAX_DISPLAY))


def reduce_master(flux: np.ndarray) -> tuple[np.ndarray, int]:
    """The master as stacked (NaN where it has no data), binned for display
    by f x f medians of the pixels with data; (image, f)."""
    f = display_factor(flux.shape)
    if f == 1:
        return flux, f
    blocks = np.sort(_blocks(flux, f), axis=-1)    # one sort instead of np.median's partitions
    n = f * f
    shown = 0.5 * (blocks[..., (n - 1) // 2] + blocks[..., n // 2])
    holes = np.isnan(blocks[..., -1])              # NaN sorts last
    if holes.any():          # blocks with pixels without data
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN: shown as NaN
            shown[holes] = np.nanmedian(blocks[holes], axis=-1)
    return shown, f


def plot_data(md, title: str) -> dict:
    """What the plot shows besides the master, as plain arrays and numbers."""
    hot = (md.qual & flags.HOT) != 0
    return dict(hot=np.packbits(hot), shape=hot.shape,     # 1/8 of the bytes to send
                qc={r.qc.name: r.value for r in md.qc},
                failed=[r.qc.name for r in md.qc if r.passed is False],
                ksig=md.params.hot_pixel_sigma, title=title)


@dataclass(frozen=True)
class Layout:
    """How the three panels share the figure, for a detector's shape."""

    figsize: tuple            # inches at 80 dpi
    grid: dict                # the subplots' gridspec: margins, widths
    order: tuple              # the column of the master, the histogram, the hot map
    image_xticks: int | None  # at most this many x ticks on an image panel
    title_break: str          # between the parts of a long panel title


# "wide": an image about as wide as tall (NIR 2040 x 2040) fills a row of
# three panels; "tall": a detector much taller than wide (VIS 808 x 4096)
# gets tall image panels side by side, the histogram beside them
LAYOUTS = {
    "wide": Layout((16, 5.6), dict(left=0.04, right=0.985, bottom=0.1, top=0.84,
                                   wspace=0.28), (0, 1, 2), None, " "),
    "tall": Layout((13, 9.5), dict(left=0.05, right=0.985, bottom=0.07, top=0.86,
                                   wspace=0.45, width_ratios=(1.25, 1.0, 2.6)),
                   (0, 2, 1), 3, "\n"),
}


def layout_for(shape) -> str:
    """The name of the layout of ``LAYOUTS`` for a master of ``shape``
    (rows, columns)."""
    return "tall" if shape[0] > 2 * shape[1] else "wide"


class QCFigure:
    """The figure in steps: the skeleton (axes, labels, colour bar) and the
    image panel as soon as the master is stacked, then ``draw`` adds what QC
    found and renders.  Nothing is rendered ahead: on two cores no core is
    idle while the master is made.

    Parameters
    ----------
    layout : str
        A name of ``LAYOUTS`` (``layout_for`` the master's shape).
    """

    def __init__(self, layout: str = "wide"):
        Figure, FigureCanvasAgg = _matplotlib()
        self.layout = lay = LAYOUTS[layout]
        fig = self.fig = Figure(figsize=lay.figsize, dpi=80)
        FigureCanvasAgg(fig)
        columns = fig.subplots(1, 3, gridspec_kw=lay.grid)
        self.axes = axes = [columns[k] for k in lay.order]
        self.image = axes[0].imshow(np.zeros((2, 2)), origin="lower", cmap="gray",
                                    interpolation="nearest")
        self.colorbar = fig.colorbar(self.image, ax=axes[0], label="e-", shrink=0.85,
                                     pad=0.02)
        axes[1].set_xlabel("master dark signal (e-); the end bins hold everything beyond")
        axes[1].set_ylabel("pixels")
        self.hot = axes[2].imshow(np.zeros((2, 2), bool), origin="lower", cmap="Reds",
                                  interpolation="nearest", vmin=0, vmax=1)
        for ax in (axes[0], axes[2]):
            ax.set_xlabel("x (raw frame pixels)")
            ax.set_ylabel("y")
            if lay.image_xticks:           # narrow panels: labels that never overlap
                from matplotlib.ticker import MaxNLocator
                ax.xaxis.set_major_locator(MaxNLocator(lay.image_xticks))

    def show_master(self, flux: np.ndarray, region) -> None:
        """Show the stacked master (NaN where no data), binned for display,
        in the detector coordinates of ``region``."""
        shown, f = reduce_master(flux)
        self.values = flux[np.isfinite(flux)]       # the histogram's pixels
        self.factor = f
        r0, _, c0, _ = region
        # axes in detector pixels of the raw frame, whatever the display binning
        extent = (c0 - 0.5, c0 + shown.shape[1] * f - 0.5,
                  r0 - 0.5, r0 + shown.shape[0] * f - 0.5)
        finite = shown[np.isfinite(shown)]
        lo, hi = np.percentile(finite, [0.5, 99.5]) if finite.size else (0.0, 1.0)
        self.image.set_data(shown)
        self.image.set_clim(lo, hi)
        self.hot.set_data(np.zeros(shown.shape, bool))
        for im, ax in ((self.image, self.axes[0]), (self.hot, self.axes[2])):
            im.set_extent(extent)
            ax.set_xlim(extent[:2])
            ax.set_ylim(extent[2:])
        binned = f"{self.layout.title_break}({f}x{f} medians)" if f > 1 else ""
        self.axes[0].set_title(f"master dark{binned}\nstretch: 0.5-99.5 percentile",
                               **_TITLE)
        # make the tick artists now, while the parent still computes QC, so
        # the final render (which the run waits for) does not
        axes = self.axes_to_tick()
        for axis in axes[:-2]:       # the image panels and colour bar: as many as shown
            axis.get_major_ticks(len(axis.get_majorticklocs()))
        for axis in axes[-2:]:       # the histogram's, whose limits come with QC
            axis.get_major_ticks(_HIST_TICKS)

    def axes_to_tick(self) -> list:
        """Every axis with ticks: the image panels', the colour bar's, then
        the histogram's two."""
        return [a for ax in (self.axes[0], self.axes[2]) for a in (ax.xaxis, ax.yaxis)] \
            + [self.colorbar.ax.yaxis, self.axes[1].xaxis, self.axes[1].yaxis]


_TITLE = dict(y=1.0, pad=6)     # fixed: no layout pass to place titles
_HIST_TICKS = 9                 # about as many as the histogram's axes get
_SPARE_TICKS = 12               # at least as many as any axis gets
_SPARE: dict = {}               # layout -> QCFigure (import_matplotlib); forked plotters draw on them


def draw(qcf: QCFigure, d: dict, path) -> None:
    """Complete the figure with what QC found and write it as PNG."""
    from matplotlib.ticker import NullLocator, StrMethodFormatter
    qc, f, values, axes = d["qc"], qcf.factor, qcf.values, qcf.axes
    med, rms = qc["MDARK MEDIAN"], qc["MDARK RMS"]
    ksig = d["ksig"]
    thresh = med + ksig * rms
    span = max(10 * rms, thresh - med + 5 * rms)
    counts, edges = np.histogram(values, bins=200, range=(med - span, med + 2 * span))
    counts[0] += np.count_nonzero(values < edges[0])    # the end bins hold the rest
    counts[-1] += np.count_nonzero(values > edges[-1])
    axes[1].stairs(counts, edges, fill=True, color="0.3")
    axes[1].set_yscale("log")
    axes[1].yaxis.set_minor_locator(NullLocator())
    axes[1].yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))  # not mathtext
    axes[1].set_xlim(edges[0], edges[-1])
    axes[1].set_ylim(0.7, max(2.0, counts.max()) * 1.5)
    axes[1].axvline(med, color="C0", label=f"median {med:.2f} e-")
    axes[1].axvline(thresh, color="C3", ls="--",
                    label=f"hot threshold {thresh:.2f} e- ({ksig:g} x {rms:.2f})")
    axes[1].legend(loc="upper right", fontsize=8)
    axes[1].set_title(f"histogram of {values.size} pixels with data", **_TITLE)

    hot = np.unpackbits(d["hot"], count=np.prod(d["shape"])).reshape(d["shape"]).view(bool)
    qcf.hot.set_data(np.any(_blocks(hot, f), axis=-1) if f > 1 else hot)
    brk = qcf.layout.title_break
    axes[2].set_title(f"hot pixels: {int(qc['HOTPIX NUM'])} "
                      f"({100 * qc['HOTPIX FRAC']:.3f}%)"
                      f"{f'{brk}(any in a {f}x{f} bin)' if f > 1 else ''}", **_TITLE)
    status = "QC FAIL: " + ", ".join(d["failed"]) if d["failed"] else "QC PASS"
    qcf.fig.suptitle(f"{d['title']}   {status}", color="C3" if d["failed"] else "black")
    qcf.fig.savefig(path, format="png", pil_kwargs={"compress_level": 1})


def figure_for(shape) -> QCFigure:
    """A figure laid out for a master of ``shape``: this process's copy of
    the spare one (``import_matplotlib(spare=True)``) if there is one."""
    layout = layout_for(shape)
    return _SPARE.get(layout) or QCFigure(layout)
