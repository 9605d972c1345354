"""Header keywords of the SOXS workflow, spelled as EDPS hands them to a rule
(lower case, without ``ESO``, dotted: ``ESO DPR TYPE`` is ``dpr.type``).
Each is the project's own declaration (``soxs_lib.config.keywords``) in
EDPS's spelling, so the workflow and ``soxs prep`` read the same keywords."""

from soxs_lib.config import keywords as kw


def edps_name(keyword: str) -> str:
    """A header keyword as EDPS spells it.

    Parameters
    ----------
    keyword : str
        The keyword as astropy and the project name it (``"ESO DPR TYPE"``,
        ``"MJD-OBS"``).

    Returns
    -------
    str
        ``"dpr.type"``, ``"mjd-obs"``.
    """
    name = keyword[len("ESO "):] if keyword.startswith("ESO ") else keyword
    return name.lower().replace(" ", ".")


instrume = edps_name(kw.INSTRUME)
pro_catg = edps_name(kw.PRO_CATG)
dpr_catg = edps_name(kw.DPR_CATG)
dpr_type = edps_name(kw.DPR_TYPE)
dpr_tech = edps_name(kw.DPR_TECH)
seq_arm = edps_name(kw.SEQ_ARM)
exptime = edps_name(kw.EXPTIME)
det_read_curid = edps_name(kw.READ_CURID)
det_read_curname = edps_name(kw.READ_CURNAME)
det_binx = edps_name(kw.BINX)
det_biny = edps_name(kw.BINY)
tpl_start = edps_name(kw.TPL_START)
tpl_nexp = edps_name(kw.TPL_NEXP)
mjd_obs = edps_name(kw.MJD_OBS)
date_obs = edps_name(kw.DATE_OBS)

# one job per dark set: the keywords its darks share
set_keywords = [edps_name(k) for k in kw.SET_KEYWORDS]
# a master bias fits a VIS set that shares these
bias_match_keywords = [edps_name(k) for k in kw.BIAS_MATCH_KEYWORDS]
