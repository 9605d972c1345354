"""Small FITS header helpers."""

from astropy.io import fits


def card_key(key: str) -> str:
    """ESO keywords longer than 8 characters are HIERARCH cards."""
    return key if len(key) <= 8 and " " not in key else f"HIERARCH {key}"


def put(header: fits.Header, key: str, value, comment: str = "") -> None:
    header.append(fits.Card(card_key(key), value, comment[:47]), end=True) \
        if key not in header else header.set(key, value, comment[:47] or None)
