"""One timed run of a tool on a case, as a child process measured end to end:
``soxs mdark``, ``soxspipe mdark``, ESO's ``hawki_cal_dark`` and the floor.
A run counts only if it exits with success and its product is whole."""

from __future__ import annotations

from pathlib import Path
import re
import shutil

from cases import RAW_SHAPE, Case
from fitsscan import fits_hdus, fits_image_shape
from peers import ANSI, HERE, PY, SOXS, WORK, Run, run_measured, tail


def run_soxs(case: Case, rep: int, timeout: float, options=()) -> Run:
    """``soxs mdark`` on the case's SOF, with ``options`` (``--name=value``)."""
    wd = WORK / case.name / "soxs"
    shutil.rmtree(wd / "products", ignore_errors=True)
    shutil.rmtree(wd / "qc", ignore_errors=True)
    wd.mkdir(parents=True, exist_ok=True)
    logp = wd / f"run{rep}.log"
    rc, wall, rss = run_measured([SOXS, "mdark", case.sof, "-o", wd, "-x", *options], wd, logp,
                                 timeout)
    products = [p for p in (wd / "products" / "soxs_mdark").glob("*.fits")]
    if rc not in (0, 5) or not products:
        return Run(False, rc, wall, rss, f"exit {rc}, product {'found' if products else 'missing'}"
                   f"\n{tail(logp)}")
    hdus = fits_hdus(products[0])
    flux = [shape for hdr, shape in hdus or [] if hdr.get("EXTNAME") == "FLUX"]
    if not flux:
        return Run(False, rc, wall, rss, f"product {products[0].name} incomplete or without FLUX")
    case.master_shape = case.master_shape or flux[0]
    return Run(True, rc, wall, rss, "QC FAIL (exit 5)" if rc == 5 else "",
               timeline(next((wd / "products" / "soxs_mdark").glob("*_log.txt"), None)),
               str(products[0]))


PHASES = ("import", "read", "statistics", "stacking", "hot pixels and QC", "write", "plot")


def timeline(log_path: Path | None) -> dict:
    """The phases of a soxs run from its log's ``timeline:`` line, s."""
    text = log_path.read_text() if log_path else ""
    m = re.search(r"timeline: (.*)", text)
    if not m:
        return {}
    return {k.strip(): float(v) for k, v in
            (re.match(r"(.*) ([0-9.]+) s$", part.strip()).groups()
             for part in m.group(1).split(";"))}


def run_soxspipe(case: Case, rep: int, timeout: float, exe: Path, settings: Path) -> Run:
    # soxspipe wants its settings as ./soxspipe.yaml in the folder it runs in
    # (it reopens that path after the recipe), an existing output folder, and a
    # SOF whose paths are absolute (or relative to the cwd); it names the
    # product after the SOF, taking the night from a leading YYYYmmddTHHMMSS.
    wd = WORK / case.name / "soxspipe"
    for sub in ("out", "sessions"):
        shutil.rmtree(wd / sub, ignore_errors=True)
    (wd / "out").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(settings, wd / "soxspipe.yaml")
    sofname = f"20260111T082924_{case.arm}_MDARK_{case.n}.sof"
    tag = f"DARK_{case.arm}"
    (wd / sofname).write_text("".join(f"{p.resolve()} {tag}\n" for p in case.sp_files))
    logp = wd / f"run{rep}.log"
    rc, wall, rss = run_measured([exe, "mdark", sofname, "-o", "out", "-s", "soxspipe.yaml",
                                  "-x"], wd, logp, timeout)
    products = list((wd / "out" / "reduced").glob(f"**/soxs-mdark/{Path(sofname).stem}.fits"))
    text = ANSI.sub("", logp.read_text(errors="replace"))
    if rc != 0 or not products or fits_image_shape(products[0]) is None:
        return Run(False, rc, wall, rss, f"exit {rc}, product {'found' if products else 'missing'}"
                   f"\n{tail(logp)}")
    m = re.search(r"QC values are outside of the acceptable limits: ([^.\n]*)", text)
    return Run(True, rc, wall, rss, f"QC FAIL ({m.group(1).strip()})" if m else "",
               product=str(products[0]))


def run_hawki(case: Case, rep: int, timeout: float) -> Run:
    wd = WORK / case.name / "hawki"
    shutil.rmtree(wd / "out", ignore_errors=True)
    (wd / "out").mkdir(parents=True, exist_ok=True)
    (wd / "dark.sof").write_text("".join(f"{p.resolve()} DARK\n" for p in case.hawki_files))
    logp = wd / f"run{rep}.log"
    rc, wall, rss = run_measured(["esorex", f"--output-dir={wd / 'out'}", f"--log-dir={wd}",
                                  "hawki_cal_dark", "dark.sof"], wd, logp, timeout)
    product = wd / "out" / "hawki_cal_dark.fits"
    if rc != 0 or not product.exists() or fits_image_shape(product) is None:
        return Run(False, rc, wall, rss, f"exit {rc}, product "
                   f"{'found' if product.exists() else 'missing'}\n{tail(logp)}")
    return Run(True, rc, wall, rss)


def run_floor(case: Case, rep: int, timeout: float) -> Run:
    wd = WORK / case.name / "floor"
    wd.mkdir(parents=True, exist_ok=True)
    out = wd / "floor_product.fits"
    out.unlink(missing_ok=True)
    ny, nx = case.master_shape or RAW_SHAPE[case.arm]
    logp = wd / f"run{rep}.log"
    rc, wall, rss = run_measured([PY, HERE / "floor.py", out, ny, nx] + list(case.files),
                                 wd, logp, timeout)
    if rc != 0 or not out.exists():
        return Run(False, rc, wall, rss, f"exit {rc}\n{tail(logp)}")
    return Run(True, rc, wall, rss)
