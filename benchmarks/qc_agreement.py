"""QC agreement: the QC values of ``soxs mdark`` and of soxspipe 0.19.0's
``mdark`` beside the truth, on the same simulated sets (NIR and VIS, several
EXPTIMEs, 3 to 15 frames), so an operator who switches pipelines knows what
the QC monitor's trend lines will do.

    .venv/bin/python benchmarks/qc_agreement.py --sp-exe EXE --sp-settings YAML [--json PATH]

Per set: MDARK MEDIAN; RAW RON as soxs measures it (the temporal noise of a
frame less the dark's shot noise) and by 0.19.0's definition (the standard
deviation of the difference of the first two frames after a 10-sigma
median/MAD clip, over sqrt 2; computed here on the same frames and gain, and
by soxspipe itself); MASTER RON; HOTPIX NUM and FRAC.  The truth is the
simulator's: the median true dark signal, its read noise, the noise of one
master pixel (median over pixels of sqrt(RON^2 + dark) / sqrt(N)), and the
hot pixels injected, all of them and those more than 5 sigma above the
master's pixel-to-pixel scatter (the ones a 5-sigma detector can see).

Then soxspipe's own master-dark lookup (``soxspipe_lookup.py``, in its
environment) on a NIR master soxs wrote with ``--product_catg=MASTER_DARK``.
Run as its own process by ``bench_mdark.py`` (it holds whole frames in memory,
which would inflate the benchmark's RSS figures).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
import statistics
import subprocess
import sys

from astropy.io import fits
from astropy.stats import sigma_clip
import numpy as np

from cases import Case
from peers import DATA, HERE, VENV_SP, WORK, log
from runs import run_soxs, run_soxspipe
from soxs_lib.config.detector import detector
from soxs_lib.io.simulate import simulate_darks

# (arm, frames, EXPTIME s, seed)
SETS = (("NIR", 3, 60.0, 301), ("NIR", 5, 300.0, 302), ("NIR", 15, 300.0, 303),
        ("NIR", 5, 900.0, 304), ("VIS", 3, 600.0, 305), ("VIS", 5, 1800.0, 306),
        ("VIS", 15, 300.0, 307))
METRICS = ("MDARK MEDIAN", "RAW RON", "RAW RON pair", "MASTER RON", "HOTPIX NUM",
           "HOTPIX FRAC")
DETECT_SIGMA = 5.0
TIMEOUT = 1800.0


def truth_values(truth, n: int) -> dict:
    """What the simulator put in, in the units of the QC."""
    npix = truth.dark.size
    normal = truth.dark[~truth.hot]
    pixel_noise = float(np.median(truth.single_frame_noise)) / math.sqrt(n)
    scatter = math.hypot(float(np.std(normal)), pixel_noise)
    seen = int(np.count_nonzero(truth.excess > DETECT_SIGMA * scatter))
    injected = int(truth.hot.sum())
    return {"MDARK MEDIAN": float(np.median(truth.dark)), "RAW RON": truth.ron,
            "RAW RON pair": truth.ron, "MASTER RON": pixel_noise,
            "HOTPIX NUM": f"{injected} ({seen})",
            "HOTPIX FRAC": f"{injected / npix:.5f} ({seen / npix:.5f})"}


def pair_difference_ron(files: list[Path], arm: str) -> float:
    """The RAW RON of soxspipe 0.19.0 on these frames: the first two by MJD-OBS,
    in electrons over the science region, their difference clipped at 10
    sigma (median, MAD), its standard deviation over sqrt 2."""
    det = detector(arm)
    first = sorted(files, key=lambda f: fits.getval(f, "MJD-OBS"))[:2]
    data = []
    for f in first:
        with fits.open(f) as h:
            binx, biny = h[0].header.get("ESO DET BINX", 1), h[0].header.get("ESO DET BINY", 1)
            r0, r1, c0, c1 = det.science_region(binx, biny)
            data.append(h[0].data[r0:r1, c0:c1].astype(np.float64) * det.gain)
    diff = data[0] - data[1]
    clipped = sigma_clip(diff, sigma=10, maxiters=2, cenfunc="median", stdfunc="mad_std")
    return float(np.ma.std(clipped)) / math.sqrt(2)


def header_qc(path: str) -> dict:
    h = fits.getheader(path)
    return {m: h.get(f"ESO QC {m}") for m in METRICS if f"ESO QC {m}" in h}


def measure(arm: str, n: int, exptime: float, seed: int, sp_exe, sp_settings) -> dict:
    """One set simulated, reduced by both pipelines; its rows and files."""
    folder = DATA / "qc" / f"{arm}{n}_{exptime:g}s"
    truth = simulate_darks(folder, arm=arm, nframes=n, exptime=exptime, seed=seed)
    case = Case(arm, n, sof=folder / "mdark.sof", files=truth.paths, sp_files=truth.paths)
    soxs = run_soxs(case, 0, TIMEOUT, ("--product_catg=MASTER_DARK",))
    spipe = run_soxspipe(case, 0, TIMEOUT, sp_exe, sp_settings) if sp_exe else None
    ours = header_qc(soxs.product) if soxs.ok else {}
    ours["RAW RON pair"] = pair_difference_ron(truth.paths, arm)
    theirs = header_qc(spipe.product) if spipe and spipe.ok else {}
    theirs["RAW RON pair"] = theirs.pop("RAW RON", None)
    return {"set": f"{arm} {n} x {exptime:g} s", "truth": truth_values(truth, n),
            "soxs": ours, "soxspipe": theirs, "product": soxs.product,
            "raws": [str(p) for p in truth.paths], "arm": arm,
            "notes": [r.note.splitlines()[0] for r in (soxs, spipe) if r and r.note]}


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:.0f}" if float(value).is_integer() and abs(value) > 10 else f"{value:.4g}"


def rows_of(results: list[dict]) -> tuple[list, list]:
    head = ["set", "metric", "truth (5σ-visible)", "soxs", "soxspipe 0.19.0"]
    rows = []
    for r in results:
        for k, m in enumerate(METRICS):
            label = {"RAW RON": "RAW RON (soxs: temporal less shot noise)",
                     "RAW RON pair": "RAW RON (0.19.0: pair difference / √2)"}.get(m, m)
            rows.append([r["set"] if k == 0 else "", label, _fmt(r["truth"][m]),
                         _fmt(r["soxs"].get(m)), _fmt(r["soxspipe"].get(m))])
    return head, rows


def errors_of(results: list[dict]) -> tuple[list, list]:
    """Median relative error to the truth per metric and arm, over the sets."""
    head = ["metric", "arm", "soxs median |error|", "soxspipe 0.19.0 median |error|"]
    rows = []
    for m in ("MDARK MEDIAN", "RAW RON", "RAW RON pair", "MASTER RON", "HOTPIX NUM"):
        for arm in ("NIR", "VIS"):
            cells = [m + (" (to the 5σ-visible)" if m == "HOTPIX NUM" else ""), arm]
            for tool in ("soxs", "soxspipe"):
                errs = [abs(r[tool][m] / _truth_number(r["truth"][m]) - 1) for r in results
                        if r["arm"] == arm and r[tool].get(m) is not None]
                err = statistics.median(errs) if errs else None
                cells.append("-" if err is None else f"{100 * err:.1f} %" if err < 10
                             else "> 1000 % (bias not removed)")
            rows.append(cells)
    return head, rows


def _truth_number(value) -> float:
    """A truth as a number: for hot pixels, those a 5-sigma detector sees."""
    return float(value.split("(")[1].rstrip(")")) if isinstance(value, str) else value


def lookup(results: list[dict], sp_settings) -> dict | None:
    """The lookup of soxspipe on the first NIR master soxs wrote."""
    nir = next((r for r in results if r["arm"] == "NIR" and r["product"]), None)
    python = VENV_SP / "bin" / "python"
    if nir is None or not python.exists():
        return None
    ws = WORK / "qc_lookup"
    ws.mkdir(parents=True, exist_ok=True)
    res = subprocess.run([str(python), str(HERE / "soxspipe_lookup.py"), str(sp_settings),
                          str(ws), nir["product"], *nir["raws"]],
                         capture_output=True, text=True, cwd=ws)
    if res.returncode != 0:
        return {"error": res.stderr.strip()[-600:]}
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["set"], out["product"] = nir["set"], Path(nir["product"]).name
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sp-exe", help="soxspipe's executable (none: soxs and the truth only)")
    ap.add_argument("--sp-settings", help="soxspipe's settings file")
    ap.add_argument("--json", default=str(WORK / "qc_agreement.json"))
    ap.add_argument("--md", default=str(WORK / "qc_agreement.md"),
                    help="the tables in Markdown, for bench_mdark's results")
    a = ap.parse_args(argv)
    a.sp_exe = Path(a.sp_exe).resolve() if a.sp_exe else None
    a.sp_settings = Path(a.sp_settings).resolve() if a.sp_settings else None
    results = []
    for arm, n, exptime, seed in SETS:
        log(f"QC agreement: {arm} {n} x {exptime:g} s ...")
        results.append(measure(arm, n, exptime, seed, a.sp_exe, a.sp_settings))
    found = lookup(results, a.sp_settings) if a.sp_exe else None
    Path(a.json).write_text(json.dumps({"results": results, "lookup": found}, indent=1,
                                       default=str))
    from tables import format_md, format_text
    log(format_text(*rows_of(results)))
    log("")
    log(format_text(*errors_of(results), grouped=False))
    said = lookup_text(found)
    log(said)
    Path(a.md).write_text(format_md(*rows_of(results)) + "\n\n" + format_md(*errors_of(results))
                          + f"\n\n{said}\n")
    return 0


def lookup_text(found: dict | None) -> str:
    """One line on soxspipe's lookup of the master dark soxs wrote."""
    if not found:
        return "soxspipe's lookup: not run (no soxspipe or no NIR product)"
    if "error" in found:
        return f"soxspipe's lookup FAILED: {found['error']}"
    chosen = [Path(p).name for p in found["selected"]]
    ok = found["product"] in chosen and found["source"] == "master dark" and \
        found["read_noise"] == found["header_raw_ron"]
    return (f"soxspipe 0.19.0's own lookup ({found['set']}, soxs mdark --product_catg="
            f"MASTER_DARK): master darks selected {chosen}; resolve_read_noise: "
            f"{found['read_noise']:.4f} e- from the {found['source']} (N = "
            f"{found['n_combined']}); the product's QC RAW RON {found['header_raw_ron']:.4f} "
            f"e-: {'taken as is' if ok else 'NOT taken'}")


if __name__ == "__main__":
    sys.exit(main())
