#!/usr/bin/env python3
"""Speed and memory of ``soxs mdark`` against its peers, on the same raw darks.

Peers, each run as a child process and measured end to end (wall time, and the
child's own peak RSS from ``os.wait4``):

- ``soxspipe mdark`` (soxspipe 0.17.4 from PyPI, in its own venv
  ``benchmarks/venv-soxspipe``), on the very files ``soxs mdark`` reads;
- ESO's C recipe ``hawki_cal_dark`` through ``esorex`` (Debian packages
  ``esorex`` and ``cpl-plugin-hawki``) on synthetic HAWK-I darks with about the
  same number of pixel-frames as the NIR case (a HAWK-I frame has 4 chips of
  2048x2048);
- the floor: a minimal python process that imports numpy and astropy, reads
  every input frame fully and writes a 3-extension product of the master's
  size with checksums.

The runs of one case alternate between the tools (the order rotates from one
repetition to the next).  A run counts only if its exit status is a success
(``soxs``: 0, or 5 = products written but a QC metric out of range) *and* its
product exists afterwards; ``soxspipe`` exits 0 even when its recipe fails, so
its product is what decides.  Failed runs are reported, never timed.

    make bench                                    # full run, ~6 minutes on 2 cores (first run: + installs, data)
    .venv/bin/python benchmarks/bench_mdark.py --quick
    .venv/bin/python benchmarks/bench_mdark.py --cases NIR5,VIS15 --repeat 5
    .venv/bin/python benchmarks/bench_mdark.py --cases NIR15,NIR15gz,NIR15fz --tools soxs,floor

A case ``NIR15gz`` (``fz``) reads the same frames as ``NIR15`` gzip-compressed
(tile-compressed with fpack's default, Rice); soxspipe and hawki_cal_dark are
run on plain frames only.
    .venv/bin/python benchmarks/bench_mdark.py --tools soxs,floor --md

Generated raws go to ``benchmarks/data/``, work folders to ``benchmarks/work/``
(both git-ignored); the environment (OPENBLAS_* included) is passed unchanged
to every tool.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from peers import (ANSI, DATA, HERE, PY, SOXS, WORK, Run, ensure_hawki, ensure_soxspipe, log,
                   peer_versions, run_measured, soxspipe_default_settings, tail)

RAW_SHAPE = {"NIR": (2048, 2048), "VIS": (4096, 908)}      # (NAXIS2, NAXIS1)
HAWKI_CHIP = (2048, 2048)
HAWKI_NCHIP = 4
DEFAULT_CASES = "NIR5,NIR15,NIR15gz,NIR15fz,NIR40,VIS5,VIS15"
FORMS = ("gz", "fz")              # archive forms of a case's raw frames
QUICK_CASES = "NIR5,VIS5"
ALL_TOOLS = ("soxs", "soxspipe", "hawki", "floor")

# Keywords soxspipe 0.17.4's mdark needs in the raw frames: removing any one
# of them from the simulator's frames (found by experiment) leaves soxspipe
# without a master dark -- and it still exits 0.  The temperatures feed its QC
# table but their absence aborts the recipe.  Values are used only if the
# simulator's frames lack a keyword (the benchmark then patches copies for
# soxspipe, and says so); None = taken from the frame or the arm.
SOXSPIPE_REQUIRED = {
    "INSTRUME": "SOXS",
    "ESO SEQ ARM": None,
    "ESO DPR CATG": "CALIB",
    "ESO DPR TYPE": "DARK",
    "ESO DPR TECH": "IMAGE",
    "EXPTIME": None,
    "DATE-OBS": None,
    "ESO INS TEMP301 VAL": 12.0,            # common-path temperature, C
}
SOXSPIPE_REQUIRED_ARM = {
    "NIR": {"ESO INS TEMP217 VAL": 40.0},   # NIR detector temperature, K
    "VIS": {"ESO INS TEMP104 VAL": -110.0,  # VIS detector temperature, C
            "ESO DET BINX": 1, "ESO DET BINY": 1},
}
# read when present (gain, read noise, read mode); soxspipe falls back to its
# detector file without them
SOXSPIPE_OPTIONAL = ["ESO DET OUT1 CONAD", "ESO DET OUT1 GAIN", "ESO DET CHIP RON",
                     "ESO DET READ CURID", "MJD-OBS"]



def packed_raws(arm: str, n: int, form: str) -> tuple[Path, list[Path]]:
    """The simulated darks of ``arm``/``n`` gzip- or tile-compressed (made once)."""
    plain_sof, plain = soxs_raws(arm, n)
    d = DATA / f"{arm}_{n}_{form}"
    suffix = {"gz": ".fits.gz", "fz": ".fits.fz"}[form]
    files = [d / (f.name[: -len(".fits")] + suffix) for f in plain]
    sof = d / "mdark.sof"
    if not (sof.exists() and all(f.exists() for f in files)):
        import gzip
        from astropy.io import fits
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        log(f"compressing {n} {arm} darks ({form}) in {d} ...")
        for src, dst in zip(plain, files, strict=True):
            if form == "gz":
                dst.write_bytes(gzip.compress(src.read_bytes(), compresslevel=6))
            else:
                with fits.open(src) as h:
                    fits.HDUList([fits.PrimaryHDU(header=h[0].header),
                                  fits.CompImageHDU(h[0].data, compression_type="RICE_1")]
                                 ).writeto(dst)
        sof.write_text("".join(f"{f.name} DARK_{arm}\n" for f in files))
    return sof, files


def soxs_raws(arm: str, n: int) -> tuple[Path, list[Path]]:
    """The project's simulated darks (generated once, reused)."""
    d = DATA / f"{arm}_{n}"
    sof = d / "mdark.sof"
    files = []
    if sof.exists():
        files = [d / l.split()[0] for l in sof.read_text().splitlines() if l.strip()]
    if len(files) != n or not all(f.exists() for f in files):
        shutil.rmtree(d, ignore_errors=True)
        log(f"simulating {n} {arm} darks in {d} ...")
        subprocess.run([SOXS, "simulate", "--arm", arm, "-n", str(n), "-o", d],
                       check=True, stdout=subprocess.DEVNULL)
        files = [d / l.split()[0] for l in sof.read_text().splitlines() if l.strip()]
    return sof, files




def hawki_raws(m: int) -> list[Path]:
    """``m`` HAWK-I-format raw darks: primary header + 4 float32 2048x2048
    image extensions CHIP1.INT1 .. CHIP4.INT1 (generated once, reused).
    hawki_cal_dark needs ESO DET DIT, NDIT, NDSAMPLES in the primary header,
    EXTNAME CHIPn.INT1 on the extensions, and at least 3 frames."""
    d = DATA / f"HAWKI_{m}"
    files = [d / f"HAWKI_DARK_{i + 1:03d}.fits" for i in range(m)]
    if all(f.exists() and fits_hdus(f) for f in files):
        return files
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    log(f"writing {m} HAWK-I-format darks in {d} ...")
    subprocess.run([PY, HERE / "hawki_raws.py", str(d), str(m)], check=True)
    return files




def check_soxspipe_headers(arm: str, files: list[Path], workdir: Path) -> tuple[list[Path], list[str]]:
    """Files soxspipe can read: the originals, or patched copies if the
    simulator's headers lack a keyword soxspipe needs.  Returns (files, notes)."""
    need = dict(SOXSPIPE_REQUIRED, **SOXSPIPE_REQUIRED_ARM[arm])
    missing, optional = set(), set()
    for f in files:
        hdus = fits_hdus(f)
        h = hdus[0][0] if hdus else {}
        missing |= {k for k in need if k not in h}
        optional |= {k for k in SOXSPIPE_OPTIONAL if k not in h}
    notes = [f"{k} (optional for soxspipe)" for k in sorted(optional)]
    if not missing:
        return files, notes
    d = workdir / "patched_raw"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    out = [d / f.name for f in files]
    job = {"arm": arm, "cards": {k: need[k] for k in missing},
           "files": [[str(f), str(o)] for f, o in zip(files, out, strict=True)]}
    subprocess.run([PY, HERE / "patch_headers.py", json.dumps(job)], check=True)
    return out, notes + [f"{k} (patched into soxspipe's copies)" for k in sorted(missing)]


# --------------------------------------------------------------------------- tools


@dataclass
class Case:
    arm: str
    n: int
    form: str = ""                                # "", or one of FORMS
    sof: Path = None
    files: list = field(default_factory=list)
    sp_files: list = field(default_factory=list)
    sp_notes: list = field(default_factory=list)
    hawki_files: list = field(default_factory=list)
    master_shape: tuple = None
    runs: dict = field(default_factory=dict)      # tool -> [Run]

    @property
    def name(self) -> str:
        return f"{self.arm}{self.n}{self.form}"

    @property
    def label(self) -> str:
        ny, nx = RAW_SHAPE[self.arm]
        return f"{self.arm} {self.n}x{nx}x{ny}" + (f" .{self.form}" if self.form else "")

    def mpx(self, tool: str) -> float:
        if tool == "hawki":
            return len(self.hawki_files) * HAWKI_NCHIP * HAWKI_CHIP[0] * HAWKI_CHIP[1] / 1e6
        ny, nx = RAW_SHAPE[self.arm]
        return self.n * ny * nx / 1e6

    def frames(self, tool: str) -> str:
        if tool == "hawki":
            return f"{len(self.hawki_files)}x4x{HAWKI_CHIP[1]}x{HAWKI_CHIP[0]}"
        ny, nx = RAW_SHAPE[self.arm]
        return f"{self.n}x{nx}x{ny}"


def _card_value(text: str):
    text = text.strip()
    if text.startswith("'"):
        end = text.find("'", 1)
        while end != -1 and text[end + 1:end + 2] == "'":
            end = text.find("'", end + 2)
        return text[1:end].replace("''", "'").rstrip()
    text = text.split("/", 1)[0].strip()
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return {"T": True, "F": False}.get(text, text)


def _read_header(f) -> tuple[dict, int] | None:
    """(keywords, bytes read) of the header at the file's position; None
    when the file ends first."""
    hdr, nread = {}, 0
    while True:
        block = f.read(2880)
        if len(block) < 2880:
            return None
        nread += 2880
        for i in range(0, 2880, 80):
            card = block[i:i + 80].decode("ascii", "replace")
            if card.startswith("END") and not card[3:].strip():
                return hdr, nread
            if card.startswith("HIERARCH ") and "=" in card:
                k, v = card[9:].split("=", 1)
                hdr[k.strip()] = _card_value(v)
            elif card[8:10] == "= ":
                hdr[card[:8].strip()] = _card_value(card[10:])


def _data_bytes(hdr: dict) -> tuple[tuple, int]:
    """(shape, bytes of data with padding) an HDU's header announces."""
    naxis = int(hdr.get("NAXIS", 0))
    shape = tuple(int(hdr[f"NAXIS{j}"]) for j in range(naxis, 0, -1))
    n = 1
    for x in shape:
        n *= x
    nbytes = (abs(int(hdr.get("BITPIX", 8))) // 8 * int(hdr.get("GCOUNT", 1))
              * ((n if naxis else 0) + int(hdr.get("PCOUNT", 0))))
    return shape, -(-nbytes // 2880) * 2880


def fits_hdus(path: Path):
    """[(header dict, shape)] of every HDU, read without astropy so that this
    process stays small (a child's ru_maxrss starts from its parent's peak
    RSS at fork/exec, so a fat parent would inflate every measurement).
    None if the file is missing, truncated or not FITS."""
    try:
        size = path.stat().st_size
        out = []
        with open(path, "rb") as f:
            pos = 0
            while pos < size:
                got = _read_header(f)
                if got is None or (not out and got[0].get("SIMPLE") is not True):
                    return None
                hdr, nread = got
                shape, nbytes = _data_bytes(hdr)
                pos += nread
                if pos + nbytes > size:
                    return None
                f.seek(nbytes, 1)
                pos += nbytes
                out.append((hdr, shape))
        return out or None
    except (OSError, ValueError, KeyError):
        return None


def fits_image_shape(path: Path):
    """Shape of the first 2-D image of a complete FITS file, else None."""
    for hdr, shape in fits_hdus(path) or []:
        if len(shape) == 2 and hdr.get("XTENSION", "IMAGE") == "IMAGE":
            return shape
    return None


def run_soxs(case: Case, rep: int, timeout: float) -> Run:
    wd = WORK / case.name / "soxs"
    shutil.rmtree(wd / "products", ignore_errors=True)
    shutil.rmtree(wd / "qc", ignore_errors=True)
    wd.mkdir(parents=True, exist_ok=True)
    logp = wd / f"run{rep}.log"
    rc, wall, rss = run_measured([SOXS, "mdark", case.sof, "-o", wd, "-x"], wd, logp, timeout)
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
               timeline(next((wd / "products" / "soxs_mdark").glob("*_log.txt"), None)))


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


def build_breakdown(cases: list[Case]):
    """Where a single ``soxs mdark`` run's time goes, per case (medians):
    the phases its log times, and the rest (interpreter start, exit)."""
    head = ["case", "total s", *PHASES, "start and exit", "soxs/floor"]
    rows = []
    for c in cases:
        runs = [r for r in c.runs.get("soxs", []) if r.ok and r.phases]
        if not runs:
            continue
        med = {k: statistics.median(r.phases.get(k, 0.0) for r in runs) for k in PHASES}
        total = statistics.median(r.wall for r in runs)
        floor = summarize(c, "floor") or {}
        rows.append([c.label, f"{total:.2f}", *(f"{med[k]:.2f}" for k in PHASES),
                     f"{statistics.median(r.wall - sum(r.phases.values()) for r in runs):.2f}",
                     ratio(total, floor.get("wall"))])
    return head, rows


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
    return Run(True, rc, wall, rss, f"QC FAIL ({m.group(1).strip()})" if m else "")


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


# ------------------------------------------------------------------------- report
def machine_info() -> list[str]:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 ** 2:.1f} GiB"
    except OSError:
        pass
    from importlib.metadata import version
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    blas = ", ".join(f"{k}={v}" for k, v in sorted(os.environ.items())
                     if k.startswith(("OPENBLAS", "OMP_", "MKL_", "NUMBA_"))) or "none set"
    return [f"machine: {cpu}; {cores} cores ({usable} usable); memory {mem}; "
            f"{platform.system()} {platform.release()}",
            f"python {platform.python_version()} ({PY}); numpy {version('numpy')}; "
            f"astropy {version('astropy')}",
            f"environment (unchanged for every tool): {blas}"]


def summarize(case: Case, tool: str):
    runs = case.runs.get(tool)
    if not runs:
        return None
    ok = [r for r in runs if r.ok]
    d = {"runs": f"{len(ok)}/{len(runs)}", "ok": bool(ok)}
    if ok:
        walls = [r.wall for r in ok]
        d["wall"] = statistics.median(walls)
        d["wmin"], d["wmax"] = min(walls), max(walls)
        d["rss"] = max(r.rss_mb for r in ok)
        d["thr"] = case.mpx(tool) / d["wall"]
    notes = sorted({r.note.splitlines()[0] for r in runs if r.note})
    d["notes"] = "; ".join(notes)
    return d


def ratio(a, b, digits: int = 2):
    return f"{a / b:.{digits}f}" if a and b else "-"


def build_table(cases: list[Case], tools: list[str]):
    head = ["case", "tool", "frames x size", "ok/runs", "median s", "min-max s",
            "peak RSS MB", "Mpx-fr", "Mpx-fr/s", "spipe/soxs t", "spipe/soxs RSS",
            "soxs/floor t", "soxs/hawki thr", "soxs/plain t", "soxs/plain RSS", "notes"]
    rows = []
    plain = {(c.arm, c.n): summarize(c, "soxs") for c in cases if not c.form}
    for c in cases:
        s = {t: summarize(c, t) for t in tools}
        soxs = s.get("soxs") or {}
        first = True
        for t in tools:
            d = s[t]
            if d is None:
                continue
            r = [c.label if first else "", t, c.frames(t), d["runs"]]
            if d["ok"]:
                r += [f"{d['wall']:.2f}", f"{d['wmin']:.2f}-{d['wmax']:.2f}",
                      f"{d['rss']:.0f}", f"{c.mpx(t):.1f}", f"{d['thr']:.1f}"]
            else:
                r += ["FAILED", "-", "-", f"{c.mpx(t):.1f}", "-"]
            if t == "soxs":
                sp = s.get("soxspipe") or {}
                fl = s.get("floor") or {}
                hk = s.get("hawki") or {}
                pl = (plain.get((c.arm, c.n)) or {}) if c.form else {}
                r += [ratio(sp.get("wall"), soxs.get("wall")),
                      ratio(sp.get("rss"), soxs.get("rss")),
                      ratio(soxs.get("wall"), fl.get("wall")),
                      ratio(soxs.get("thr"), hk.get("thr")),
                      ratio(soxs.get("wall"), pl.get("wall")),
                      ratio(soxs.get("rss"), pl.get("rss"))]
            else:
                r += ["", "", "", "", "", ""]
            r.append(d["notes"])
            rows.append(r)
            first = False
    return head, rows


def format_text(head, rows, grouped: bool = True) -> str:
    w = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    w[-1] = len(head[-1])     # notes: free width
    line = lambda r: "  ".join(str(x).ljust(w[i]) if i < 3 or i == len(r) - 1
                               else str(x).rjust(w[i]) for i, x in enumerate(r)).rstrip()
    out = [line(head), "-" * (sum(w) + 2 * (len(w) - 1))]
    prev = None
    for r in rows:
        if grouped and r[0] and prev is not None:
            out.append("")
        out.append(line(r))
        prev = r
    return "\n".join(out)


def build_summary(cases: list[Case]):
    """One row per case, the columns of the README's table (medians)."""
    head = ["case", "soxs s", "soxs RSS MB", "soxspipe s", "soxspipe RSS MB",
            "hawki_cal_dark s (frames)", "floor s", "soxspipe/soxs time", "soxspipe/soxs RSS",
            "soxs/floor", "Mpx-frames/s soxs / hawki", "soxs/plain time", "soxs/plain RSS"]
    plain = {(c.arm, c.n): summarize(c, "soxs") for c in cases if not c.form}
    rows = []
    for c in cases:
        s = {t: summarize(c, t) or {} for t in ("soxs", "soxspipe", "hawki", "floor")}
        so, sp, hk, fl = s["soxs"], s["soxspipe"], s["hawki"], s["floor"]
        pl = plain.get((c.arm, c.n)) or {} if c.form else {}

        def num(d, key, fmt):
            return format(d[key], fmt) if d.get("ok") and key in d else "-"
        ny, nx = RAW_SHAPE[c.arm]
        size = f"{nx}²" if nx == ny else f"{nx}x{ny}"
        hawki = (f"{num(hk, 'wall', '.2f')} ({len(c.hawki_files)} x 4 chips)"
                 if hk.get("ok") else "-")
        rows.append([f"{c.arm} {c.n} x {size}" + (f" .{c.form}" if c.form else ""),
                     num(so, "wall", ".2f"), num(so, "rss", ".0f"), num(sp, "wall", ".2f"),
                     num(sp, "rss", ".0f"), hawki, num(fl, "wall", ".2f"),
                     ratio(sp.get("wall"), so.get("wall"), 1),
                     ratio(sp.get("rss"), so.get("rss"), 1),
                     ratio(so.get("wall"), fl.get("wall")),
                     f"{num(so, 'thr', '.1f')} / {num(hk, 'thr', '.1f')}",
                     ratio(so.get("wall"), pl.get("wall")), ratio(so.get("rss"), pl.get("rss"))])
    return head, rows


def format_md(head, rows) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    return "\n".join(out)


# --------------------------------------------------------------------------- main
def parse_cases(text: str) -> list[Case]:
    cases = []
    for tok in text.replace(" ", "").split(","):
        m = re.fullmatch(r"(NIR|VIS)[:_x]?(\d+)(GZ|FZ)?", tok.upper())
        if not m or int(m.group(2)) < 3:
            raise SystemExit(f"bad case {tok!r}: use e.g. NIR5,NIR15,NIR15gz,NIR15fz,VIS5 "
                             "(at least 3 frames)")
        cases.append(Case(m.group(1), int(m.group(2)), (m.group(3) or "").lower()))
    return cases


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke run: cases {QUICK_CASES}, 1 repetition, no warm-up")
    ap.add_argument("--repeat", type=int, default=None, help="timed runs per tool and case (3)")
    ap.add_argument("--cases", default=None, help=f"comma-separated, default {DEFAULT_CASES}")
    ap.add_argument("--tools", default=",".join(ALL_TOOLS),
                    help="comma-separated subset of " + ",".join(ALL_TOOLS))
    ap.add_argument("--timeout", type=float, default=1800.0, help="per run, seconds")
    ap.add_argument("--night", action=argparse.BooleanOptionalAction, default=None,
                    help="the night case (default: on, off with --quick)")
    ap.add_argument("--md", nargs="?", const=str(HERE / "results.md"), default=None,
                    metavar="PATH", help="also write the table in Markdown "
                    "(default path benchmarks/results.md)")
    a = ap.parse_args(argv)
    a.repeat = a.repeat or (1 if a.quick else 3)
    a.case_list = parse_cases(a.cases or (QUICK_CASES if a.quick else DEFAULT_CASES))
    a.tool_list = [t for t in ALL_TOOLS if t in a.tools.split(",")]
    unknown = set(a.tools.split(",")) - set(ALL_TOOLS)
    if unknown or "soxs" not in a.tool_list:
        raise SystemExit(f"--tools must include soxs; unknown: {sorted(unknown)}")
    if not SOXS.exists():
        raise SystemExit(f"{SOXS} not found: run `make install` first")
    return a


@dataclass
class Peers:
    """The peers this run compares with, and what went wrong finding them."""

    tools: list
    sp_exe: Path | None = None
    sp_settings: Path | None = None
    problems: list = field(default_factory=list)
    versions: list = field(default_factory=list)


def find_peers(tools: list) -> Peers:
    peers = Peers(list(tools))
    if "soxspipe" in peers.tools:
        try:
            peers.sp_exe = ensure_soxspipe()
            peers.sp_settings = soxspipe_default_settings()
        except Exception as e:                              # reported, not fatal
            peers.problems.append(f"soxspipe unavailable: {e}")
            peers.tools.remove("soxspipe")
    if "hawki" in peers.tools and not ensure_hawki():
        peers.problems.append("esorex/hawki_cal_dark unavailable: hawki runs skipped")
        peers.tools.remove("hawki")
    peers.versions = peer_versions("soxspipe" in peers.tools, "hawki" in peers.tools)
    return peers


def prepare_cases(cases: list, peers: Peers) -> None:
    for c in cases:
        c.sof, c.files = (packed_raws(c.arm, c.n, c.form) if c.form
                          else soxs_raws(c.arm, c.n))
        if "soxspipe" in peers.tools and not c.form:
            c.sp_files, c.sp_notes = check_soxspipe_headers(c.arm, c.files, WORK / c.name)
            for n in c.sp_notes:
                peers.problems.append(f"{c.name}: simulator header lacks {n} for soxspipe")
        if "hawki" in peers.tools and c.arm == "NIR" and not c.form:
            c.hawki_files = hawki_raws(max(3, round(c.n / 4)))


def measure_cases(a, peers: Peers) -> None:
    """Every case with every tool, alternating; a warm-up first unless quick."""
    runners = {
        "soxs": lambda c, i: run_soxs(c, i, a.timeout),
        "soxspipe": lambda c, i: run_soxspipe(c, i, a.timeout, peers.sp_exe,
                                              peers.sp_settings),
        "hawki": lambda c, i: run_hawki(c, i, a.timeout),
        "floor": lambda c, i: run_floor(c, i, a.timeout),
    }

    def tools_for(c):
        if c.form:
            return [t for t in peers.tools if t in ("soxs", "floor")]
        return [t for t in peers.tools if t != "hawki" or c.hawki_files]

    if not a.quick:
        # warm-up, untimed: page cache, numba's compile cache, .pyc files
        c = a.case_list[0]
        log(f"warm-up on {c.name} (untimed) ...")
        for t in tools_for(c):
            r = runners[t](c, 0)
            if not r.ok:
                log(f"  warm-up {t} FAILED: {r.note}")
    for c in a.case_list:
        ts = tools_for(c)
        for i in range(a.repeat):
            for t in ts[i % len(ts):] + ts[:i % len(ts)]:       # rotate the order
                r = runners[t](c, i + 1)
                c.runs.setdefault(t, []).append(r)
                state = "ok" if r.ok else "FAILED"
                log(f"  {c.name:6s} {t:9s} rep {i + 1}/{a.repeat}: {state:6s} "
                    f"{r.wall:7.2f} s {r.rss_mb:7.0f} MB  "
                    f"{r.note.splitlines()[0] if r.note else ''}")
                if not r.ok:
                    log(r.note)


def measure_night(a, peers: Peers):
    """(night table, workflows table or a line saying why not), or Nones."""
    if not (a.night if a.night is not None else not a.quick):
        return None, None
    from night import run_night
    log("night case: soxs reduce all, soxs mdark per set, soxspipe per set ...")
    night_table = run_night(a.repeat, a.timeout, peers.sp_exe, peers.sp_settings)
    workflows = None
    if "soxspipe" in peers.tools:
        from night import run_workflows
        log("night workflows: soxs prep + reduce all, soxspipe prep + reduce all ...")
        workflows = run_workflows(a.repeat, a.timeout)
    return night_table, workflows


def report(a, peers: Peers, header: list, tables: tuple, elapsed: float) -> None:
    """The tables on the terminal, the raw runs as JSON, the Markdown file."""
    night_table, workflows = tables
    cases = a.case_list
    head, rows = build_table(cases, peers.tools)
    log("")
    log("=" * 100)
    for line in header + peers.versions:
        log(line)
    log(f"{a.repeat} timed run(s) per tool and case, alternating; wall = end-to-end child "
        f"process time; RSS = child's peak (os.wait4); Mpx-fr = frames x pixels/frame / 1e6")
    log("hawki: hawki_cal_dark on max(3, round(N/4)) synthetic HAWK-I darks of 4 chips "
        "(same pixel-frames order as the NIR case); floor: import numpy+astropy, read "
        "all frames, write FLUX/QUAL/ERR with checksums")
    log("")
    log(format_text(head, rows))
    breakdown = build_breakdown(cases)
    if breakdown[1]:
        log("")
        log("where the time of one soxs mdark goes (medians, s):")
        log(format_text(*breakdown, grouped=False))
    for extra in (night_table, workflows):
        if isinstance(extra, str):
            log(extra)
        elif extra:
            log("")
            log(format_text(*extra, grouped=False))
    for p in peers.problems:
        log(f"NOTE: {p}")
    import resource
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log(f"this benchmark process peaked at {own:.0f} MB: on Linux a child's ru_maxrss "
        f"starts from its parent's peak, so every RSS above includes up to that much")
    log(f"benchmark total time {elapsed / 60:.1f} min")
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "results.json").write_text(json.dumps(
        {"machine": header, "versions": peers.versions, "repeat": a.repeat,
         "cases": {c.name: {t: [r.__dict__ for r in rs] for t, rs in c.runs.items()}
                   for c in cases}}, indent=1))
    if a.md:
        write_md(Path(a.md), header + peers.versions, a.repeat, cases, tables,
                 (head, rows), peers.problems)
        log(f"wrote {a.md}")


def write_md(path: Path, about: list, repeat: int, cases: list, tables: tuple,
             every_run: tuple, problems: list) -> None:
    night_table, workflows = tables
    text = "# soxs mdark benchmark\n\n" + "\n".join(f"- {line}" for line in about)
    text += f"\n- {repeat} timed runs per tool and case (medians)\n\n"
    text += format_md(*build_summary(cases))
    breakdown = build_breakdown(cases)
    if breakdown[1]:
        text += "\n\n## Where the time of one run goes (medians, s)\n\n" + format_md(*breakdown)
    if night_table:
        text += "\n\n## A night\n\n" + format_md(*night_table)
    if isinstance(workflows, str):
        text += f"\n\n{workflows}"
    elif workflows:
        text += "\n\n" + format_md(*workflows)
    text += "\n\n## Every run\n\n" + format_md(*every_run) + "\n"
    text += "".join(f"\nNote: {p}\n" for p in problems)
    path.write_text(text)


def main(argv=None) -> int:
    a = parse_args(argv)
    t_start = time.perf_counter()
    header = machine_info()
    for line in header:
        log(line)
    peers = find_peers(a.tool_list)
    for line in peers.versions:
        log(line)
    prepare_cases(a.case_list, peers)
    measure_cases(a, peers)
    tables = measure_night(a, peers)
    report(a, peers, header, tables, time.perf_counter() - t_start)
    failed = any(not r.ok for c in a.case_list for rs in c.runs.values() for r in rs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
