"""The QC plot: the master with a robust stretch, its histogram with the hot
threshold, and the map of hot pixels, laid out for the detector's shape.

Drawn with Pillow on ``canvas`` panels: a figure costs a few hundredths of a
second, so ``plotter.PlotProcess`` draws it in a forked child while the
parent finishes the product, and the run does not wait for it.
"""

from __future__ import annotations

from dataclasses import dataclass
import warnings

import numpy as np

from soxs_lib.pipeline.canvas import PAPER, Panel, font, nice_ticks, tick_text

MAX_DISPLAY = 512    # display pixels per axis (a panel is ~350 pixels wide)
GREY_BARS, BLUE, RED = (77, 77, 77), (31, 119, 180), (214, 39, 40)
NO_DATA = (120, 160, 255)                        # a master pixel without data
NOT_HOT, HOT = (255, 245, 240), (103, 0, 13)


def import_renderer() -> None:
    """Import what the plot needs, for a process that forks plotters (a
    ``reduce all`` worker): each then starts with it loaded."""
    font(11)


def _blocks(a: np.ndarray, f: int) -> np.ndarray:
    """The f x f blocks of ``a`` as rows of the last axis (a copy)."""
    r, c = (a.shape[0] // f) * f, (a.shape[1] // f) * f
    blocks = a[:r, :c].reshape(r // f, f, c // f, f).swapaxes(1, 2)
    return blocks.reshape(r // f, c // f, f * f)


def display_factor(shape) -> int:
    """The binning that fits an image of ``shape`` in ``MAX_DISPLAY`` pixels."""
    return max(1, -(-max(shape) // MAX_DISPLAY))


# display rows of blocks sorted at a time: the copy sorted is a band of the
# master (2 MB of a NIR one), its memory reused from band to band, not a copy
# of the whole master in new memory
_BAND_ROWS = 64


def reduce_master(flux: np.ndarray) -> tuple[np.ndarray, int]:
    """The master as stacked (NaN where it has no data), binned for display
    by f x f medians of the pixels with data; (image, f)."""
    f = display_factor(flux.shape)
    if f == 1:
        return flux, f
    nrows = flux.shape[0] // f
    shown = np.empty((nrows, flux.shape[1] // f), np.float32)
    for r in range(0, nrows, _BAND_ROWS):
        band = flux[r * f:min(r + _BAND_ROWS, nrows) * f]
        _band_medians(np.sort(_blocks(band, f), axis=-1), shown[r:r + _BAND_ROWS])
    return shown, f


def _band_medians(blocks: np.ndarray, out: np.ndarray) -> None:
    """The median of the values with data of each sorted block into ``out``
    (one sort instead of np.median's partitions)."""
    n = blocks.shape[-1]
    np.multiply(0.5, blocks[..., (n - 1) // 2] + blocks[..., n // 2], out=out)
    holes = np.isnan(blocks[..., -1])              # NaN sorts last
    if holes.any():          # blocks with pixels without data
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN: shown as NaN
            out[holes] = np.nanmedian(blocks[holes], axis=-1)


@dataclass(frozen=True)
class Layout:
    """How the three panels share the figure, for a detector's shape."""

    size: tuple               # (width, height), pixels
    spaces: dict              # panel -> (x0, y0, x1, y1) it may fill; images keep their shape
    image_xticks: int         # at most this many x ticks on an image panel
    title_break: str          # between the parts of a long panel title


# "wide": an image about as wide as tall (NIR 2040 x 2040) fills a row of
# three panels; "tall": a detector much taller than wide (VIS 808 x 4096)
# gets tall image panels side by side, the histogram beside them
LAYOUTS = {
    "wide": Layout((1280, 470), dict(master=(60, 80, 400, 410), hist=(580, 80, 895, 410),
                                     hot=(955, 80, 1265, 410)), 5, " "),
    "tall": Layout((1040, 780), dict(master=(60, 115, 250, 715), hot=(350, 115, 540, 715),
                                     hist=(660, 115, 1020, 715)), 4, "\n"),
}


def layout_for(shape) -> str:
    """The name of the layout of ``LAYOUTS`` for a master of ``shape``
    (rows, columns)."""
    return "tall" if shape[0] > 2 * shape[1] else "wide"


def _fit(space: tuple, rows: float, cols: float) -> tuple:
    """The largest box of the image's shape in ``space``, centred, at its top."""
    x0, y0, x1, y1 = space
    scale = min((x1 - x0) / cols, (y1 - y0) / rows)
    w, h = max(1, round(cols * scale)), max(1, round(rows * scale))
    left = x0 + (x1 - x0 - w) // 2
    return left, y0, left + w, y0 + h


class QCFigure:
    """The figure in steps: the master's panel and colour bar as soon as the
    master is stacked, its histogram once its level is known, then ``draw``
    adds what QC found and writes it.

    Parameters
    ----------
    layout : str
        A name of ``LAYOUTS`` (``layout_for`` the master's shape).
    """

    def __init__(self, layout: str = "wide"):
        from PIL import Image
        self.layout = LAYOUTS[layout]
        self.image = Image.new("RGB", self.layout.size, PAPER)
        self.panels: dict[str, Panel] = {}

    def _image_panel(self, name: str, rgb: np.ndarray, title: list) -> Panel:
        x0, x1, y0, y1 = self.extent
        panel = Panel(self.image, _fit(self.layout.spaces[name], y1 - y0, x1 - x0),
                      (x0, x1), (y0, y1))
        panel.image(rgb)
        panel.frame()
        for axis, most in (("x", self.layout.image_xticks), ("y", 6)):
            lo, hi = (x0, x1) if axis == "x" else (y0, y1)
            ticks = nice_ticks(lo, hi, most)
            step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
            labels = [tick_text(t, step) for t in ticks]
            (panel.xticks if axis == "x" else panel.yticks)(ticks, labels)
        panel.labels("x (raw frame pixels)", "y", title)
        self.panels[name] = panel
        return panel

    def show_master(self, flux: np.ndarray, region) -> None:
        """Draw the stacked master (NaN where no data), binned for display, in
        the detector coordinates of ``region``, with its colour bar."""
        shown, f = reduce_master(flux)
        # the histogram's pixels, not copied: NaN (no data) fall outside every bin
        self.values = flux.reshape(-1)
        self.nvalues = int(np.count_nonzero(np.isfinite(self.values)))
        self.factor = f
        r0, _, c0, _ = region
        # axes in detector pixels of the raw frame, whatever the display binning
        self.extent = (c0 - 0.5, c0 + shown.shape[1] * f - 0.5,
                       r0 - 0.5, r0 + shown.shape[0] * f - 0.5)
        finite = shown[np.isfinite(shown)]
        lo, hi = np.percentile(finite, [0.5, 99.5]) if finite.size else (0.0, 1.0)
        hi = hi if hi > lo else lo + 1.0
        with np.errstate(invalid="ignore"):
            grey = np.clip((shown - lo) / (hi - lo) * 255.0, 0, 255)
        rgb = np.repeat(np.nan_to_num(grey).astype(np.uint8)[..., None], 3, axis=2)
        rgb[~np.isfinite(shown)] = NO_DATA
        binned = f"{self.layout.title_break}({f}x{f} medians)" if f > 1 else ""
        title = f"master dark{binned}\nstretch: 0.5-99.5 percentile".split("\n")
        master = self._image_panel("master", rgb, title)
        x0, y0, x1, y1 = master.box
        bar = Panel(self.image, (x1 + 8, y0, x1 + 22, y1), (0.0, 1.0), (lo, hi))
        ramp = np.linspace(0, 255, 256).astype(np.uint8)[:, None, None]
        bar.image(np.repeat(np.repeat(ramp, 3, axis=2), 2, axis=1))
        bar.frame()
        ticks = nice_ticks(lo, hi, 6)
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
        bar.yticks(ticks, [tick_text(t, step) for t in ticks], right=True)
        right = max((b[2] for _, b in bar.texts), default=x1 + 22)
        bar.vtext("ylabel", (right + 10, (y0 + y1) / 2), "e-")
        self.panels["colorbar"] = bar

    def show_histogram(self, med: float, rms: float, ksig: float) -> None:
        """Draw the histogram of the master shown (``show_master``) with its
        median ``med`` and the hot threshold, ``ksig`` times its robust
        scatter ``rms`` above it (e-)."""
        _histogram(self, med, rms, ksig)


def histogram_edges(values: np.ndarray, lo: float, hi: float, nbins: int = 200) -> np.ndarray:
    """Bin edges from ``lo`` to about ``hi``, some ``nbins`` bins.

    A master of few frames takes only values on a lattice (the gain times a
    whole number of ADU, over the number of frames): there the bins are a
    whole number of lattice steps wide with edges between lattice points, so
    that no bin is empty, or doubly full, only for where the lattice falls.

    Parameters
    ----------
    values : numpy.ndarray
        The values to be binned (NaN are left out).
    lo, hi : float
        The range to cover.
    nbins : int
        The number of bins aimed at.

    Returns
    -------
    numpy.ndarray
        Increasing edges; the first is at most ``lo``, the last at least ``hi``.
    """
    width = (hi - lo) / nbins
    inside = values[(values > lo) & (values < hi)]
    sample = inside[:: max(1, inside.size // 100_000)]
    points, counts = np.unique(sample, return_counts=True)
    if points.size < 10 or points.size > sample.size / 4:     # not on a lattice
        return np.linspace(lo, hi, nbins + 1)
    # pixels clipped to fewer frames sit on other lattices: the most frequent
    # values, about the mode, are those of the pixels that kept every frame
    top = np.sort(points[np.argsort(counts)[-5:]])
    step = float(np.median(np.diff(top)))
    width = max(1, round(width / step)) * step
    start = top[0] + (np.floor((lo - top[0]) / step) - 0.5) * step
    return start + width * np.arange(int(np.ceil((hi - start) / width)) + 1)


def _histogram(qcf: QCFigure, med: float, rms: float, ksig: float) -> None:
    values = qcf.values
    thresh = med + ksig * rms
    span = max(10 * rms, thresh - med + 5 * rms)
    edges = histogram_edges(values, med - span, med + 2 * span)
    # the edges are evenly spaced: numpy's equal-width binning, not a search
    # of every value among the edges
    counts, _ = np.histogram(values, bins=edges.size - 1, range=(edges[0], edges[-1]))
    counts[0] += np.count_nonzero(values < edges[0])    # the end bins hold the rest
    counts[-1] += np.count_nonzero(values > edges[-1])
    top = max(2.0, counts.max()) * 1.5
    panel = Panel(qcf.image, qcf.layout.spaces["hist"], (edges[0], edges[-1]), (0.7, top),
                  ylog=True)
    xs, ys = panel.x_px(edges), panel.y_px(np.maximum(counts, 0.7))
    for k in np.flatnonzero(counts):
        panel.draw.rectangle((xs[k], ys[k], xs[k + 1], panel.box[3]), fill=GREY_BARS)
    x0, y0, x1, y1 = panel.box
    panel.draw.line([(panel.x_px(med), y0), (panel.x_px(med), y1)], fill=BLUE, width=2)
    xt = panel.x_px(thresh)
    for y in range(y0, y1, 8):                                  # dashed
        panel.draw.line([(xt, y), (xt, min(y + 5, y1))], fill=RED, width=2)
    panel.frame()
    ticks = nice_ticks(edges[0], edges[-1], 6)
    panel.xticks(ticks, [tick_text(t, ticks[1] - ticks[0]) for t in ticks])
    powers = [10.0 ** k for k in range(0, int(np.floor(np.log10(top))) + 1)]
    panel.yticks(powers, [f"{p:,.0f}" for p in powers])
    panel.labels("master dark signal (e-); the end bins hold everything beyond", "pixels",
                 [f"histogram of {qcf.nvalues} pixels with data"])
    legend = [(BLUE, f"median {med:.2f} e-"),
              (RED, f"hot threshold {thresh:.2f} e- ({ksig:g} x {rms:.2f})")]
    width = max(font(10).getlength(text) for _, text in legend) + 40
    lx = x1 - 6 - width
    panel.draw.rectangle((lx, y0 + 6, x1 - 6, y0 + 10 + 16 * len(legend)), fill=PAPER,
                         outline=(204, 204, 204))
    for k, (colour, text) in enumerate(legend):
        y = y0 + 16 + 16 * k
        panel.draw.line([(lx + 6, y), (lx + 30, y)], fill=colour, width=2)
        panel.text("legend", (lx + 36, y), text, size=10, anchor="lm")
    qcf.panels["hist"] = panel


def draw(qcf: QCFigure, d: dict, path) -> None:
    """Complete the figure with what QC found and write it as PNG."""
    qc, f = d["qc"], qcf.factor
    if "hist" not in qcf.panels:
        qcf.show_histogram(qc["MDARK MEDIAN"], qc["MDARK RMS"], d["ksig"])
    hot = np.unpackbits(d["hot"], count=np.prod(d["shape"])).reshape(d["shape"]).view(bool)
    shown = np.any(_blocks(hot, f), axis=-1) if f > 1 else hot
    rgb = np.empty(shown.shape + (3,), np.uint8)
    rgb[...] = NOT_HOT
    rgb[shown] = HOT
    brk = qcf.layout.title_break
    title = (f"hot pixels: {int(qc['HOTPIX NUM'])} ({100 * qc['HOTPIX FRAC']:.3f}%)"
             f"{f'{brk}(any in a {f}x{f} bin)' if f > 1 else ''}")
    qcf._image_panel("hot", rgb, title.split("\n"))
    status = "QC FAIL: " + ", ".join(d["failed"]) if d["failed"] else "QC PASS"
    head = Panel(qcf.image, (0, 0, qcf.layout.size[0], 0), (0, 1), (0, 1))
    head.text("suptitle", (qcf.layout.size[0] / 2, 10), f"{d['title']}   {status}", size=14,
              anchor="ma", fill=RED if d["failed"] else (0, 0, 0))
    qcf.image.save(path, format="png", compress_level=1)


def figure_for(shape) -> QCFigure:
    """A figure laid out for a master of ``shape``."""
    return QCFigure(layout_for(shape))
