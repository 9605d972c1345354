"""Small FITS header helpers."""

import warnings

from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning


def card_key(key: str) -> str:
    """ESO keywords longer than 8 characters are HIERARCH cards."""
    return key if len(key) <= 8 and " " not in key else f"HIERARCH {key}"


def put(header: fits.Header, key: str, value, comment: str = "") -> None:
    """Set a keyword, shortening its comment to keep the card in 80 characters."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)
        room = 80 - len(fits.Card(card_key(key), value).image.rstrip()) - 3
        comment = comment[:max(0, room)]
        if key in header:
            header.set(key, value, comment or None)
        else:
            header.append(fits.Card(card_key(key), value, comment), end=True)
