"""QC values of a master dark: computed from the master and the raw
headers, then checked against their acceptable ranges (declared in
``config.qc``)."""

from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

from soxs_lib.config import flags, keywords as kw
from soxs_lib.config.qc import QC_DEFS, QCDef
from soxs_lib.core.stats import median

# a metric's status against its range, as the product's QC ... STATUS cards say
METRIC_PASS, METRIC_FAIL, NO_RANGE = "PASS", "FAIL", "-"


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
        return {None: NO_RANGE, True: METRIC_PASS, False: METRIC_FAIL}[self.passed]

    def formatted(self) -> str:
        """The value as the report shows it."""
        if self.qc.fmt == "d":
            return str(int(self.value))
        return format(self.value, self.qc.fmt)


def evaluate(values: dict, ranges: dict) -> list[QCResult]:
    """The metrics of ``values`` checked against ``ranges``, in declaration order."""
    return [QCResult(q, float(values[q.name]), ranges.get(q.name))
            for q in QC_DEFS if q.name in values]


def master_dark_values(res, med: float, rms: float, s_t: float, exptime: float,
                       ndropped: int) -> dict:
    """The QC metrics of a master dark (all but DETECTOR TEMP).

    Parameters
    ----------
    res : soxs_lib.core.stack.StackResult
        The master (FLUX and ERR in e-, QUAL with hot pixels flagged, and
        the samples used and rejected per pixel).
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
    flux, err, qual, nused, nrej = res.flux, res.err, res.qual, res.nused, res.nrej
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
