"""The one rule that names a dark set's SOF and product: soxspipe's.

soxspipe (``data_organiser``) names a dark SOF
``<DATE-OBS>_<ARM>_<BINNING>_<ROSPEED>_MDARK_<EXPTIME>S_<INSTRUME>.sof``:
the first frame's DATE-OBS without fraction, ``-`` and ``:``; the binning
``<BINX>x<BINY>`` where the arm has one (the NIR array is never binned); the
readout mode ``ESO DET READ CURID``; EXPTIME rounded to 0.01 s as Python
prints a float; upper case, with ``.`` as ``_``.  Its product is the SOF's
name with ``.fits``: ``20260111T082924_NIR_3_MDARK_5_0S_SOXS.fits``.

``prep`` names SOFs with it, ``soxs mdark`` and the PyEsoRex recipe name
products with it (from the set as given, before any frame is dropped), and
``reduce all`` expects the product a SOF makes under the SOF's own name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import re

from soxs_lib.config import keywords as kw
from soxs_lib.config.params import RECIPE

RECIPE_FIELD = "MDARK"
SOF_SUFFIX = ".sof"
PRODUCT_SUFFIX = ".fits"
PLOT_SUFFIX = "_QC.png"
LOG_SUFFIX = "_log.txt"


def field_text(value) -> str:
    """A header value as soxspipe prints it (an integral float as an integer)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def set_name(date_obs, arm: str, binning: str | None, readout_id, exptime: float,
             instrument: str = "SOXS") -> str:
    """The name of a dark set, without extension.

    Parameters
    ----------
    date_obs : str
        DATE-OBS of the set's first frame.
    arm : str
        ``NIR`` or ``VIS``.
    binning : str or None
        ``<BINX>x<BINY>``; left out for an arm that is never binned.
    readout_id : int or str or None
        ``ESO DET READ CURID``; left out when None or empty.
    exptime : float
        The exposure time, s.
    instrument : str
        INSTRUME.

    Returns
    -------
    str
        ``20260111T082924_NIR_3_MDARK_300_0S_SOXS``.
    """
    date = str(date_obs).strip().split(".")[0].replace("-", "").replace(":", "")
    fields = [date, arm]
    if arm in kw.BINNED_ARMS and binning:
        fields.append(binning)
    if readout_id is not None and field_text(readout_id):
        fields.append(field_text(readout_id))
    fields += [RECIPE_FIELD, f"{round(float(exptime), 2)}S", instrument]
    name = "_".join(field_text(f) for f in fields).upper().replace(" ", "").replace(".", "_")
    return re.sub("_+", "_", name)


def header_name(header) -> str:
    """``set_name`` from the first raw frame's header."""
    arm = str(header[kw.SEQ_ARM]).strip().upper()
    binx, biny = kw.binning(header, arm)
    return set_name(header[kw.DATE_OBS], arm, f"{binx}x{biny}", header.get(kw.READ_CURID),
                    float(header[kw.EXPTIME]), field_text(header.get(kw.INSTRUME, "SOXS")))


def distinct(names: list[str]) -> list[str]:
    """``names`` made distinct in their order: the k-th repeat of a name
    (k >= 2) gets ``_<k>`` (two templates of a night that start in the same
    second)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def product_stem(first_header, sof: Path | None = None) -> str:
    """The product's file name without extension.

    Parameters
    ----------
    first_header : astropy.io.fits.Header
        The header of the set's first raw frame as given (before any frame
        is dropped as unusable), so the name never depends on the reduction.
    sof : Path, optional
        The SOF the set came from: a SOF named by the rule (a repeat's
        ``_<k>`` included) names the product, as in soxspipe.

    Returns
    -------
    str
    """
    name = header_name(first_header)
    if sof is not None and re.fullmatch(re.escape(name) + r"(_[0-9]+)?", Path(sof).stem):
        return Path(sof).stem
    return name


def products_dir(root) -> Path:
    """Where products and logs go under a workspace or output folder."""
    return Path(root) / kw.WORKSPACE_PRODUCTS / RECIPE


def plots_dir(root) -> Path:
    """Where QC plots go under a workspace or output folder."""
    return Path(root) / kw.WORKSPACE_QC / RECIPE


@dataclass(frozen=True)
class SetFiles:
    """The files a set makes: its product, QC plot and log."""

    product: Path
    plot: Path
    log: Path


def set_files(root, stem: str) -> SetFiles:
    """The files of the set named ``stem`` (``product_stem``) under ``root``.

    Parameters
    ----------
    root : str or Path
        The workspace or output folder (``-o``).
    stem : str
        The set's name.

    Returns
    -------
    SetFiles
    """
    products = products_dir(root)
    return SetFiles(products / (stem + PRODUCT_SUFFIX), plots_dir(root) / (stem + PLOT_SUFFIX),
                    products / (stem + LOG_SUFFIX))
