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
from soxs_lib.io.rawheader import raw_header
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


@dataclass
class DarkSpec:
    """A set of raw darks to simulate (``simulate_darks``' keyword arguments)."""

    arm: str = "NIR"
    nframes: int = 5
    exptime: float = 300.0
    dark_rate: float | None = None        # e-/s/pixel; default the arm's
    ron: float | None = None              # e-; default the detector's
    hot_fraction: float = 0.002
    cosmics_per_frame: int = 400
    bias_level: float = 1000.0            # ADU (VIS)
    binning: int = 1                      # VIS only
    seed: int = 1
    pattern: object = None                # a bad-pixel map placing the hot pixels
    start: str = "2026-01-11T08:29:24"    # DATE-OBS of the first frame
    dtype: object = None                  # default float32 NIR, uint16 VIS
    readout: object = None                # mode, CURID or CURNAME; default the arm's first
    write_sof: bool = True
    tpl_nexp: int | None = None           # frames announced; more: an incomplete template
    prefix: str = "SOXS"                  # start of the file names


def _signal(spec: DarkSpec, det, rng, sci: tuple, ron: float) -> dict:
    """The true dark signal (e-) of the science region and its parts."""
    binx = biny = spec.binning if spec.arm == "VIS" else 1
    dark_rate = spec.dark_rate
    if dark_rate is None:
        dark_rate = 0.005 if spec.arm == "NIR" else 0.0001
    level = dark_rate * spec.exptime * binx * biny
    dark = np.clip(level * (1 + 0.05 * rng.standard_normal(sci)), 0, None)
    hot = _hot_positions(rng, sci, spec.hot_fraction, spec.pattern)
    noise1 = np.sqrt(ron ** 2 + level)
    full_well = (det.saturation - (spec.bias_level if det.bias_from_overscan else 0)) * det.gain
    # excess log-uniform from 0.5 single-frame sigmas to beyond saturation
    excess = np.zeros(sci)
    top = max(3000 * noise1, 1.5 * full_well)
    excess[hot] = noise1 * np.exp(rng.uniform(np.log(0.5), np.log(top / noise1), hot.sum()))
    dark = dark + excess
    return dict(dark=dark, hot=hot, excess=excess, saturated=dark >= full_well * 1.05)


def _cosmics(rng, e: np.ndarray, n: int) -> np.ndarray:
    """Add ``n`` cosmic-ray hits to ``e`` (e-, in place); the pixels hit."""
    sci = e.shape
    hits = rng.choice(sci[0] * sci[1], size=n, replace=False)
    amp = rng.uniform(200, 20000, size=hits.size)
    flat = e.reshape(-1)
    flat[hits] += amp
    hit_rows, hit_cols = np.divmod(hits, sci[1])
    for dr, dc in ((0, 1), (1, 0)):   # charge spilling into a neighbour
        ok = (hit_rows + dr < sci[0]) & (hit_cols + dc < sci[1])
        e[hit_rows[ok] + dr, hit_cols[ok] + dc] += amp[ok] * rng.uniform(0.05, 0.3, ok.sum())
        hits = np.concatenate([hits, (hit_rows[ok] + dr) * sci[1] + hit_cols[ok] + dc])
    return np.unique(hits)


def _raw(spec: DarkSpec, det, rng, e: np.ndarray, shape: tuple, ron: float):
    """A raw frame in ADU around the science region ``e`` (e-), and its bias."""
    b = spec.binning if spec.arm == "VIS" else 1
    r0, r1, c0, c1 = det.science_region(b, b)
    img = ron / det.gain * rng.standard_normal(shape)
    bias = 0.0
    if det.bias_from_overscan:
        bias = spec.bias_level + rng.normal(0, 3)
        img += bias
    img[r0:r1, c0:c1] = e / det.gain + bias
    dtype = spec.dtype or (np.float32 if spec.arm == "NIR" else np.uint16)
    if np.issubdtype(dtype, np.integer):
        img = np.clip(np.rint(img), 0, det.saturation)
    else:
        img = np.minimum(img, det.saturation)
    # uint16: astropy writes BITPIX=16, BZERO=32768
    return img.astype(dtype), bias


def simulate_darks(outdir, **options) -> Truth:
    """Write raw darks to ``outdir`` (and ``mdark.sof`` beside them, naming
    them by file name).

    Parameters
    ----------
    outdir : str or Path
        The folder, made if needed.
    **options
        The fields of ``DarkSpec``.

    Returns
    -------
    Truth

    Raises
    ------
    TypeError
        An option ``DarkSpec`` does not have.
    """
    spec = DarkSpec(**options)
    rng = np.random.default_rng(spec.seed)
    det = detector(spec.arm)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    binx = biny = spec.binning if spec.arm == "VIS" else 1
    shape = (SHAPES[spec.arm][0] // biny, SHAPES[spec.arm][1] // binx)
    r0, r1, c0, c1 = det.science_region(binx, biny)
    sci = (r1 - r0, c1 - c0)
    ron = det.ron if spec.ron is None else spec.ron
    truth = _signal(spec, det, rng, sci, ron)
    readout = det.readout(spec.readout)
    t0 = Time(spec.start, format="isot", scale="utc")
    cosmics, biases, paths = [], [], []
    for i in range(spec.nframes):
        e = rng.poisson(truth["dark"]).astype(np.float64) + ron * rng.standard_normal(sci)
        cosmics.append(_cosmics(rng, e, spec.cosmics_per_frame))
        img, bias = _raw(spec, det, rng, e, shape, ron)
        biases.append(bias)
        t = t0 + TimeDelta((spec.exptime + 30.0) * i, format="sec")
        hdr = raw_header(spec.arm, spec.exptime, (t0, t, i, spec.tpl_nexp or spec.nframes),
                      (binx, biny), (det.gain, ron, readout))
        path = outdir / f"{spec.prefix}_{spec.arm}_DARK_{spec.exptime:g}s_{i + 1:03d}.fits"
        fits.PrimaryHDU(img, hdr).writeto(path, overwrite=True)
        paths.append(path)
    if spec.write_sof:
        (outdir / "mdark.sof").write_text(
            "".join(f"{p.name} {kw.raw_tag(spec.arm)}\n" for p in paths))
    return Truth(arm=spec.arm, exptime=spec.exptime, gain=det.gain, ron=ron,
                 cosmics=cosmics, bias_adu=biases, paths=paths, **truth)


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
        hdr = raw_header(arm, 1.0 if dpr == "FLAT" else 0.0, (t, t, k, 1), (1, 1),
                      (1.0, 3.0, detector(arm).readout()))
        put(hdr, kw.DPR_TYPE, dpr, "Observation type")
        data = rng.normal(1000, 5, (64, 64)).astype(np.float32)
        fits.PrimaryHDU(data, hdr).writeto(raw / f"SOXS_{arm}_{dpr}_{k + 1:03d}.fits",
                                           overwrite=True)
    return truths
