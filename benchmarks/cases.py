"""The benchmark's cases and their raw darks, made once under
``benchmarks/data``: the project's simulated frames, their gzip and
tile-compressed forms, HAWK-I-format frames for ESO's C recipe, and copies
patched for soxspipe should the simulator's headers lack a keyword it needs."""

from __future__ import annotations

from dataclasses import dataclass, field
import json
from pathlib import Path
import re
import shutil
import subprocess

from fitsscan import fits_hdus
from peers import DATA, HERE, PY, SOXS, log


RAW_SHAPE = {"NIR": (2048, 2048), "VIS": (4096, 908)}      # (NAXIS2, NAXIS1)


HAWKI_CHIP = (2048, 2048)


HAWKI_NCHIP = 4


DEFAULT_CASES = "NIR5,NIR15,NIR15gz,NIR15fz,NIR40,VIS5,VIS15"


FORMS = ("gz", "fz")              # archive forms of a case's raw frames


QUICK_CASES = "NIR5,VIS5"


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
