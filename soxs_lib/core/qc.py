"""QC metrics of soxs_mdark: each declared once with its unit, meaning and
default acceptable range per arm.  Ranges can be overridden in settings."""

from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

from soxs_lib.config import flags, keywords as kw
from soxs_lib.core.stats import median


@dataclass(frozen=True)
class QCDef:
    """One QC metric: name, unit, meaning and default range per arm."""

    name: str                    # header keyword is "ESO QC <name>"
    unit: str
    description: str
    ranges: dict                 # arm -> (low, high) or absent: no range
    fmt: str = ".4g"
    # the arms' values differ by physics (cryogenic NIR, cooled CCD): a range
    # given for all arms applies only to the arm whose default range it fits
    arm_specific: bool = False

    @property
    def keyword(self) -> str:
        """``ESO QC <name>``."""
        return f"ESO QC {self.name}"

    @property
    def settings_key(self) -> str:
        """Its key in a settings file (``mdark-median``)."""
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
    # soxspipe's ranges: the NIR array runs near 40 K, the VIS CCD near 163 K
    QCDef("DETECTOR TEMP", "K", "Mean detector temperature of the raw darks",
          {"NIR": (0.0, 50.0), "VIS": (0.0, 165.0)}, ".2f", arm_specific=True),
)

BY_NAME = {q.name: q for q in QC_DEFS}


def normalise_name(key: str) -> str:
    """A QC name as in ``QC_DEFS`` from any spelling (``mdark-median``)."""
    return str(key).upper().replace("-", " ").replace("_", " ").strip()


def default_ranges(arm: str) -> dict:
    """QC name -> (low, high) default acceptable range for ``arm``."""
    return {q.name: q.ranges[arm] for q in QC_DEFS if arm in q.ranges}


def fitting_arms(name: str, rng: tuple) -> tuple[str, ...]:
    """The arms a range given for all arms applies to.

    Every arm, unless the metric is ``arm_specific``: then only the arm(s)
    whose default range overlaps ``rng`` most (largest intersection over
    union), so soxspipe's flat ``detector-temp: [0, 50]`` (kelvin) checks the
    NIR array and leaves the VIS CCD (about 163 K) to its own range.

    Parameters
    ----------
    name : str
        QC name as in ``QC_DEFS`` (``"DETECTOR TEMP"``).
    rng : tuple of float
        ``(low, high)`` with ``low <= high``.

    Returns
    -------
    tuple of str
        Arms, in ``keywords.ARMS`` order; empty when the range overlaps none.
    """
    q = BY_NAME[name]
    if not q.arm_specific:
        return kw.ARMS

    def iou(other):
        inter = min(rng[1], other[1]) - max(rng[0], other[0])
        union = max(rng[1], other[1]) - min(rng[0], other[0])
        if inter < 0:
            return 0.0
        return inter / union if union > 0 else 1.0

    score = {arm: iou(q.ranges[arm]) for arm in kw.ARMS if arm in q.ranges}
    best = max(score.values(), default=0.0)
    return tuple(a for a, v in score.items() if v == best and best > 0)


def detector_temperature(headers, arm: str) -> tuple[float | None, str]:
    """Mean detector temperature in kelvin over the raw darks, as soxspipe
    checks it (``ESO INS TEMP217 VAL`` in K for NIR, ``ESO INS TEMP104 VAL``
    in degrees Celsius for VIS).

    Parameters
    ----------
    headers : iterable of (str, mapping)
        File name and header of each raw dark that was stacked.
    arm : str
        ``"NIR"`` or ``"VIS"``.

    Returns
    -------
    value : float or None
        Mean over the frames that carry a finite value; None if none does.
    note : str
        Empty, or a sentence naming the keyword and the frames that lack it.
    """
    key, offset = kw.DETECTOR_TEMP[arm]
    found, lacking = [], []
    for name, header in headers:
        try:
            value = float(header[key])
        except (KeyError, TypeError, ValueError):
            value = math.nan
        if math.isfinite(value):
            found.append(value + offset)
        else:
            lacking.append(str(name))
    if not found:
        return None, (f"no raw dark carries a valid {key}: no QC DETECTOR TEMP")
    note = ""
    if lacking:
        note = (f"{key} missing or invalid in {', '.join(lacking)}: QC DETECTOR TEMP "
                f"from the other {len(found)} frame(s)")
    return sum(found) / len(found), note


@dataclass(frozen=True)
class QCResult:
    """A metric's value and the range it was checked against (None: none)."""

    qc: QCDef
    value: float
    range: tuple | None

    @property
    def passed(self) -> bool | None:
        """Within its range; None when it has none."""
        if self.range is None:
            return None
        lo, hi = self.range
        return math.isfinite(self.value) and lo <= self.value <= hi

    @property
    def status(self) -> str:
        """PASS, FAIL or - (no range)."""
        return {None: "-", True: "PASS", False: "FAIL"}[self.passed]

    def formatted(self) -> str:
        """The value as the report shows it."""
        if self.qc.fmt == "d":
            return str(int(self.value))
        return format(self.value, self.qc.fmt)


def evaluate(values: dict, ranges: dict) -> list[QCResult]:
    """The metrics of ``values`` checked against ``ranges``, in declaration order."""
    return [QCResult(q, float(values[q.name]), ranges.get(q.name))
            for q in QC_DEFS if q.name in values]


def master_dark_values(flux, err, qual, nused, nrej, med: float, rms: float, s_t: float,
                       exptime: float, ndropped: int) -> dict:
    """The QC metrics of a master dark (all but DETECTOR TEMP).

    Parameters
    ----------
    flux, err : numpy.ndarray
        The master and its uncertainty, e-.
    qual : numpy.ndarray
        QUAL flags (``flags``), hot pixels flagged.
    nused, nrej : numpy.ndarray
        Samples used and rejected per pixel.
    med, rms : float
        The master's median and robust scatter (``hotpix.flag_hot_pixels``).
    s_t : float
        Temporal noise of one raw frame, e-.
    exptime : float
        Exposure time, s; DARK CURRENT only if positive.
    ndropped : int
        Raw frames left out as unusable.

    Returns
    -------
    dict
        QC name (as in ``QC_DEFS``) -> value.
    """
    nhot = int(np.count_nonzero(qual & flags.HOT))
    clean = qual == 0
    nvalid = int(nused.sum(dtype=np.int64) + nrej.sum(dtype=np.int64))
    out = {
        "HOTPIX NUM": nhot,
        "HOTPIX FRAC": nhot / flux.size,
        "MDARK MEDIAN": med,
        "MDARK RMS": rms,
        "DARK CURRENT": med / exptime if exptime > 0 else None,
        # read noise: the temporal noise less the dark shot noise
        "RAW RON": float(np.sqrt(max(s_t ** 2 - max(med, 0.0), 0.0))),
        "RAW NOISE": s_t,
        "MASTER RON": median(err[clean]) if clean.any() else float("nan"),
        "REJ FRAC": float(nrej.sum(dtype=np.int64)) / max(1, nvalid),
        "NRAW DROPPED": ndropped,
    }
    return {k: v for k, v in out.items() if v is not None}
