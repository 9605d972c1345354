"""QC metrics of soxs_mdark: each declared once with its unit, meaning and
default acceptable range per arm.  Ranges can be overridden in settings."""

from __future__ import annotations

from dataclasses import dataclass
import math


@dataclass(frozen=True)
class QCDef:
    name: str                    # header keyword is "ESO QC <name>"
    unit: str
    description: str
    ranges: dict                 # arm -> (low, high) or absent: no range
    fmt: str = ".4g"

    @property
    def keyword(self) -> str:
        return f"ESO QC {self.name}"

    @property
    def settings_key(self) -> str:
        return self.name.lower().replace(" ", "-")


QC_DEFS: tuple[QCDef, ...] = (
    QCDef("HOTPIX NUM", "", "Number of hot pixels", {}, "d"),
    QCDef("HOTPIX FRAC", "", "Fraction of hot pixels",
          {"NIR": (0.0, 0.02), "VIS": (0.0, 0.01)}, ".3e"),
    QCDef("MDARK MEDIAN", "e-", "Median flux level of the master dark",
          {"NIR": (-15.0, 50.0), "VIS": (-5.0, 20.0)}, ".3f"),
    QCDef("MDARK RMS", "e-", "Robust (MAD) pixel-to-pixel scatter of the master dark",
          {}, ".3f"),
    QCDef("DARK CURRENT", "e-/s", "Median dark current (MDARK MEDIAN / EXPTIME)", {}, ".3e"),
    QCDef("RAW RON", "e-", "Read noise of a single raw dark, from frame differences "
          "(fixed pattern cancels), less the dark shot noise",
          {"NIR": (0.0, 30.0), "VIS": (0.0, 15.0)}, ".3f"),
    QCDef("RAW NOISE", "e-", "Temporal noise of a single raw dark from frame differences "
          "(read noise and dark shot noise)", {}, ".3f"),
    QCDef("MASTER RON", "e-", "Median uncertainty (ERR) of the master dark's good pixels",
          {}, ".3f"),
    QCDef("REJ FRAC", "", "Fraction of valid samples rejected by the clipping", {}, ".3e"),
    QCDef("NRAW DROPPED", "", "Raw darks left out as unusable (constant, no valid pixel)",
          {}, "d"),
)

BY_NAME = {q.name: q for q in QC_DEFS}


def normalise_name(key: str) -> str:
    return str(key).upper().replace("-", " ").replace("_", " ").strip()


def default_ranges(arm: str) -> dict:
    return {q.name: q.ranges[arm] for q in QC_DEFS if arm in q.ranges}


@dataclass(frozen=True)
class QCResult:
    qc: QCDef
    value: float
    range: tuple | None

    @property
    def passed(self) -> bool | None:
        if self.range is None:
            return None
        lo, hi = self.range
        return math.isfinite(self.value) and lo <= self.value <= hi

    @property
    def status(self) -> str:
        return {None: "-", True: "PASS", False: "FAIL"}[self.passed]

    def formatted(self) -> str:
        if self.qc.fmt == "d":
            return str(int(self.value))
        return format(self.value, self.qc.fmt)


def evaluate(values: dict, ranges: dict) -> list[QCResult]:
    return [QCResult(q, float(values[q.name]), ranges.get(q.name))
            for q in QC_DEFS if q.name in values]
