"""Per-arm detector parameters, read from ``static_calib/detectors.yaml``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
import os
from pathlib import Path

import yaml

from .shipped import static_calib

STATIC_CALIB = Path(os.environ.get("SOXS_STATIC_CALIB") or static_calib())


@dataclass(frozen=True)
class Detector:
    """One arm's detector parameters (``static_calib/detectors.yaml``)."""

    arm: str
    science_columns: tuple[int, int]
    science_rows: tuple[int, int]
    gain: float            # e-/ADU
    ron: float             # e-
    saturation: float      # ADU
    bias_from_overscan: bool

    def science_region(self, binx: int = 1, biny: int = 1):
        """(row0, row1, col0, col1) of the science pixels for this binning."""
        r0, r1 = self.science_rows
        c0, c1 = self.science_columns
        return r0 // biny, r1 // biny, c0 // binx, c1 // binx


@lru_cache(maxsize=None)
def detectors() -> dict[str, Detector]:
    """Every arm's Detector, read once."""
    with open(STATIC_CALIB / "detectors.yaml") as fh:
        raw = yaml.safe_load(fh)
    return {arm: Detector(arm=arm, science_columns=tuple(v["science_columns"]),
                          science_rows=tuple(v["science_rows"]), gain=float(v["gain"]),
                          ron=float(v["ron"]), saturation=float(v["saturation"]),
                          bias_from_overscan=bool(v["bias_from_overscan"]))
            for arm, v in raw.items()}


def detector(arm: str) -> Detector:
    """The Detector of ``arm`` (``"NIR"`` or ``"VIS"``)."""
    return detectors()[arm]
