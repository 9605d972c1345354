"""Per-arm detector parameters, read from ``static_calib/detectors.yaml``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
import os
from pathlib import Path

import yaml

from soxs_lib.config.errors import InputError
from soxs_lib.config.shipped import static_calib

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
    readout_modes: tuple[tuple[int, str], ...] = ()   # (CURID, CURNAME), default first

    def readout(self, mode=None) -> tuple[int, str]:
        """(CURID, CURNAME) of a readout mode given by id or name (None: the
        default).

        Raises
        ------
        InputError
            The arm has no such mode.
        """
        if mode is None:
            return self.readout_modes[0]
        for curid, name in self.readout_modes:
            if str(mode).upper() in (str(curid), name.upper()):
                return curid, name
        known = ", ".join(f"{i} {n}" for i, n in self.readout_modes)
        raise InputError(f"{self.arm} has no readout mode {mode!r} (it has {known})")

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
                          bias_from_overscan=bool(v["bias_from_overscan"]),
                          readout_modes=tuple((int(k), str(n))
                                              for k, n in v["readout_modes"].items()))
            for arm, v in raw.items()}


def detector(arm: str) -> Detector:
    """The Detector of ``arm`` (``"NIR"`` or ``"VIS"``)."""
    return detectors()[arm]
