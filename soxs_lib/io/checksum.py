"""FITS checksums (the FITS standard, appendix J): the 32-bit ones'
complement sum of big-endian words (``DATASUM``) and the 16-character
encoding of ``CHECKSUM``.

astropy computes them on whole arrays as it writes them; ``fitswrite`` sums
each chunk of data as it converts and writes it instead, so this is the
arithmetic alone, as astropy does it (its checks verify what is written).
"""

from __future__ import annotations

import numpy as np

_MASK32 = 0xFFFFFFFF
# the punctuation between the digits and the letters, which CHECKSUM avoids
_EXCLUDE = frozenset(range(0x3A, 0x41)) | frozenset(range(0x5B, 0x61))


def ones_sum(data, start: int = 0) -> int:
    """``start`` plus the 32-bit ones' complement sum of ``data``.

    Parameters
    ----------
    data : bytes-like
        Big-endian words: a length that is a multiple of 4.
    start : int
        A sum so far (of the data before, or a DATASUM).

    Returns
    -------
    int
        The sum, its carries folded back in (0 .. 2**32 - 1).
    """
    s = start + int(np.frombuffer(data, ">u4").sum(dtype=np.uint64))
    while s >> 32:
        s = (s & _MASK32) + (s >> 32)
    return s


def _encode_byte(byte: int) -> list:
    quotient = byte // 4 + ord("0")
    ch = [quotient + byte % 4, quotient, quotient, quotient]
    moved = True
    while moved:                         # shift pairs away from punctuation
        moved = False
        for j in (0, 2):
            if ch[j] in _EXCLUDE or ch[j + 1] in _EXCLUDE:
                ch[j] += 1
                ch[j + 1] -= 1
                moved = True
    return ch


def checksum_card(header: bytes, datasum: int) -> str:
    """The value of ``CHECKSUM`` for an HDU.

    Parameters
    ----------
    header : bytes
        The header as written, with ``CHECKSUM`` set to 16 zeros and
        ``DATASUM`` to its value.
    datasum : int
        The data's ``ones_sum``.

    Returns
    -------
    str
        16 characters that make the sum of the HDU all ones (-0).
    """
    value = ~ones_sum(header, datasum) & _MASK32
    chars = [0] * 16
    for i in range(4):
        for j, c in enumerate(_encode_byte((value >> (24 - 8 * i)) & 0xFF)):
            chars[4 * j + i] = c
    return bytes(chars[15:] + chars[:15]).decode("ascii")   # rotated one place right
