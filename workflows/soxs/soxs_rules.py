"""Classification rules a keyword dictionary cannot express: what a raw SOXS
dark or a master bias is.  They apply ``soxs prep``'s own rule
(``soxs_lib.night.classify.header_kind``) to the keywords EDPS hands over,
so the workflow takes exactly the files ``prep`` takes: SOXS, ``DPR TYPE``
DARK, arm NIR or VIS, no ``PRO CATG`` (a product that kept its raw frame's
``DPR`` keywords is not a raw dark), and every keyword a set needs."""

from soxs_lib.config import keywords as kw
from soxs_lib.night.classify import header_kind

from .soxs_keywords import edps_name


class EdpsHeader:
    """The keywords of a file as EDPS gives them to a rule (``f["dpr.type"]``,
    None where the file lacks one), read by ESO name as ``header_kind`` reads
    a FITS header.

    Parameters
    ----------
    f : EDPS file
        What EDPS passes to a classification function.
    """

    def __init__(self, f):
        self._f = f

    def _value(self, keyword: str):
        try:
            return self._f[edps_name(keyword)]
        except KeyError:
            return None

    def get(self, keyword: str, default=None):
        """The value of ``keyword``, or ``default`` where the file lacks it."""
        value = self._value(keyword)
        return default if value is None else value

    def __contains__(self, keyword: str) -> bool:
        return self._value(keyword) is not None

    def __getitem__(self, keyword: str):
        value = self._value(keyword)
        if value is None:
            raise KeyError(keyword)
        return value


def kind_of(f) -> str:
    """What ``prep`` takes the file for: ``DARK_NIR``, ``DARK_VIS``,
    ``MASTER_BIAS_VIS``, or empty (left out).

    Parameters
    ----------
    f : EDPS file
        Its keywords by EDPS name.

    Returns
    -------
    str
    """
    return header_kind(EdpsHeader(f))[0]


def is_raw_dark_nir(f) -> bool:
    """A raw NIR dark that soxs_mdark reduces."""
    return kind_of(f) == kw.raw_tag("NIR")


def is_raw_dark_vis(f) -> bool:
    """A raw VIS dark that soxs_mdark reduces."""
    return kind_of(f) == kw.raw_tag("VIS")


def is_master_bias_vis(f) -> bool:
    """A SOXS VIS master bias (by its ``PRO CATG``) with the readout and
    binning keywords a set is matched on."""
    return kind_of(f) == kw.BIAS_TAG
