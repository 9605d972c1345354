"""FITS files in any form archives deliver them, opened with astropy: the
HDU that holds a raw frame's image, and the header a recipe uses (the
primary's merged with that extension's)."""

from __future__ import annotations

import contextlib
from pathlib import Path
import re
import threading
import warnings
import zlib

from astropy.io import fits

from soxs_lib.config.errors import InputError
from soxs_lib.io.archive import damaged, decompress, reader, sniff

# astropy's header parsing and tile decompression hold the GIL, and
# warnings.catch_warnings swaps process-wide filters (two threads inside it at
# once can restore each other's): frames opened on several threads take turns
# in astropy (stream archives still decompress in parallel)
_ASTROPY = threading.RLock()


@contextlib.contextmanager
def quiet_astropy():
    """Hold ``_ASTROPY`` with astropy's warnings silenced: damage is reported
    by the errors raised here, naming the file."""
    with _ASTROPY, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield

# keywords of the HDU structure, not of the observation
_STRUCTURE = {"SIMPLE", "XTENSION", "EXTEND", "PCOUNT", "GCOUNT", "CHECKSUM", "DATASUM",
              "EXTNAME", "EXTVER", "EXTLEVEL", "INHERIT", "COMMENT", "HISTORY", ""}
# keywords that describe the pixels: the image's HDU has the say
_DATA_DESCRIPTION = re.compile(
    r"(BITPIX|NAXIS\d*|BSCALE|BZERO|BUNIT|BLANK|DATAMIN|DATAMAX|WCSAXES|WCSNAME"
    r"|CTYPE\d+|CRPIX\d+|CRVAL\d+|CDELT\d+|CUNIT\d+|CROTA\d+|CD\d+_\d+|PC\d+_\d+)$")


def merge_headers(primary: fits.Header, image: fits.Header) -> fits.Header:
    """The header of an image stored in an extension, as ESO tools see it.

    Parameters
    ----------
    primary : astropy.io.fits.Header
        The primary header (the ESO keywords of the observation).
    image : astropy.io.fits.Header
        The image extension's header (for a compressed image, its image
        header).

    Returns
    -------
    astropy.io.fits.Header
        The primary's keywords, then the extension's that the primary lacks;
        the extension's win for the data description (BITPIX, NAXISn, BSCALE,
        BZERO, BUNIT, WCS), the primary's for every other keyword in both (the
        ESO keywords among them).  Structural keywords are dropped.
    """
    out = fits.Header()
    for card in primary.cards:
        if card.keyword not in _STRUCTURE and not _DATA_DESCRIPTION.match(card.keyword):
            out.append(card)
    for card in image.cards:
        key = card.keyword
        if key in _STRUCTURE:
            continue
        if _DATA_DESCRIPTION.match(key):
            out[key] = (card.value, card.comment)
        elif key not in out:
            out.append(card)
    return out


@contextlib.contextmanager
def open_fits(path, whole: bool = True, scaled: bool = False):
    """Open a FITS file in any supported form as an astropy HDUList.

    Parameters
    ----------
    path : str or Path
        The file.
    whole : bool
        Decompress a stream archive completely first (needed to read data);
        with False, a gzip or bzip2 archive is read as a stream, so
        reading the first headers costs only their blocks.
    scaled : bool
        Data in physical units (BSCALE/BZERO applied); by default as stored.

    Yields
    ------
    astropy.io.fits.HDUList
        Opened read-only, lazily.

    Raises
    ------
    DataNotFound
        The file does not exist.
    InputError
        It cannot be read, is not FITS or a supported archive of FITS, or is
        damaged; the message names the file.
    """
    path = Path(path)
    kind, opener = sniff(path)
    with contextlib.ExitStack() as stack:
        if kind == "fits":
            source = path
        elif whole or opener is None:
            source = stack.enter_context(reader(decompress(path, kind, opener)))
        else:
            source = stack.enter_context(opener(path, "rb"))
        try:
            with quiet_astropy():
                hdul = stack.enter_context(fits.open(
                    source, mode="readonly", memmap=False, lazy_load_hdus=True,
                    do_not_scale_image_data=not scaled))
                _ = hdul[0].header        # parse it now: a damaged header fails here
        except (OSError, EOFError, ValueError, TypeError, IndexError, zlib.error) as exc:
            raise InputError(f"{path}: corrupt or truncated FITS header ({exc})") from None
        yield hdul


def readable_hdus(hdul) -> list:
    """The HDUs that can be read; trailing garbage after them is ignored, as
    cfitsio does."""
    out = []
    with quiet_astropy():
        try:
            for hdu in hdul:
                out.append(hdu)
        except Exception:   # noqa: BLE001 - whatever astropy makes of the garbage
            pass
    return out


def is_image(hdu) -> bool:
    """Whether an HDU holds an image with data."""
    return (isinstance(hdu, (fits.ImageHDU, fits.CompImageHDU))
            and int(hdu.header.get("NAXIS", 0)) > 0)


def _name(hdu, index: int) -> str:
    return hdu.name if hdu.name and hdu.name != "PRIMARY" else f"#{index}"


def image_hdu(hdul, path) -> tuple[int, fits.Header]:
    """Index of the HDU holding a raw frame's image, and the header to use.

    Raises
    ------
    InputError
        No image, or more than one (a multi-detector frame), naming them.
    """
    hdus = readable_hdus(hdul)
    primary = hdus[0]
    images = [(i, h) for i, h in enumerate(hdus[1:], 1) if is_image(h)]
    names = ", ".join(_name(h, i) for i, h in images)
    if int(primary.header.get("NAXIS", 0)) > 0:
        if images:
            raise InputError(f"{path}: unexpected image extension(s) {names} beside the "
                             "primary image; a raw dark holds one detector image")
        return 0, primary.header
    if not images:
        others = ", ".join(_name(h, i) for i, h in enumerate(hdus[1:], 1))
        what = f" (its extension(s) {others} hold no image)" if others else ""
        raise InputError(f"{path}: the primary HDU holds no image and no image extension "
                         f"follows{what}")
    if len(images) > 1:
        raise InputError(f"{path}: {len(images)} image extensions ({names}): a "
                         "multi-detector frame; soxs_mdark takes one detector image per file")
    index, hdu = images[0]
    return index, merge_headers(primary.header, hdu.header)


def read_header(path) -> fits.Header:
    """The header a recipe uses, reading as little as possible.

    The primary header; merged with the image extension's (``merge_headers``)
    when the primary holds no data and exactly one image extension follows.

    Raises
    ------
    DataNotFound, InputError
        As ``open_fits``.
    """
    with open_fits(path, whole=False) as hdul:
        try:
            primary = hdul[0].header
            if int(primary.get("NAXIS", 0)) > 0:
                return primary.copy()
            images = [h for h in readable_hdus(hdul)[1:] if is_image(h)]
            if len(images) == 1:
                return merge_headers(primary, images[0].header)
            return primary.copy()
        except (OSError, EOFError, zlib.error) as exc:
            raise damaged(Path(path), "file", exc) from None
