"""The master-dark product: file name, ESO DFS primary header, FLUX/QUAL/ERR."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
from astropy.io import fits

from soxs_lib import PIPE_ID, __version__
from soxs_lib.config import flags, params, keywords as kw
from soxs_lib.config import qc
from soxs_lib.io.fitsutil import put
from soxs_lib.core.mdark import MasterDark
from soxs_lib.core.qcvalues import METRIC_FAIL, METRIC_PASS, NO_RANGE
from soxs_lib.io.fitsfile import read_header

PRO_DID = "ESO-VLT-DIC.PRO-1.17"
DATE = "DATE"                # when the file was written (UTC): the reduction's date
REC_ID = "ESO PRO REC1 ID"   # the recipe that made the product
STATUS_SUFFIX = " STATUS"
_MD5_PENDING = "0" * 32     # as long as the digest: the header keeps its size
DRS_ID = f"soxs_lib-{__version__}"


def param_cards(values) -> list[tuple[str, str]]:
    """(alias, value) of every parameter of ``values`` (``params.Values``),
    in declaration order."""
    return [(name, str(v).lower() if isinstance(v, bool) else str(v))
            for name, v in params.as_dict(values).items()]


def inherited(raw_header: fits.Header) -> list[fits.Card]:
    """Cards a product copies from its first raw frame (ESO DFS rules)."""
    out = []
    for card in raw_header.cards:
        key = card.keyword
        if key in kw.INHERIT_PLAIN or (
                key.startswith("ESO ") and not key.startswith(kw.INHERIT_EXCLUDE_PREFIXES)):
            out.append(card)
    return out


def qc_cards(md: MasterDark) -> list[tuple[str, object, str]]:
    """Each QC metric, its STATUS where it has a range, and ``ESO QC STATUS``."""
    cards = []
    for r in md.qc:
        unit = f"[{r.qc.unit}] " if r.qc.unit else ""
        value = int(r.value) if r.qc.fmt == "d" else float(r.value)
        cards.append((r.qc.keyword, value, f"{unit}{r.qc.description}"))
        if r.range is not None:
            cards.append((r.qc.keyword + STATUS_SUFFIX, r.status,
                          f"range [{_exact(r.range[0])}, {_exact(r.range[1])}]"))
    cards.append((kw.QC_STATUS, METRIC_PASS if md.qc_passed else METRIC_FAIL,
                  "all QC metrics within their ranges"))
    return cards


def _exact(x) -> str:
    """A number as its shortest text that reads back the same (``30``, ``0.1``)."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def qc_from_header(h) -> list[tuple]:
    """The QC metrics a product's header states, read back as ``qc_cards``
    wrote them: the database records them from here after a reduction and
    when it is rebuilt from the products on disk, so both hold the same.

    Parameters
    ----------
    h : astropy.io.fits.Header
        The product's primary header.

    Returns
    -------
    list of (name, value, unit, description, min, max, status)
        In declaration order; ``min``, ``max`` None and ``status`` ``-``
        where the metric has no range.
    """
    out = []
    for q in qc.QC_DEFS:
        if q.keyword not in h:
            continue
        status, lo, hi = NO_RANGE, None, None
        key = q.keyword + STATUS_SUFFIX
        if key in h:
            status = str(h[key])
            try:
                lo, hi = (float(x) for x in h.comments[key].strip().removeprefix("range [")
                          .removesuffix("]").split(","))
            except ValueError:            # a comment cut short: the range is unknown
                lo = hi = None
        out.append((q.name, h[q.keyword], q.unit, q.description, lo, hi, status))
    return out


def product_cards(md: MasterDark) -> list[tuple[str, object, str]]:
    """The primary-header cards the product states itself, for both front
    ends: the command line writes them with the DFS keywords of
    ``primary_header``, the PyEsoRex recipe hands them to ``cpl.dfs``, which
    adds the DFS keywords.  QC cards come from ``qc_cards``.

    Returns
    -------
    list of (keyword, value, comment)
    """
    return [
        (kw.PRO_CATG, md.product_tag, "Category of pipeline product frame"),
        (kw.PRO_TYPE, kw.PRO_TYPE_VALUE, "Product type"),
        (kw.PRO_TECH, kw.PRO_TECH_VALUE, "Observation technique"),
        (kw.EXPTIME, float(md.exptime), "Integration time [s]"),   # cpl.dfs does not copy it
        ("NCOMBINE", len(md.frameset.raws), "Number of raw frames combined"),
        ("BUNIT", kw.BUNIT, "Unit of FLUX and ERR"),
    ]


def primary_header(md: MasterDark, filename: str) -> fits.Header:
    """The primary header as ``cpl.dfs`` would write it: inherited cards,
    DFS keywords, ``product_cards`` and ``qc_cards``; DATAMD5 pending."""
    fs = md.frameset
    h = fits.Header()
    for card in inherited(fs.first.header):
        h.append(card)
    put(h, DATE, datetime.now(timezone.utc).isoformat(timespec="milliseconds")[:23],
        "Date the file was written (UTC)")
    put(h, "PIPEFILE", filename, "Filename of data product")
    put(h, "DATAMD5", _MD5_PENDING, "MD5 checksum of the data units")
    put(h, "ESO PRO DID", PRO_DID, "Data dictionary for PRO")
    for key, value, comment in product_cards(md):
        put(h, key, value, comment)
    put(h, "ESO PRO SCIENCE", False, "Scientific product if T")
    put(h, "ESO PRO DATANCOM", len(fs.raws), "Number of combined frames")
    put(h, "ESO PRO ANCESTOR", str(fs.first.header.get(kw.ARCFILE, fs.first.path.name)),
        "Inherited file name")
    put(h, REC_ID, params.RECIPE, "Pipeline recipe (unique) identifier")
    put(h, "ESO PRO REC1 DRS ID", DRS_ID, "Data Reduction System identifier")
    put(h, "ESO PRO REC1 PIPE ID", PIPE_ID, "Pipeline (unique) identifier")
    for i, img in enumerate(fs.raws, 1):
        put(h, f"ESO PRO REC1 RAW{i} NAME", img.path.name, "File name of raw frame")
        put(h, f"ESO PRO REC1 RAW{i} CATG", kw.raw_tag(md.arm), "Category of raw frame")
    if fs.bias is not None:
        bh = read_header(fs.bias)
        put(h, "ESO PRO REC1 CAL1 NAME", fs.bias.name, "File name of calibration frame")
        put(h, "ESO PRO REC1 CAL1 CATG", kw.BIAS_TAG, "Category of calibration frame")
        put(h, "ESO PRO REC1 CAL1 DATAMD5", str(bh.get("DATAMD5", "Not computed")),
            "MD5 signature of calib frame")
    for i, (name, value) in enumerate(param_cards(md.params), 1):
        put(h, f"ESO PRO REC1 PARAM{i} NAME", name, params.BY_NAME[name].description[:40])
        put(h, f"ESO PRO REC1 PARAM{i} VALUE", value, "Default" if
            getattr(md.params, name) == params.BY_NAME[name].default else "")
    for key, value, comment in qc_cards(md):
        put(h, key, value, comment)
    return h


def _ext_header(name: str, role: str, extra: dict) -> fits.Header:
    h = fits.Header()
    h["EXTNAME"] = name
    h["HDUCLASS"] = ("ESO", "class name (ESO format)")
    h["HDUDOC"] = ("DICD", "document with class description")
    h["HDUVERS"] = ("DICD version 6", "version number")
    h["HDUCLAS1"] = ("IMAGE", "Image data format")
    h["HDUCLAS2"] = (role, "")
    for k, v in extra.items():
        h[k] = v
    return h


def extension_headers() -> dict:
    """EXTNAME -> header cards of the three image extensions."""
    qual = {"HDUCLAS3": "FLAG32BIT", "SCIDATA": kw.EXT_FLUX, "ERRDATA": kw.EXT_ERR}
    qual.update({f"QUALB{bit.bit_length() - 1}": (bit, meaning[:47])
                 for bit, meaning in flags.MEANINGS.items()})
    return {
        kw.EXT_FLUX: _ext_header(kw.EXT_FLUX, "DATA", {
            "BUNIT": kw.BUNIT, "ERRDATA": kw.EXT_ERR, "QUALDATA": kw.EXT_QUAL}),
        kw.EXT_QUAL: _ext_header(kw.EXT_QUAL, "QUALITY", qual),
        kw.EXT_ERR: _ext_header(kw.EXT_ERR, "ERROR", {
            "HDUCLAS3": "RMSE", "BUNIT": kw.BUNIT, "SCIDATA": kw.EXT_FLUX,
            "QUALDATA": kw.EXT_QUAL}),
    }


def extension_data(md) -> dict:
    """The image data in the types they are stored in (native byte order;
    a copy only where the type changes), in file order.

    Parameters
    ----------
    md : MasterDark or soxs_lib.core.model.StackResult
        Its ``flux``, ``qual`` and ``err``.

    Returns
    -------
    dict
        EXTNAME -> numpy.ndarray.
    """
    return {kw.EXT_FLUX: md.flux.astype(np.float32, copy=False),
            kw.EXT_QUAL: md.qual.astype(np.int32),
            kw.EXT_ERR: md.err.astype(np.float32, copy=False)}


def build_hdus(md: MasterDark, filename: str, data: dict | None = None) -> fits.HDUList:
    """The product, its data in native byte order (``fitswrite.write_hdus``
    converts them as it writes); DATAMD5 is left to ``write_hdus``.  ``data``
    is ``extension_data(md)`` made earlier (the very arrays whose MD5 is
    under way), or None to make it here."""
    primary = fits.PrimaryHDU(header=primary_header(md, filename))
    heads, data = extension_headers(), data or extension_data(md)
    return fits.HDUList([primary] + [fits.ImageHDU(data[n], heads[n]) for n in heads])
