"""The QC plot: the master with a robust stretch, its histogram with the hot
threshold, and the map of hot pixels."""

from __future__ import annotations

import numpy as np

from . import flags
from .mdark import MasterDark

MAX_DISPLAY = 1024   # display pixels per axis: bin larger images for speed


def _bin(a: np.ndarray, f: int, how) -> np.ndarray:
    r, c = (a.shape[0] // f) * f, (a.shape[1] // f) * f
    return how(a[:r, :c].reshape(r // f, f, c // f, f), axis=(1, 3))


def write_qc_plot(md: MasterDark, path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    qc = {r.qc.name: r.value for r in md.qc}
    med, rms = qc["MDARK MEDIAN"], qc["MDARK RMS"]
    thresh = med + md.params["hot_pixel_sigma"] * rms
    f = max(1, -(-max(md.flux.shape) // MAX_DISPLAY))
    shown = _bin(md.flux, f, np.median) if f > 1 else md.flux
    hot = (md.qual & flags.HOT) != 0
    hot_shown = _bin(hot, f, np.any) if f > 1 else hot

    fig, axes = plt.subplots(1, 3, figsize=(16, 5.6), constrained_layout=True)
    lo, hi = np.percentile(shown, [0.5, 99.5])
    im = axes[0].imshow(shown, origin="lower", cmap="gray", vmin=lo, vmax=hi,
                        interpolation="nearest")
    fig.colorbar(im, ax=axes[0], label="e-", shrink=0.8)
    axes[0].set_title(f"master dark{' (binned %dx%d, median)' % (f, f) if f > 1 else ''}\n"
                      "stretch: 0.5-99.5 percentile")
    good = md.flux[(md.qual & flags.NODATA) == 0]
    span = max(10 * rms, thresh - med + 5 * rms)
    bins = np.linspace(med - span, med + 2 * span, 200)
    axes[1].hist(np.clip(good, bins[0], bins[-1]), bins=bins, color="0.3", log=True)
    axes[1].axvline(med, color="C0", label=f"median {med:.2f} e-")
    axes[1].axvline(thresh, color="C3", ls="--",
                    label=f"hot threshold {thresh:.2f} e- "
                          f"({md.params['hot_pixel_sigma']:g} x {rms:.2f})")
    axes[1].set_xlabel("master dark signal (e-); ends hold everything beyond")
    axes[1].set_ylabel("pixels")
    axes[1].legend(loc="upper right", fontsize=8)
    axes[1].set_title("histogram")
    axes[2].imshow(hot_shown, origin="lower", cmap="Reds", interpolation="nearest")
    axes[2].set_title(f"hot pixels: {int(qc['HOTPIX NUM'])} "
                      f"({100 * qc['HOTPIX FRAC']:.3f}%)"
                      f"{' (any in %dx%d bin)' % (f, f) if f > 1 else ''}")
    for ax in (axes[0], axes[2]):
        ax.set_xlabel("x (science region)")
        ax.set_ylabel("y")
    status = "QC PASS" if md.qc_passed else "QC FAIL"
    fig.suptitle(f"{title}   {status}", color="black" if md.qc_passed else "C3")
    fig.savefig(path, dpi=80, format="png")
    plt.close(fig)
