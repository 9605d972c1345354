"""The soxs_mdark core: from a checked FrameSet to a master dark with its
ERR, QUAL and QC.  Both front ends (``soxs mdark`` and the PyEsoRex recipe)
call ``make_master_dark``; neither does any science of its own."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
import logging
import time

import numpy as np
from astropy.io import fits

from . import flags, hotpix, qc
from .forked import ForkedCall
from .params import thread_count
from . import keywords as kw
from .detector import Detector, detector
from .errors import InputError
from .frames import FrameSet
from .rawio import open_fits
from .stats import clipped_stats, median, sample_rows, temporal_noise

log = logging.getLogger("soxs")


@dataclass
class FrameInfo:
    name: str
    bias_adu: float
    level: float        # e-
    sigma: float        # e-
    rogue_frac: float


@dataclass
class MasterDark:
    arm: str
    exptime: float
    frameset: FrameSet
    params: dict
    flux: np.ndarray
    err: np.ndarray
    qual: np.ndarray
    nused: np.ndarray
    gain: float
    region: tuple
    frames: list[FrameInfo]
    qc: list[qc.QCResult]
    timings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)   # for the report and the log

    @property
    def qc_passed(self) -> bool:
        return all(r.passed is not False for r in self.qc)


def _gain(fs: FrameSet, det: Detector) -> float:
    h = fs.first.header
    if kw.CONAD in h:
        g = float(h[kw.CONAD])
        if not np.isfinite(g) or g <= 0:
            raise InputError(f"{fs.first.path}: invalid {kw.CONAD} = {h[kw.CONAD]!r}")
        return g
    if kw.GAIN in h and float(h[kw.GAIN]) > 0:
        return 1.0 / float(h[kw.GAIN])
    return det.gain


def _region(fs: FrameSet, det: Detector):
    h = fs.first.header
    binx, biny = int(h[kw.BINX]), int(h[kw.BINY])
    if binx < 1 or biny < 1:
        raise InputError(f"{fs.first.path}: invalid binning {binx}x{biny}")
    r0, r1, c0, c1 = det.science_region(binx, biny)
    nrow, ncol = fs.first.shape
    if r1 > nrow or c1 > ncol:
        raise InputError(
            f"{fs.first.path}: image is {ncol}x{nrow} pixels but the {det.arm} science "
            f"region at binning {binx}x{biny} needs at least {c1}x{r1}")
    return r0, r1, c0, c1


def _scaled(hdu) -> np.ndarray:
    """An HDU's data in physical units (``open_fits`` leaves plain data unscaled)."""
    data = hdu.data
    if data is None:
        return data
    bscale, bzero = hdu.header.get("BSCALE", 1.0), hdu.header.get("BZERO", 0.0)
    return data * bscale + bzero if (bscale, bzero) != (1.0, 0.0) else data


def _master_bias(path, region, full_shape, gain):
    """FLUX and ERR of a MASTER_BIAS_VIS, in electrons, on the science region."""
    r0, r1, c0, c1 = region
    try:
        with open_fits(path) as hdul:
            ext = "FLUX" if "FLUX" in hdul else 0
            flux = np.asarray(_scaled(hdul[ext]), np.float32)
            err = (np.asarray(_scaled(hdul["ERR"]), np.float32) if "ERR" in hdul
                   else np.zeros_like(flux))
            unit = str(hdul[ext].header.get("BUNIT", hdul[0].header.get("BUNIT", "electron")))
    except (OSError, ValueError, TypeError, EOFError) as exc:
        raise InputError(f"{path}: cannot read the master bias ({exc})") from None
    if flux.ndim != 2:
        raise InputError(f"{path}: the master bias is not a 2-D image")
    if flux.shape == tuple(full_shape):
        flux, err = flux[r0:r1, c0:c1], err[r0:r1, c0:c1]
    elif flux.shape != (r1 - r0, c1 - c0):
        raise InputError(f"{path}: master bias is {flux.shape[1]}x{flux.shape[0]}, matching "
                         f"neither the raw frames nor their science region")
    if unit.strip().lower() in ("adu", "count", "counts"):
        flux, err = flux * gain, err * gain
    if not np.all(np.isfinite(flux)):
        flux = np.where(np.isfinite(flux), flux, np.nanmedian(flux))
    return np.ascontiguousarray(flux), np.ascontiguousarray(np.nan_to_num(err) ** 2)


def _frame_stats(img, rows, region, saturation, gain, overscan, pix_offset, kf, itf):
    """(FrameInfo, sampled pixels in e-, why the frame is unusable or "")."""
    r0, _, c0, c1 = region
    bias = 0.0
    if overscan:     # every overscan row: the bias offsets the whole master
        full = img.read_rows(0, img.shape[0])
        adu = full[rows]
        over = np.concatenate([full[:, :c0], full[:, c1:]], axis=1)
        del full
        over = over[np.isfinite(over) & (over < saturation)]
        _, _, _, bias = clipped_stats(over, kf, itf)  # mean: data are integers
        if not np.isfinite(bias):
            return None, None, "its overscan holds no valid pixel"
    else:
        adu = img.read_row_set(rows)
    bad = ~np.isfinite(adu) | (adu >= saturation)
    e = (adu[:, c0:c1] - bias) * gain
    if pix_offset is not None:
        e = e - pix_offset[rows - r0]
    e[bad[:, c0:c1]] = np.nan
    level, sigma, nrogue, _ = clipped_stats(e, kf, itf)
    if not np.isfinite(level):
        return None, None, "no valid pixel (all NaN, infinite or saturated)"
    if sigma == 0.0:
        return None, None, (f"constant (value {level / gain + bias:g} ADU): a failed "
                            "readout, not a dark")
    return (FrameInfo(img.path.name, bias, level, sigma,
                      nrogue / max(1, np.isfinite(e).sum())), e, "")


def _drop(fs: FrameSet, dropped) -> None:
    """Remove unusable frames from the set, or refuse it if too few remain."""
    why = "; ".join(f"{img.path}: {reason}" for img, reason in dropped)
    keep = [img for img in fs.raws if all(img is not d for d, _ in dropped)]
    if len(keep) < kw.MIN_FRAMES:
        raise InputError(f"only {len(keep)} of {len(fs.raws)} raw darks are usable, "
                         f"soxs_mdark needs at least {kw.MIN_FRAMES}; {why}")
    for img, reason in dropped:
        log.warning("dropped %s: %s", img.path, reason)
        img.close()
        fs.dropped.append((img.path, reason))
    fs.raws[:] = keep


def _frame_statistics(raws, rows, region, saturation, gain, overscan, pix_offset, kf, itf,
                      threads):
    """Per frame (FrameInfo or None, why it is unusable or ""), and the
    temporal noise of the usable ones: (median over consecutive pairs, per
    pair).  Frames are measured two at a time: the sorts release the GIL."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        stats = list(pool.map(lambda img: _frame_stats(
            img, rows, region, saturation, gain, overscan, pix_offset, kf, itf), raws))
        usable = [e for _, e, why in stats if not why]
        s_t, per_pair = (temporal_noise(usable, kf, itf, pool.map)
                         if len(usable) >= kw.MIN_FRAMES else (np.nan, []))
    return [(info, why) for info, _, why in stats], s_t, per_pair


def _kernel():
    """The stacking module, its compiled kernel loaded: importing numba and
    loading the kernel from its cache hold the GIL for about 0.25 s."""
    from . import stack
    stack.warm_up()
    return stack


def make_master_dark(fs: FrameSet, values: dict, qc_ranges: dict,
                     stacked: Callable[[np.ndarray, tuple], None] | None = None,
                     fork: bool = False) -> MasterDark:
    """``stacked(flux, region)``, if given, sees the master as soon as it is
    stacked (NaN where no frame has data) and the detector region it covers,
    before hot pixels and QC.  ``fork``: measure the frames in a forked
    process (see ``forked``) rather than in threads of this one."""
    t0 = time.perf_counter()
    det = detector(fs.arm)
    gain = _gain(fs, det)
    region = _region(fs, det)
    r0, r1, c0, c1 = region
    kf, itf = values["frame_clipping_sigma"], values["frame_clipping_iterations"]
    pix_offset = pix_var = None
    if fs.bias is not None:
        pix_offset, pix_var = _master_bias(fs.bias, region, fs.first.shape, gain)
    elif det.bias_from_overscan and c0 == 0 and c1 == fs.first.shape[1]:
        raise InputError(f"{fs.first.path}: no overscan columns to measure the bias "
                         f"level; add a {kw.BIAS_TAG} frame to the SOF")

    # frame statistics on evenly spaced rows of every frame, while the
    # compiled kernel loads; a frame without usable data is dropped
    rows = sample_rows(r0, r1, fs.first.shape[1])
    overscan = det.bias_from_overscan and fs.bias is None
    args = (fs.raws, rows, region, det.saturation, gain, overscan, pix_offset, kf, itf,
            thread_count(values["nthreads"]))
    if fork:
        call = ForkedCall(_frame_statistics, *args)
        try:
            stack = _kernel()
            stats, s_t, per_pair = call.result()
        finally:
            call.cancel()
    else:
        with ThreadPoolExecutor(max_workers=1) as pool:
            loading = pool.submit(_kernel)
            stats, s_t, per_pair = _frame_statistics(*args)
            stack = loading.result()
    dropped = [(img, why) for img, (_, why) in zip(fs.raws, stats) if why]
    if dropped:
        _drop(fs, dropped)
    infos = [info for info, why in stats if not why]
    for k, s in enumerate(per_pair):
        if not s > 0:
            raise InputError(f"{fs.raws[k].path} and {fs.raws[k + 1].path}: identical "
                             "pixel values (the same exposure twice?)")
    biases = [i.bias_adu for i in infos]
    t1 = time.perf_counter()

    scale = np.array([img.bscale * gain for img in fs.raws], np.float64)
    model = stack.FrameModel(
        scale=scale,
        offset=np.array([(img.bzero - b) * gain for img, b in zip(fs.raws, biases)]),
        satv=np.array([(det.saturation - img.bzero) / img.bscale for img in fs.raws]),
        level=np.array([i.level for i in infos]),
        fsigma=np.array([i.sigma for i in infos]),
        s_t=s_t, lbar=float(np.median([i.level for i in infos])))
    res = stack.stack_frames(fs.raws, region, model, kf, values["stacked_clipping_sigma"],
                             values["stacked_clipping_iterations"],
                             values["chunk_mbytes"] << 20, pix_offset, pix_var,
                             values["nthreads"])
    for img in fs.raws:
        img.close()
    if stacked is not None:
        stacked(res.flux, region)
    t2 = time.perf_counter()

    flux, err, qual = res.flux, res.err, res.qual
    med, rms = hotpix.flag_hot_pixels(flux, qual, values["hot_pixel_sigma"])
    nodata = (qual & flags.NODATA) != 0
    if nodata.any():
        flux[nodata] = med
        err[nodata] = s_t
    nhot = int(np.count_nonzero(qual & flags.HOT))
    clean = qual == 0
    nvalid = int(res.nused.sum(dtype=np.int64) + res.nrej.sum(dtype=np.int64))
    exptime = fs.exptime
    raw_ron = float(np.sqrt(max(s_t ** 2 - max(med, 0.0), 0.0)))
    values_qc = {
        "HOTPIX NUM": nhot,
        "HOTPIX FRAC": nhot / flux.size,
        "MDARK MEDIAN": med,
        "MDARK RMS": rms,
        "DARK CURRENT": med / exptime if exptime > 0 else float("nan"),
        "RAW RON": raw_ron,
        "RAW NOISE": s_t,
        "MASTER RON": median(err[clean]) if clean.any() else float("nan"),
        "REJ FRAC": float(res.nrej.sum(dtype=np.int64)) / max(1, nvalid),
        "NRAW DROPPED": len(fs.dropped),
    }
    if not exptime > 0:
        del values_qc["DARK CURRENT"]
    notes = []
    temp, note = qc.detector_temperature(
        [(img.path.name, img.header) for img in fs.raws], fs.arm)
    if temp is not None:
        values_qc["DETECTOR TEMP"] = temp
    if note:
        log.warning("%s", note)
        notes.append(note)
    results = qc.evaluate(values_qc, qc_ranges)
    t3 = time.perf_counter()
    return MasterDark(arm=fs.arm, exptime=exptime, frameset=fs, params=dict(values),
                      flux=flux, err=err, qual=qual, nused=res.nused, gain=gain,
                      region=region, frames=infos, qc=results,
                      timings={"frame statistics": t1 - t0, "stacking": t2 - t1,
                               "hot pixels and QC": t3 - t2}, notes=notes)
