"""The recipe's man page, generated from the declarations the code uses, so
``pyesorex --man-page soxs_mdark`` and ``soxs mdark --help`` cannot disagree
with what runs."""

from __future__ import annotations

from soxs_lib.config import flags, params, keywords as kw
from soxs_lib.config import qc
from soxs_lib.config.detector import detectors

SYNOPSIS = "Stack raw SOXS dark frames into a master dark with hot-pixel flags and QC"


def description() -> str:
    """The man page text: inputs, parameters, method, products, QC."""
    lines = [
        "Stacks at least {n} raw dark frames of one arm (NIR or VIS), taken with the same".format(
            n=kw.MIN_FRAMES),
        "exposure time, readout mode, binning and window, into a master dark in electrons,",
        "with a per-pixel uncertainty (ERR) and quality flags (QUAL) marking hot pixels.",
        "",
        "Input frames:",
    ]
    for tag, group, content, least in kw.INPUTS:
        lines.append(f"  {tag:<16} {group:<5} {content}" + (f", at least {least}" if least
                                                              else ""))
    lines += ["", "Parameters (full name soxs.soxs_mdark.<name>, command-line alias <name>):"]
    for p in params.PARAMETERS:
        lines.append(f"  {p.name} ({p.type.__name__}, default {p.default}, "
                     f"{'one of' if p.choices else 'range'} {p.allowed}):")
        lines.append(f"      {p.description}.")
    lines += ["", "Method:",
              "  Each frame is converted to electrons with its gain and trimmed to the arm's",
              "  science region; VIS frames lose their bias level (overscan or master bias).",
              "  Frame clipping: each frame's level and robust sigma come from iterative",
              "  clipping about its median (frame_clipping_sigma, _iterations); a frame",
              "  without usable data (constant, no valid pixel) is left out, counted in",
              f"  ESO QC NRAW DROPPED; fewer than {kw.MIN_FRAMES} remaining is an error.",
              "  A sample that is rogue in its frame and departs from its pixel's non-rogue",
              "  samples by more than frame_clipping_sigma noise sigmas is rejected (cosmic",
              "  rays), while a hot pixel, rogue in every frame but steady, keeps its samples.",
              "  Stacked clipping: per pixel, iterative rejection beyond stacked_clipping_sigma",
              "  noise sigmas of the stack median (stacked_clipping_iterations); the noise",
              "  sigma is the temporal noise of one frame (from frame differences) plus the",
              "  Poisson noise of the pixel's own dark signal.  The master is the mean of the",
              "  surviving samples; ERR is the noise over the root of their number.",
              "  Hot pixels lie more than hot_pixel_sigma robust sigmas of the master above its",
              "  median; they keep their measured signal.  NaN/inf and saturated samples are",
              "  excluded; a pixel without valid sample gets the median, flagged NODATA.",
              "  Detector parameters: "
              + "; ".join(f"{a}: gain {d.gain} e-/ADU, science columns {d.science_columns}, "
                          f"rows {d.science_rows}" for a, d in detectors().items()),
              "", "Products:",
              "  DARK_<ARM> (PRO CATG; PRO TYPE REDUCED, PRO TECH IMAGE): primary header with",
              f"  QC, extensions {kw.EXT_FLUX} (float32, e-), {kw.EXT_QUAL} (int32 flags), "
              f"{kw.EXT_ERR} (float32, e-).",
              "  QUAL bits:"]
    lines += [f"    {bit:>3}  {meaning}" for bit, meaning in flags.MEANINGS.items()]
    lines += ["", "Why the default is not CPL's image-list clipping (stack_method):",
              "  A single outlier among n samples lies at most (n-1)/sqrt(n) sample standard",
              "  deviations from their mean (1.8 at n=5) and sqrt(n) from their median (2.2):",
              "  it inflates the scatter it is measured against, so a 3-sigma clip on the",
              "  stack's own scatter never rejects it.  On 5 synthetic NIR darks with 300",
              "  cosmic-ray hits per frame, ImageList.collapse_sigclip_create(3, 3, 0.5, mode)",
              "  leaves 99% of the hit pixels more than 5 sigma off (worst about 1200 sigma)",
              "  in every mode; collapse_median_create leaves none but 20% more noise than",
              "  the truth allows; the soxs kernel, clipping on the measured noise model,",
              "  leaves none at the truth's noise.  At 15 frames CPL's MEDIAN and MEDIAN_MEAN",
              "  clipping are as clean.  SOXS and X-Shooter NIR darks come in sets of 3 to 5.",
              "  benchmarks/cpl_clipping.py measures this with PyCPL.",
              "", "QC keywords (acceptable ranges; settings can override them):"]
    for q in qc.QC_DEFS:
        rng = ", ".join(f"{arm} [{lo:g}, {hi:g}]" for arm, (lo, hi) in q.ranges.items()) or "-"
        unit = f" [{q.unit}]" if q.unit else ""
        lines.append(f"  {q.keyword}{unit}: {q.description}; range: {rng}")
    return "\n".join(lines) + "\n"
