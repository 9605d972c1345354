"""The QC plot: the master with a robust stretch, its histogram with the hot
threshold, and the map of hot pixels.

Drawn on a bare ``Figure`` with a fixed layout: pyplot's state and the
constrained-layout solver cost more than the drawing itself.  Importing
matplotlib is the slowest part, so ``preload`` starts it in a thread while
the frames are being stacked (the stacking kernel releases the GIL).
"""

from __future__ import annotations

import threading

import numpy as np

from . import flags
from .mdark import MasterDark

MAX_DISPLAY = 1024   # display pixels per axis: bin larger images for speed


def _import():
    import matplotlib
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # noqa: F401
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401


def preload() -> threading.Thread:
    """Import matplotlib in the background (a second import waits for it)."""
    t = threading.Thread(target=_import, name="soxs-plot-import", daemon=True)
    t.start()
    return t


def _bin(a: np.ndarray, f: int, how) -> np.ndarray:
    r, c = (a.shape[0] // f) * f, (a.shape[1] // f) * f
    return how(a[:r, :c].reshape(r // f, f, c // f, f), axis=(1, 3))


def write_qc_plot(md: MasterDark, path, title: str) -> None:
    _import()
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    qc = {r.qc.name: r.value for r in md.qc}
    med, rms = qc["MDARK MEDIAN"], qc["MDARK RMS"]
    ksig = md.params["hot_pixel_sigma"]
    thresh = med + ksig * rms
    f = max(1, -(-max(md.flux.shape) // MAX_DISPLAY))
    shown = _bin(md.flux, f, np.median) if f > 1 else md.flux
    hot = (md.qual & flags.HOT) != 0
    hot_shown = _bin(hot, f, np.any) if f > 1 else hot
    r0, _, c0, _ = md.region
    # axes in detector pixels of the raw frame, whatever the display binning
    extent = (c0 - 0.5, c0 + shown.shape[1] * f - 0.5, r0 - 0.5, r0 + shown.shape[0] * f - 0.5)
    binned = f" (shown binned {f}x{f})" if f > 1 else ""

    fig = Figure(figsize=(16, 5.6), dpi=80)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3, gridspec_kw=dict(left=0.04, right=0.985, bottom=0.1,
                                               top=0.84, wspace=0.28))
    lo, hi = np.percentile(shown, [0.5, 99.5])
    im = axes[0].imshow(shown, origin="lower", cmap="gray", vmin=lo, vmax=hi,
                        interpolation="nearest", extent=extent)
    fig.colorbar(im, ax=axes[0], label="e-", shrink=0.85, pad=0.02)
    axes[0].set_title(f"master dark{binned}\nstretch: 0.5-99.5 percentile")

    good = md.flux[(md.qual & flags.NODATA) == 0]
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
    status = "QC PASS" if md.qc_passed else "QC FAIL: " + ", ".join(
        r.qc.name for r in md.qc if r.passed is False)
    fig.suptitle(f"{title}   {status}", color="black" if md.qc_passed else "C3")
    fig.savefig(path, format="png")
