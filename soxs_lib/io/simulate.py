"""Synthetic raw SOXS darks with a known truth, for ``make run``, the tests
and the benchmarks.

Each frame is: Poisson(true dark signal) + Gaussian read noise + cosmic rays,
converted to ADU with the arm's gain; VIS frames add a bias level (varying
from frame to frame) that also fills the pre/overscan columns; NIR frames are
float32 like the detector's, VIS frames unsigned 16-bit with saturation.
The true dark signal is a uniform dark current with a small pixel-to-pixel
non-uniformity plus hot pixels whose excess spans faint to saturated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.time import Time, TimeDelta

from soxs_lib.config import keywords as kw
from soxs_lib.io.fitsutil import put
from soxs_lib.config.detector import detector

SHAPES = {"NIR": (2048, 2048), "VIS": (4096, 908)}   # (NAXIS2, NAXIS1), unbinned
BAD_VALUE = 128                                       # X-Shooter static BPM: bad pixel


@dataclass
class Truth:
    """What the simulator put into a set of raw darks."""

    arm: str
    exptime: float
    gain: float
    ron: float                 # e-
    dark: np.ndarray           # true dark signal of the science region, e-
    hot: np.ndarray            # bool: pixel has injected excess dark current
    excess: np.ndarray         # injected excess, e- (0 where not hot)
    cosmics: list              # per frame: flat indices (science region) hit
    bias_adu: list             # per frame bias level, ADU (VIS)
    saturated: np.ndarray      # bool: true signal saturates every frame
    paths: list

    @property
    def single_frame_noise(self) -> np.ndarray:
        """Per pixel, the noise of one frame (read noise and dark shot noise), e-."""
        return np.sqrt(self.ron ** 2 + self.dark)


def _hot_positions(rng, shape, fraction, pattern):
    if pattern is not None:
        with fits.open(pattern) as hdul:
            bpm = np.asarray(hdul[0].data) == BAD_VALUE
        reps = (-(-shape[0] // bpm.shape[0]) + 1, -(-shape[1] // bpm.shape[1]) + 1)
        big = np.tile(bpm, reps)
        # the window of the detector's size with the most bad pixels
        offsets = [(r, c) for r in range(0, bpm.shape[0], max(1, bpm.shape[0] // 8))
                   for c in range(0, bpm.shape[1], max(1, bpm.shape[1] // 8))]
        r, c = max(offsets, key=lambda o: big[o[0]:o[0] + shape[0],
                                              o[1]:o[1] + shape[1]].sum())
        return big[r:r + shape[0], c:c + shape[1]].copy()
    hot = rng.random(shape) < fraction
    # clusters and a partial hot column, as real detectors have
    for _ in range(max(1, int(shape[0] * shape[1] * fraction / 400))):
        r, c = rng.integers(2, shape[0] - 3), rng.integers(2, shape[1] - 3)
        hot[r - 1:r + 2, c - 1:c + 2] = True
    c = rng.integers(0, shape[1])
    r = rng.integers(0, shape[0] // 2)
    hot[r:r + shape[0] // 3, c] = True
    return hot


def simulate_darks(outdir, arm: str = "NIR", nframes: int = 5, exptime: float = 300.0,
                   dark_rate: float | None = None, ron: float | None = None,
                   hot_fraction: float = 0.002, cosmics_per_frame: int = 400,
                   bias_level: float = 1000.0, binning: int = 1, seed: int = 1,
                   pattern=None, start: str = "2026-01-11T08:29:24",
                   dtype=None, readout=None, write_sof: bool = True,
                   tpl_nexp: int | None = None, prefix: str = "SOXS") -> Truth:
    """Write ``nframes`` raw darks to ``outdir`` (and ``mdark.sof`` beside
    them, naming them by file name); return the truth.  ``tpl_nexp``: the
    frames the template announces (default ``nframes``; more makes an
    incomplete template); ``readout``: the readout mode, its CURID or
    CURNAME (``static_calib/detectors.yaml``; default the arm's first);
    ``prefix`` starts the file names."""
    rng = np.random.default_rng(seed)
    det = detector(arm)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    binx = biny = binning if arm == "VIS" else 1
    shape = (SHAPES[arm][0] // biny, SHAPES[arm][1] // binx)
    r0, r1, c0, c1 = det.science_region(binx, biny)
    sci = (r1 - r0, c1 - c0)
    gain = det.gain
    ron = det.ron if ron is None else ron
    if dark_rate is None:
        dark_rate = 0.005 if arm == "NIR" else 0.0001
    level = dark_rate * exptime * binx * biny
    dark = np.clip(level * (1 + 0.05 * rng.standard_normal(sci)), 0, None)
    hot = _hot_positions(rng, sci, hot_fraction, pattern)
    noise1 = np.sqrt(ron ** 2 + level)
    full_well = (det.saturation - (bias_level if det.bias_from_overscan else 0)) * gain
    # excess log-uniform from 0.5 single-frame sigmas to beyond saturation
    excess = np.zeros(sci)
    top = max(3000 * noise1, 1.5 * full_well)
    excess[hot] = noise1 * np.exp(rng.uniform(np.log(0.5), np.log(top / noise1), hot.sum()))
    dark = dark + excess
    saturated = dark >= full_well * 1.05
    if dtype is None:
        dtype = np.float32 if arm == "NIR" else np.uint16
    curid, curname = det.readout(readout)
    t0 = Time(start, format="isot", scale="utc")
    cosmics, biases, paths = [], [], []
    for i in range(nframes):
        e = rng.poisson(dark).astype(np.float64) + ron * rng.standard_normal(sci)
        hits = rng.choice(sci[0] * sci[1], size=cosmics_per_frame, replace=False)
        amp = rng.uniform(200, 20000, size=hits.size)
        flat = e.reshape(-1)
        flat[hits] += amp
        hit_rows, hit_cols = np.divmod(hits, sci[1])
        for dr, dc in ((0, 1), (1, 0)):   # charge spilling into a neighbour
            ok = (hit_rows + dr < sci[0]) & (hit_cols + dc < sci[1])
            e[hit_rows[ok] + dr, hit_cols[ok] + dc] += amp[ok] * rng.uniform(0.05, 0.3, ok.sum())
            hits = np.concatenate([hits, (hit_rows[ok] + dr) * sci[1] + hit_cols[ok] + dc])
        cosmics.append(np.unique(hits))
        img = ron / gain * rng.standard_normal(shape)
        bias = 0.0
        if det.bias_from_overscan:
            bias = bias_level + rng.normal(0, 3)
            img += bias
        img[r0:r1, c0:c1] = e / gain + bias
        if np.issubdtype(dtype, np.integer):
            img = np.clip(np.rint(img), 0, det.saturation)
        else:
            img = np.minimum(img, det.saturation)
        biases.append(bias)
        t = t0 + TimeDelta((exptime + 30.0) * i, format="sec")
        hdr = _header(arm, exptime, t, i, tpl_nexp or nframes, binx, biny, gain, ron,
                      (curid, curname), t0)
        hdu = fits.PrimaryHDU(header=hdr)
        if dtype == np.uint16:
            hdu.data = img.astype(np.uint16)   # astropy writes BITPIX=16, BZERO=32768
        else:
            hdu.data = img.astype(dtype)
        path = outdir / f"{prefix}_{arm}_DARK_{exptime:g}s_{i + 1:03d}.fits"
        hdu.writeto(path, overwrite=True)
        paths.append(path)
    if write_sof:
        (outdir / "mdark.sof").write_text(
            "".join(f"{p.name} {kw.raw_tag(arm)}\n" for p in paths))
    return Truth(arm=arm, exptime=exptime, gain=gain, ron=ron, dark=dark, hot=hot,
                 excess=excess, cosmics=cosmics, bias_adu=biases, saturated=saturated,
                 paths=paths)


# what a real SOXS dark carries besides what soxs_mdark reads (soxspipe
# harvests them): the template and OB, the arm's slit and simulation flag,
# the acquisition filter wheel, the telescope parked at the zenith
TEMPLATE_ID, TEMPLATE_NAME = "SOXS_gen_cal_Dark", "Dark"
SLIT_KEYWORDS = {"NIR": ("ESO INS NISE NAME", "ESO INS NISE SWSIM", "BLANK"),
                 "VIS": ("ESO INS VISE NAME", "ESO INS VISE SWSIM", "BLANK")}


def _header(arm, exptime, t, i, n, binx, biny, gain, ron, readout, t0) -> fits.Header:
    """A raw SOXS dark's primary header; ``readout``: (CURID, CURNAME)."""
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


# a night of raw frames: (sub-folder, arm, frames, EXPTIME, binning, readout,
# announced frames, start): two NIR templates of the same EXPTIME, two VIS
# binnings and readouts, and one template still under way
NIGHT_SETS = (
    ("NIR", 3, 300.0, 1, None, None, "2026-01-11T21:10:00"),
    ("NIR", 3, 300.0, 1, None, None, "2026-01-11T23:40:00"),
    ("NIR", 4, 60.0, 1, None, None, "2026-01-12T02:05:00"),
    ("NIR", 3, 600.0, 1, None, 5, "2026-01-12T08:30:00"),
    ("VIS", 3, 600.0, 2, "SHG", None, "2026-01-11T20:30:00"),
    ("VIS", 3, 1800.0, 2, "SHG", None, "2026-01-12T05:00:00"),
    ("VIS", 3, 300.0, 2, "FHG", None, "2026-01-12T06:45:00"),
    ("VIS", 3, 60.0, 1, "SLG", None, "2026-01-12T07:30:00"),
    ("VIS", 3, 900.0, 2, "FLG", None, "2026-01-12T09:10:00"),
)


def simulate_night(outdir, seed: int = 1, cosmics_per_frame: int = 100) -> list[Truth]:
    """Write a realistic night to ``outdir/raw/<date>/``: the dark sets of
    ``NIGHT_SETS`` (both arms, several EXPTIMEs, binnings and readouts, two
    templates of one EXPTIME, one template still under way), and frames
    that are not darks (flats and biases) beside them.  Returns the truth
    of each dark set."""
    raw = Path(outdir) / "raw" / "2026-01-11"
    truths = []
    for k, (arm, n, exptime, binning, readout, nexp, start) in enumerate(NIGHT_SETS):
        truths.append(simulate_darks(
            raw, arm=arm, nframes=n, exptime=exptime, binning=binning, readout=readout,
            seed=seed * 100 + k, start=start, tpl_nexp=nexp, write_sof=False,
            cosmics_per_frame=cosmics_per_frame,
            prefix=f"SOXS_{start[:10].replace('-', '')}T{start[11:13]}{start[14:16]}"))
    rng = np.random.default_rng(seed)
    t = Time("2026-01-11T19:00:00", format="isot", scale="utc")
    for k, (arm, dpr) in enumerate([("NIR", "FLAT"), ("VIS", "FLAT"), ("VIS", "BIAS"),
                                    ("VIS", "BIAS"), ("VIS", "BIAS")]):
        hdr = _header(arm, 1.0 if dpr == "FLAT" else 0.0, t, k, 1, 1, 1, 1.0, 3.0,
                      detector(arm).readout(), t)
        put(hdr, kw.DPR_TYPE, dpr, "Observation type")
        data = rng.normal(1000, 5, (64, 64)).astype(np.float32)
        fits.PrimaryHDU(data, hdr).writeto(raw / f"SOXS_{arm}_{dpr}_{k + 1:03d}.fits",
                                           overwrite=True)
    return truths
