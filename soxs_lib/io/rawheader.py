"""The primary header of a simulated raw SOXS dark, with what real ones
carry: the keywords soxs_mdark reads, and those soxspipe harvests."""

from __future__ import annotations

from astropy.io import fits

from soxs_lib.config import keywords as kw
from soxs_lib.io.fitsutil import put

# what a real SOXS dark carries besides what soxs_mdark reads (soxspipe
# harvests them): the template and OB, the arm's slit and simulation flag,
# the acquisition filter wheel, the telescope parked at the zenith
TEMPLATE_ID, TEMPLATE_NAME = "SOXS_gen_cal_Dark", "Dark"
SLIT_KEYWORDS = {"NIR": ("ESO INS NISE NAME", "ESO INS NISE SWSIM", "BLANK"),
                 "VIS": ("ESO INS VISE NAME", "ESO INS VISE SWSIM", "BLANK")}


def raw_header(arm: str, exptime: float, times: tuple, binning: tuple,
            chip: tuple) -> fits.Header:
    """A raw SOXS dark's primary header; ``times``: (template start, start,
    exposure index, exposures announced); ``binning``: (BINX, BINY);
    ``chip``: (gain e-/ADU, read noise e-, (CURID, CURNAME))."""
    t0, t, i, n = times
    binx, biny = binning
    gain, ron, readout = chip
    h = fits.Header()
    stamp = t.isot[:23]
    slit_key, swsim_key, slit = SLIT_KEYWORDS[arm]
    cards = [
        ("ORIGIN", "ESO-LASILLA", "European Southern Observatory"),
        ("TELESCOP", "ESO-NTT", "ESO Telescope designation"),
        ("INSTRUME", "SOXS", "Instrument used"),
        ("OBJECT", "DARK", "Original target"),
        ("RA", 0.0, "[deg] telescope pointing"),
        ("DEC", -29.2567, "[deg] telescope pointing"),
        ("EQUINOX", 2000.0, "Standard FK5 (years)"),
        ("RADESYS", "FK5", "Coordinate reference frame"),
        ("EXPTIME", float(exptime), "Integration time [s]"),
        ("DATE-OBS", stamp, "Observing date"),
        ("MJD-OBS", float(t.mjd), "Obs start"),
        ("UTC", float((t.mjd % 1) * 86400), "[s] UTC at start"),
        ("ARCFILE", f"SOXS.{stamp}.fits", "Archive file name"),
        ("PI-COI", "UNKNOWN", "PI-COI name"),
        ("ESO OBS ID", 200000000 + int(round(t0.mjd * 100)) % 100000000, "Observation block ID"),
        ("ESO OBS NAME", f"Calib_{arm}_Dark", "OB name"),
        ("ESO OBS START", t0.isot[:19], "OB start time"),
        ("ESO OBS TPLNO", 1, "Template number within OB"),
        ("ESO OBS NTPL", 1, "Number of templates within OB"),
        ("ESO OBS TARG NAME", "Calibration", "OB target name"),
        ("ESO TPL ID", TEMPLATE_ID, "Template signature ID"),
        ("ESO TPL NAME", TEMPLATE_NAME, "Template name"),
        ("ESO TPL START", t0.isot[:19], "TPL start time"),
        ("ESO TPL NEXP", n, "Number of exposures within template"),
        ("ESO TPL EXPNO", i + 1, "Exposure number within template"),
        ("ESO DPR CATG", "CALIB", "Observation category"),
        ("ESO DPR TYPE", "DARK", "Observation type"),
        ("ESO DPR TECH", "IMAGE", "Observation technique"),
        ("ESO SEQ ARM", arm, "Arm"),
        ("ESO DET READ CURID", int(readout[0]), "Used readout mode id"),
        ("ESO DET READ CURNAME", readout[1], "Used readout mode name"),
    ]
    if arm in kw.BINNED_ARMS:
        cards += [("ESO DET BINX", binx, "Binning factor along X"),
                  ("ESO DET BINY", biny, "Binning factor along Y")]
    cards += [
        ("ESO DET OUT1 GAIN", 1.0 / gain, "Conversion from electrons to ADU"),
        ("ESO DET OUT1 CONAD", gain, "Conversion from ADUs to electrons"),
        ("ESO DET CHIP RON", ron, "Readout noise per output (e-)"),
        ("ESO INS ACFW ID", "Free", "Acquisition filter wheel position"),
        (slit_key, slit, "Slit name"),
        (swsim_key, False, "Simulation of the slit wheel"),
        ("ESO TEL ALT", 90.0, "[deg] Alt angle at start"),
        ("ESO TEL AZ", 0.0, "[deg] Az angle at start"),
        ("ESO TEL AIRM START", 1.0, "Airmass at start"),
        ("ESO TEL AIRM END", 1.0, "Airmass at end"),
    ]
    if arm == "NIR":
        cards += [("ESO DET DIT", float(exptime), "Integration time"),
                  ("ESO DET NDIT", 1, "Number of sub-integrations"),
                  ("ESO INS TEMP217 VAL", 40.0, "[K] NIR detector temperature")]
    else:
        cards += [("ESO INS TEMP104 VAL", -110.0, "[C] VIS detector temperature")]
    cards += [("ESO INS TEMP301 VAL", 12.0, "[C] common path temperature")]
    for k, v, c in cards:
        put(h, k, v, c)
    return h
