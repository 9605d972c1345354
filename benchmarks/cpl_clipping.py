#!/usr/bin/env python3
"""Why the default is not CPL's image-list clipping: cosmic-ray residuals and
noise of CPL's collapse methods against soxs_mdark's kernel, on synthetic NIR
darks with a known truth.

    python benchmarks/cpl_clipping.py [--frames 5,15] [--cosmics 300] [--md PATH]

Needs PyCPL (``import cpl``) beside this package.  For each number of frames
it simulates NIR darks (hot pixels on the real X-Shooter NIR bad-pixel map
when ``../shared`` is there, cosmic-ray hits in every frame), converts them to
electrons as the recipe does, and stacks them with

- ``ImageList.collapse_sigclip_create(3, 3, 0.5, mode)``, mode MEAN, MEDIAN
  and MEDIAN_MEAN (what ``stack_method = cpl`` uses, with kappa 3 here);
- ``ImageList.collapse_median_create()``;
- soxs_mdark's kernel (``stack_method = soxs``, defaults).

Against the truth it reports, over pixels hit by a cosmic ray (not hot, not
saturated), how many stay more than 5 sigma off and the worst, in units of
the truth's own uncertainty of the mean of n frames; and, over pixels never
hit, the scatter of (master - truth) in those units (1.00 is all the truth
allows).
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
import tempfile

import numpy as np

try:
    import cpl.core
except ImportError:
    sys.exit("cpl_clipping.py needs PyCPL (import cpl); install it from ESO's package index")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from soxs_lib.config import flags, params  # noqa: E402
from soxs_lib.io import frames  # noqa: E402
from soxs_lib.config import qc  # noqa: E402
from soxs_lib.core.mdark import make_master_dark  # noqa: E402
from soxs_lib.io.simulate import simulate_darks  # noqa: E402

BPM = ROOT.parent / "shared" / "data" / "xshooter_static_bpm" / "BP_MAP_RP_NIR.fits.gz"
MEDIAN_MEAN = cpl.core.ImageList.Collapse(2)   # PyCPL 1.0.3 binds the name to MEDIAN


def _imagelist(frames_e):
    images = []
    for data, excluded in frames_e:
        image = cpl.core.Image(data)
        image.reject_from_mask(cpl.core.Mask(excluded))
        images.append(image)
    return cpl.core.ImageList(images)


def sigclip(mode):
    def combine(frames_e, _kappa):
        return _imagelist(frames_e).collapse_sigclip_create(3.0, 3.0, 0.5, mode)
    return combine


def median(frames_e, _kappa):
    n = len(frames_e)
    image = _imagelist(frames_e).collapse_median_create()
    return image, np.full(np.asarray(image).shape, n)


METHODS = {
    "CPL sigclip MEAN": sigclip(cpl.core.ImageList.Collapse.MEAN),
    "CPL sigclip MEDIAN": sigclip(cpl.core.ImageList.Collapse.MEDIAN),
    "CPL sigclip MEDIAN_MEAN": sigclip(MEDIAN_MEAN),
    "CPL median": median,
    "soxs kernel (default)": None,
}


def measure(truth, md) -> tuple[int, int, float, float]:
    """(hit pixels, of them > 5 sigma off, worst sigma, noise / truth's)."""
    n = len(truth.paths)
    sigma = truth.single_frame_noise / np.sqrt(n)
    z = (md.flux - truth.dark) / sigma
    usable = ~truth.hot & ~truth.saturated & ((md.qual & flags.NODATA) == 0)
    hit = np.zeros(truth.dark.size, bool)
    for c in truth.cosmics:
        hit[c] = True
    hit = hit.reshape(truth.dark.shape)
    zh = np.abs(z[hit & usable])
    clean = usable & ~hit
    return int(zh.size), int((zh > 5).sum()), float(zh.max()), float(np.std(z[clean]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", default="5,15", help="numbers of frames (default 5,15)")
    ap.add_argument("--cosmics", type=int, default=300, help="hits per frame (300)")
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--md", help="also write the table in Markdown to this file")
    a = ap.parse_args(argv)
    rows = []
    for n in (int(x) for x in a.frames.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            truth = simulate_darks(Path(tmp), arm="NIR", nframes=n, seed=a.seed,
                                   cosmics_per_frame=a.cosmics,
                                   pattern=BPM if BPM.exists() else None)
            for name, combine in METHODS.items():
                values = params.resolve({"stack_method": "soxs" if combine is None else "cpl"})
                with frames.load_frameset(frames.collect_inputs([str(Path(tmp) / "mdark.sof")])) as fs:
                    md = make_master_dark(fs, values, qc.default_ranges("NIR"), combine=combine)
                hits, off, worst, noise = measure(truth, md)
                rows.append((f"{n}", name, f"{hits}", f"{off} ({100 * off / hits:.0f}%)",
                             f"{worst:.0f}", f"{noise:.2f}"))
                print(" | ".join(rows[-1]), flush=True)
    head = ("frames", "method", "pixels hit", "> 5 sigma off", "worst sigma",
            "noise / truth's")
    table = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    table += ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join(table)
    print()
    print(text)
    if a.md:
        Path(a.md).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
