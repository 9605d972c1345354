"""From classified files to dark sets and their SOFs.

Darks of one set share the arm, EXPTIME (to 0.01 s), readout (CURID and
CURNAME), binning, observing night and template run (``ESO TPL START``), so
two templates of one night never mix.  A set is complete when it holds
``ESO TPL NEXP`` frames (without TPL keywords: at least 3) and none is still
being written, or, short of them, once its template has ended: its arm's
detector has taken a later set's frames (an aborted template never waits
for ever; if its missing frames arrive after all, its SOF grows and the set is
reduced again).  A VIS set gets the MASTER_BIAS_VIS of the workspace with its
binning and readout that is nearest in time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
import math
import os
from pathlib import Path

from soxs_lib.config import keywords as kw
from soxs_lib.io import naming
from soxs_lib.io.archive import ARCHIVE_SUFFIXES
from soxs_lib.config.errors import OutputError
from soxs_lib.night.classify import Frame
from soxs_lib.night.outcome import READY, TOO_FEW, WAITING


@dataclass
class DarkSet:
    """The darks of one set, in time order, and its master bias (VIS)."""

    arm: str
    exptime: float
    readout: str
    readout_id: str
    binning: str
    night: str
    tpl_start: str
    frames: list[Frame] = field(default_factory=list)
    bias: Frame | None = None
    name: str = ""               # set by group()
    ended: bool = False          # the arm's detector went on to a later set (group())

    @property
    def complete(self) -> list[Frame]:
        """The members whose file is whole."""
        return [f for f in self.frames if f.complete]

    @property
    def nexp(self) -> int | None:
        """Frames the template announces (``ESO TPL NEXP``), if it does."""
        values = [f.tpl_nexp for f in self.frames if f.tpl_nexp]
        return max(values) if values and self.tpl_start else None

    @property
    def status(self) -> str:
        """READY, WAITING (for frames) or TOO_FEW (frames for a master)."""
        n = len(self.complete)
        if n < len(self.frames) or (self.nexp is not None and n < self.nexp
                                    and not self.ended):
            return WAITING
        return READY if n >= kw.MIN_FRAMES else TOO_FEW

    @property
    def template(self) -> str:
        """The template that took the set (``ESO TPL ID``)."""
        return self.first.template

    @property
    def object(self) -> str:
        """The set's OBJECT."""
        return self.first.object

    @property
    def first(self) -> Frame:
        """The earliest frame: it names the SOF and the product."""
        return self.frames[0]

    @property
    def sof_name(self) -> str:
        """The SOF's file name, by soxspipe's rule (``naming``), made
        distinct among the workspace's sets by ``group``."""
        return self.name + naming.SOF_SUFFIX

    def sof_text(self) -> str:
        """The SOF: absolute paths (the SOF does not sit beside the frames,
        so only they mean the same under every reading), the raws in time
        order, then the master bias."""
        lines = [f"{f.path} {f.kind}\n" for f in self.complete]
        if self.bias is not None:
            lines.append(f"{self.bias.path} {kw.BIAS_TAG}\n")
        return "".join(lines)


def one_copy_each(frames: list[Frame]) -> list[Frame]:
    """``frames`` with each raw exposure once.

    A raw dark that another file of the workspace holds too (the same arm and
    ``DATE-OBS``: a plain copy beside its archive, a frame copied twice) would
    put one exposure twice into its set, which the reduction refuses.  All but
    one copy are left out, naming the copy kept: a complete file, a plain one
    before an archive, then the first by path.

    Parameters
    ----------
    frames : list of Frame
        Every classified file.

    Returns
    -------
    list of Frame
        The same files in the same order, the extra copies left out (no kind,
        a reason).
    """
    copies: dict[tuple, list[Frame]] = {}
    for f in frames:
        if f.is_dark and f.date_obs:
            copies.setdefault((f.arm, f.date_obs), []).append(f)
    extra = {}
    for same in copies.values():
        kept, *others = sorted(same, key=lambda f: (
            not f.complete, f.path.lower().endswith(ARCHIVE_SUFFIXES), f.path))
        for f in others:
            kept_name = os.path.relpath(kept.path, os.path.dirname(f.path))
            extra[f.path] = replace(f, kind="", reason=f"the same exposure as {kept_name} "
                                                       f"({kw.DATE_OBS} {f.date_obs})")
    return [extra.get(f.path, f) for f in frames]


def _key(f: Frame) -> tuple:
    return (f.arm, round(f.exptime, 2), f.readout_id, f.readout, f.binning, f.night,
            f.tpl_start)


def group(frames: list[Frame]) -> list[DarkSet]:
    """Dark sets of the classified ``frames``, in time order of their first frame.

    Parameters
    ----------
    frames : list of Frame
        Every classified file; only raw darks and master biases are used.

    Returns
    -------
    list of DarkSet
    """
    sets: dict[tuple, DarkSet] = {}
    for f in sorted((f for f in frames if f.is_dark), key=lambda f: (f.mjd_obs, f.path)):
        k = _key(f)
        if k not in sets:
            sets[k] = DarkSet(f.arm, round(f.exptime, 2), f.readout, f.readout_id,
                              f.binning, f.night, f.tpl_start)
        sets[k].frames.append(f)
    biases = [f for f in frames if f.kind == kw.BIAS_TAG]
    for s in sets.values():
        if s.arm != kw.BIAS_ARM:
            continue
        fits = [b for b in biases if (b.binning, b.readout_id, b.readout) ==
                (s.binning, s.readout_id, s.readout)]
        if fits:
            t = s.first.mjd_obs
            s.bias = min(fits, key=lambda b: (abs(b.mjd_obs - t) if math.isfinite(b.mjd_obs)
                                              else math.inf, b.path))
    ordered = sorted(sets.values(), key=lambda s: (s.first.mjd_obs, s.tpl_start,
                                                    s.first.path))
    latest = {}                  # each arm's latest set start
    for s in ordered:
        latest[s.arm] = max(latest.get(s.arm, -math.inf), s.first.mjd_obs)
    for s in ordered:
        s.ended = latest[s.arm] > s.frames[-1].mjd_obs
    names = naming.distinct([naming.set_name(s.first.date_obs, s.arm, s.binning,
                                             s.readout_id, s.exptime) for s in ordered])
    for s, name in zip(ordered, names, strict=True):
        s.name = name
    return ordered


def write_sofs(sets: list[DarkSet], folder: Path) -> list[Path]:
    """Write the SOF of every READY set into ``folder`` whose content
    changed; an unchanged SOF is not touched (a second prep changes no file).
    Returns the SOFs written."""
    from soxs_lib.io.publish import ensure_dir, write_atomic
    written = []
    for s in sets:
        if s.status != READY:
            continue
        path = Path(folder) / s.sof_name
        text = s.sof_text()
        if path.exists() and path.read_text() == text:
            continue
        ensure_dir(folder)
        write_atomic(path, text)
        written.append(path)
    return written


def remove_sofs(names, folder: Path) -> list[Path]:
    """Remove the SOFs ``names`` from ``folder`` where they exist; returns
    those removed."""
    removed = []
    for name in names:
        path = Path(folder) / name
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise OutputError(f"{path}: cannot remove the SOF of a set that is no more "
                              f"({exc.strerror})") from None
        removed.append(path)
    return removed
