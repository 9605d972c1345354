"""QC metrics of soxs_mdark: each declared once with its unit, meaning and
default acceptable range per arm.  Ranges can be overridden in settings."""

from __future__ import annotations

from dataclasses import dataclass

from soxs_lib.config import keywords as kw


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
