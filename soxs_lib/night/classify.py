"""What each file of a workspace is, from its headers alone: a raw SOXS dark
(with the values that group it), a master bias, or the reason it is left
out.  Files are never moved, renamed or modified."""

from __future__ import annotations

from dataclasses import dataclass
import math
import os
from pathlib import Path

from soxs_lib.config import keywords as kw
from soxs_lib.config.errors import InputError, Truncated
from soxs_lib.io.naming import field_text
from soxs_lib.io.archive import looks_like_fits
from soxs_lib.io.fitsfile import read_header
from soxs_lib.io.rawimage import RawImage

# folders of a workspace that hold what soxs writes, not raw frames
OWN_FOLDERS = (kw.WORKSPACE_PRODUCTS, kw.WORKSPACE_QC, kw.WORKSPACE_SOF, kw.WORKSPACE_BACKUPS)
OWN_FILES = (kw.WORKSPACE_DB, kw.WORKSPACE_DB + "-journal", kw.WORKSPACE_DB + "-wal",
             kw.WORKSPACE_DB + "-shm")
NIGHT_OFFSET_DAYS = 15.0 / 24.0      # the observing night: MJD-OBS - 15 h, as soxspipe
MJD_UNIX_EPOCH = 40587.0


@dataclass(frozen=True)
class Frame:
    """One file of the workspace and what it is.

    ``kind`` is a raw tag (``DARK_NIR``, ``DARK_VIS``), ``MASTER_BIAS_VIS``,
    or empty with ``reason`` saying why the file is left out.  A raw dark
    still being written has ``complete`` False (its set waits for it).
    """

    path: str
    size: int
    mtime: float
    kind: str = ""
    reason: str = ""
    complete: bool = True
    arm: str = ""
    exptime: float = math.nan
    readout: str = ""            # ESO DET READ CURNAME
    readout_id: str = ""         # ESO DET READ CURID
    binning: str = ""            # "<BINX>x<BINY>"
    night: str = ""              # YYYY-MM-DD of MJD-OBS - 15 h
    tpl_start: str = ""
    tpl_nexp: int | None = None
    mjd_obs: float = math.nan
    date_obs: str = ""
    template: str = ""           # ESO TPL ID
    object: str = ""             # OBJECT

    @property
    def is_dark(self) -> bool:
        """A raw dark soxs_mdark reduces (complete or not)."""
        return self.kind in kw.RAW_TAGS


def find_files(workspace: Path) -> list[Path]:
    """Every file under ``workspace`` but soxs's own folders, its database
    and hidden files or folders, in a stable order."""
    workspace = Path(workspace)
    out = []
    for folder, dirs, files in os.walk(workspace):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and
                         not (here == workspace and d in OWN_FOLDERS))
        for name in sorted(files):
            if name.startswith(".") or (here == workspace and name in OWN_FILES):
                continue
            out.append(here / name)
    return out


def night_of(mjd: float) -> str:
    """The observing night (YYYY-MM-DD) of an MJD-OBS: the date 15 h earlier."""
    from datetime import datetime, timezone
    seconds = (mjd - NIGHT_OFFSET_DAYS - MJD_UNIX_EPOCH) * 86400.0
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d")


def _left_out(path: Path, st, reason: str) -> Frame:
    return Frame(str(path), st.st_size, st.st_mtime, reason=reason)


def _refusal(h) -> str:
    """Why a header is not of a raw dark or master bias soxs_mdark reduces;
    empty if it is."""
    instrument = str(h.get(kw.INSTRUME, "")).strip()
    if instrument != "SOXS":
        return f"other instrument ({kw.INSTRUME} = {instrument!r})"
    catg = str(h.get(kw.PRO_CATG, "")).strip()
    if catg and catg != kw.BIAS_TAG:
        return f"a product ({kw.PRO_CATG} = {catg})"
    dpr = str(h.get(kw.DPR_TYPE, "")).strip().upper()
    if not catg and dpr != kw.DARK_DPR_TYPE:
        return f"not a dark ({kw.DPR_TYPE} = {dpr or 'absent'})"
    arm = str(h.get(kw.SEQ_ARM, "")).strip().upper()
    if arm not in kw.ARMS or (catg and arm != kw.BIAS_ARM):
        return f"arm {kw.SEQ_ARM} = {arm or 'absent'!r} is not one soxs_mdark reduces"
    need = ((kw.EXPTIME, kw.MJD_OBS, kw.DATE_OBS) if not catg else ()) + \
        (kw.READ_CURID, kw.READ_CURNAME) + kw.binning_keywords(arm)
    missing = [k for k in need if k not in h]
    return f"missing keyword(s) {', '.join(missing)}" if missing else ""


def _values(h, arm: str) -> dict:
    """The values that group a frame and name its set.

    Raises
    ------
    TypeError, ValueError
        A keyword whose value is not of its kind (an EXPTIME that is not a number).
    """
    mjd = float(h.get(kw.MJD_OBS, math.nan))
    nexp = h.get(kw.TPL_NEXP)
    return dict(arm=arm, exptime=float(h.get(kw.EXPTIME, math.nan)),
                readout=str(h[kw.READ_CURNAME]).strip(),
                readout_id=field_text(h[kw.READ_CURID]),
                binning="x".join(map(str, kw.binning(h, arm))),
                night=night_of(mjd) if math.isfinite(mjd) else "",
                tpl_start=str(h.get(kw.TPL_START, "")).strip(),
                tpl_nexp=int(nexp) if nexp is not None else None,
                mjd_obs=mjd, date_obs=str(h.get(kw.DATE_OBS, "")).strip(),
                template=str(h.get(kw.TPL_ID, "")).strip(),
                object=str(h.get(kw.OBJECT, "")).strip())


def header_kind(h) -> tuple[str, str, dict]:
    """What a file is, from its primary header alone: the one rule ``prep``
    and the EDPS workflow (``workflows/soxs/soxs_rules.py``) both apply.

    Parameters
    ----------
    h : mapping
        The header: ``get``, ``in`` and ``[]`` by ESO keyword name
        (``"ESO DPR TYPE"``), a missing keyword absent.

    Returns
    -------
    kind : str
        A raw tag (``DARK_NIR``, ``DARK_VIS``), ``MASTER_BIAS_VIS``, or empty.
    reason : str
        Why the file is left out (empty when ``kind`` is not).
    values : dict
        The fields of ``Frame`` that group it (empty when left out).
    """
    reason = _refusal(h)
    if reason:
        return "", reason, {}
    arm = str(h.get(kw.SEQ_ARM, "")).strip().upper()
    try:
        values = _values(h, arm)
    except (TypeError, ValueError) as exc:
        return "", f"unusable keyword value ({exc})", {}
    catg = str(h.get(kw.PRO_CATG, "")).strip()
    return (kw.BIAS_TAG if catg else kw.raw_tag(arm)), "", values


def classify(path: Path) -> Frame:
    """Read the headers of one file and say what it is.

    Parameters
    ----------
    path : Path
        A file of the workspace.

    Returns
    -------
    Frame
        Never raises for a bad file: an unreadable one is a Frame with its
        reason.
    """
    path = Path(path)
    st = path.stat()
    if not looks_like_fits(path.name):
        return _left_out(path, st, "not a FITS file")
    try:
        h = read_header(path)
    except InputError as exc:
        return _left_out(path, st, f"unreadable: {exc}")
    kind, reason, values = header_kind(h)
    if not kind:
        return _left_out(path, st, reason)
    if kind == kw.BIAS_TAG:
        return Frame(str(path), st.st_size, st.st_mtime, kind=kind, **values)
    complete = True
    try:
        RawImage(path).close()        # the whole file is there (archives: intact)
    except Truncated as exc:
        reason, complete = f"still being written? {exc}", False
    except InputError as exc:
        return _left_out(path, st, f"unreadable: {exc}")
    return Frame(str(path), st.st_size, st.st_mtime, kind=kind, reason=reason,
                 complete=complete, **values)
