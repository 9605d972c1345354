"""Tags, header keywords and product names: each fact declared once."""

ARMS = ("NIR", "VIS")
MIN_FRAMES = 3

# frame tags (SOF) --------------------------------------------------------
def raw_tag(arm: str) -> str:
    """The SOF tag of a raw dark of ``arm``."""
    return f"DARK_{arm}"


# the master dark's category: DARK_<ARM> (the SOXS documentation's, the
# default) or MASTER_DARK_<ARM> (soxspipe's, which its recipes look up by
# header to find a master dark and its read noise)
PRODUCT_CATGS = ("DARK", "MASTER_DARK")


def product_tag(arm: str, catg: str = PRODUCT_CATGS[0]) -> str:
    """The PRO CATG (and product tag) of the master dark of ``arm``, in the
    category ``catg`` (one of ``PRODUCT_CATGS``, the parameter
    ``product_catg``)."""
    return f"{catg}_{arm}"


def edps_task(arm: str) -> str:
    """The EDPS task (``workflows/soxs``) that reduces the darks of ``arm``."""
    return f"mdark_{arm.lower()}"


RAW_TAGS = tuple(raw_tag(a) for a in ARMS)
BIAS_TAG = "MASTER_BIAS_VIS"
BIAS_ARM = "VIS"                 # the arm whose darks take a master bias
CALIB_TAGS = (BIAS_TAG,)
KNOWN_TAGS = RAW_TAGS + CALIB_TAGS
# what soxs_mdark takes: (tag, group, content, how many at least)
INPUTS = tuple((raw_tag(a), "raw", f"{a} raw dark frames of one exposure time, readout mode "
                f"and binning", MIN_FRAMES) for a in ARMS) + (
    (BIAS_TAG, "calib", "optional master bias for VIS darks of the set's binning and readout "
     "(else the overscan gives each frame's bias level)", 0),)

# raw header keywords -----------------------------------------------------
INSTRUME = "INSTRUME"
EXPTIME = "EXPTIME"
MJD_OBS = "MJD-OBS"
DATE_OBS = "DATE-OBS"
DPR_CATG = "ESO DPR CATG"
DPR_TYPE = "ESO DPR TYPE"
DPR_TECH = "ESO DPR TECH"
SEQ_ARM = "ESO SEQ ARM"
READ_CURID = "ESO DET READ CURID"
READ_CURNAME = "ESO DET READ CURNAME"
BINX = "ESO DET BINX"
BINY = "ESO DET BINY"
# arms whose detector is binned: their frames carry BINX/BINY; the NIR array's
# do not (soxspipe leaves the field out of its names)
BINNED_ARMS = ("VIS",)
GAIN = "ESO DET OUT1 GAIN"      # ADU per electron
CONAD = "ESO DET OUT1 CONAD"    # electrons per ADU
ARCFILE = "ARCFILE"
TPL_START = "ESO TPL START"
TPL_ID = "ESO TPL ID"
OBJECT = "OBJECT"
TPL_NEXP = "ESO TPL NEXP"
# detector temperature per arm: (keyword, offset to kelvin); the NIR sensor
# reads kelvin, the VIS one degrees Celsius
DETECTOR_TEMP = {"NIR": ("ESO INS TEMP217 VAL", 0.0),
                 "VIS": ("ESO INS TEMP104 VAL", 273.15)}
PRO_CATG = "ESO PRO CATG"

DARK_DPR_TYPE = "DARK"
# keywords every raw dark must carry
REQUIRED = (INSTRUME, EXPTIME, DPR_CATG, DPR_TYPE, DPR_TECH, SEQ_ARM,
            READ_CURID, READ_CURNAME, MJD_OBS, DATE_OBS)
REQUIRED_BINNED = (BINX, BINY)     # also, on an arm of BINNED_ARMS


def binning_keywords(arm: str) -> tuple[str, ...]:
    """The binning keywords a frame of ``arm`` must carry (none on NIR)."""
    return REQUIRED_BINNED if arm in BINNED_ARMS else ()


def required(arm: str) -> tuple[str, ...]:
    """The keywords every raw dark of ``arm`` must carry."""
    return REQUIRED + binning_keywords(arm)


def binning(header, arm: str) -> tuple[int, int]:
    """(BINX, BINY) of a frame of ``arm``: 1 x 1 on an arm never binned
    whose frames do not say.

    Raises
    ------
    KeyError
        A binned arm's frame without them.
    ValueError, TypeError
        Values that are not integers.
    """
    if arm not in BINNED_ARMS and BINX not in header and BINY not in header:
        return 1, 1
    return int(header[BINX]), int(header[BINY])
# a dark set: the darks that share these values (EXPTIME to 0.01 s) and the
# observing night (``night.group``; the EDPS workflow's grouping keywords)
SET_KEYWORDS = (SEQ_ARM, EXPTIME, READ_CURID, READ_CURNAME, BINX, BINY, TPL_START)
# a master bias fits a VIS set that shares these (the nearest in time is taken)
BIAS_MATCH_KEYWORDS = (BINX, BINY, READ_CURID, READ_CURNAME)
# keywords whose values must agree across the set (name, what it means)
MUST_AGREE = (
    (SEQ_ARM, "arm"),
    (INSTRUME, "instrument"),
    (EXPTIME, "exposure time"),
    (READ_CURID, "readout mode"),
    (READ_CURNAME, "readout mode name"),
    (BINX, "binning"),
    (BINY, "binning"),
    (CONAD, "conversion factor"),
)

# product keywords --------------------------------------------------------
PRO_TYPE = "ESO PRO TYPE"
PRO_TECH = "ESO PRO TECH"
QC_STATUS = "ESO QC STATUS"      # PASS: every metric within its range
PRO_TYPE_VALUE = "REDUCED"
PRO_TECH_VALUE = "IMAGE"
EXT_FLUX, EXT_QUAL, EXT_ERR = "FLUX", "QUAL", "ERR"
BUNIT = "electron"

# what a product inherits from the first raw frame (ESO DFS convention)
INHERIT_PLAIN = ("ORIGIN", "TELESCOP", "INSTRUME", "OBJECT", "RA", "DEC",
                 "EQUINOX", "RADESYS", "DATE-OBS", "MJD-OBS", "UTC", "LST",
                 "PI-COI", "OBSERVER", "EXPTIME")
INHERIT_EXCLUDE_PREFIXES = ("ESO DPR ", "ESO DRS ", "ESO QC ", "ESO PRO ")

WORKSPACE_PRODUCTS = "products"
WORKSPACE_QC = "qc"
WORKSPACE_SOF = "sof"
WORKSPACE_DB = "soxs.db"
WORKSPACE_BACKUPS = "backups"    # databases set aside (damaged, or refreshed)
WORKSPACE_LOCK = ".soxs.lock"
