"""FITS files scanned without astropy: each HDU's keywords and shape.  The
benchmark process stays small so: a child's ru_maxrss starts from its
parent's peak RSS at fork/exec, and a fat parent would inflate every
measurement."""

from __future__ import annotations

from pathlib import Path


def _card_value(text: str):
    text = text.strip()
    if text.startswith("'"):
        end = text.find("'", 1)
        while end != -1 and text[end + 1:end + 2] == "'":
            end = text.find("'", end + 2)
        return text[1:end].replace("''", "'").rstrip()
    text = text.split("/", 1)[0].strip()
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return {"T": True, "F": False}.get(text, text)


def _read_header(f) -> tuple[dict, int] | None:
    """(keywords, bytes read) of the header at the file's position; None
    when the file ends first."""
    hdr, nread = {}, 0
    while True:
        block = f.read(2880)
        if len(block) < 2880:
            return None
        nread += 2880
        for i in range(0, 2880, 80):
            card = block[i:i + 80].decode("ascii", "replace")
            if card.startswith("END") and not card[3:].strip():
                return hdr, nread
            if card.startswith("HIERARCH ") and "=" in card:
                k, v = card[9:].split("=", 1)
                hdr[k.strip()] = _card_value(v)
            elif card[8:10] == "= ":
                hdr[card[:8].strip()] = _card_value(card[10:])


def _data_bytes(hdr: dict) -> tuple[tuple, int]:
    """(shape, bytes of data with padding) an HDU's header announces."""
    naxis = int(hdr.get("NAXIS", 0))
    shape = tuple(int(hdr[f"NAXIS{j}"]) for j in range(naxis, 0, -1))
    n = 1
    for x in shape:
        n *= x
    nbytes = (abs(int(hdr.get("BITPIX", 8))) // 8 * int(hdr.get("GCOUNT", 1))
              * ((n if naxis else 0) + int(hdr.get("PCOUNT", 0))))
    return shape, -(-nbytes // 2880) * 2880


def fits_hdus(path: Path):
    """[(header dict, shape)] of every HDU, read without astropy so that this
    process stays small (a child's ru_maxrss starts from its parent's peak
    RSS at fork/exec, so a fat parent would inflate every measurement).
    None if the file is missing, truncated or not FITS."""
    try:
        size = path.stat().st_size
        out = []
        with open(path, "rb") as f:
            pos = 0
            while pos < size:
                got = _read_header(f)
                if got is None or (not out and got[0].get("SIMPLE") is not True):
                    return None
                hdr, nread = got
                shape, nbytes = _data_bytes(hdr)
                pos += nread
                if pos + nbytes > size:
                    return None
                f.seek(nbytes, 1)
                pos += nbytes
                out.append((hdr, shape))
        return out or None
    except (OSError, ValueError, KeyError):
        return None


def fits_image_shape(path: Path):
    """Shape of the first 2-D image of a complete FITS file, else None."""
    for hdr, shape in fits_hdus(path) or []:
        if len(shape) == 2 and hdr.get("XTENSION", "IMAGE") == "IMAGE":
            return shape
    return None
