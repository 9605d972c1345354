"""The soxs_mdark core: from a checked FrameSet to a master dark with its
ERR, QUAL and QC, as named steps (as stcal splits a step from its array
functions): ``measure_frames`` (levels, noise, frames left out),
``stack_set`` (the kernel over the frames), then hot pixels and
``qc.master_dark_values``.  Both front ends (``soxs mdark`` and the PyEsoRex
recipe) call ``make_master_dark``; neither does any science of its own."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
import logging
import time

import numpy as np

from soxs_lib.config import flags, keywords as kw
from soxs_lib.core import hotpix, qc
from soxs_lib.config.detector import Detector, detector
from soxs_lib.config.errors import InputError, SettingsError
from soxs_lib.io.frames import FrameSet
from soxs_lib.io.rawio import open_fits
from soxs_lib.config.params import Values
from soxs_lib.core.stats import clipped_stats, sample_rows, temporal_noise
from soxs_lib.runtime.child import InThread
from soxs_lib.runtime.pool import thread_count

log = logging.getLogger("soxs")


@dataclass
class FrameInfo:
    """What the frame statistics found in one raw dark."""

    name: str
    bias_adu: float
    level: float        # e-
    sigma: float        # e-
    rogue_frac: float


@dataclass
class MasterDark:
    """A master dark and how it was made.

    ``frameset`` holds the frames stacked; ``dropped`` the (path, reason) of
    those left out as unusable.  ``flux``, ``err`` (e-), ``qual`` (flags)
    and ``nused`` cover ``region`` (row0, row1, col0, col1) of the raw
    frames."""

    arm: str
    exptime: float
    frameset: FrameSet
    params: Values
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
    dropped: list = field(default_factory=list)

    @property
    def qc_passed(self) -> bool:
        """No QC metric outside its acceptable range."""
        return all(r.passed is not False for r in self.qc)


@dataclass
class FrameMeasures:
    """The frame statistics of a set: per frame (FrameInfo or None, why it
    is unusable or ""), the temporal noise of one frame (e-) and its value
    per consecutive pair of usable frames."""

    stats: list
    s_t: float
    per_pair: list


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
    binx, biny = kw.binning(h, fs.arm)
    if binx < 1 or biny < 1:
        raise InputError(f"{fs.first.path}: invalid binning {binx}x{biny}")
    r0, r1, c0, c1 = det.science_region(binx, biny)
    nrow, ncol = fs.first.shape
    if r1 > nrow or c1 > ncol:
        raise InputError(
            f"{fs.first.path}: image is {ncol}x{nrow} pixels but the {det.arm} science "
            f"region at binning {binx}x{biny} needs at least {c1}x{r1}")
    return r0, r1, c0, c1


def _master_bias(path, region, full_shape, gain):
    """FLUX and ERR of a MASTER_BIAS_VIS, in electrons, on the science region."""
    r0, r1, c0, c1 = region
    try:
        with open_fits(path, scaled=True) as hdul:
            ext = "FLUX" if "FLUX" in hdul else 0
            flux = np.asarray(hdul[ext].data, np.float32)
            err = (np.asarray(hdul["ERR"].data, np.float32) if "ERR" in hdul
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


def _keep_usable(fs: FrameSet, measures: FrameMeasures):
    """The set without its unusable frames, their FrameInfos, and the
    (path, reason) of those left out; ``fs`` itself is not changed.

    Raises
    ------
    InputError
        Fewer than ``MIN_FRAMES`` usable frames; names each bad frame.
    """
    pairs = list(zip(fs.raws, measures.stats, strict=True))
    dropped = [(img.path, why) for img, (_, why) in pairs if why]
    keep = [img for img, (_, why) in pairs if not why]
    if len(keep) < kw.MIN_FRAMES:
        why = "; ".join(f"{path}: {reason}" for path, reason in dropped)
        raise InputError(f"only {len(keep)} of {len(fs.raws)} raw darks are usable, "
                         f"soxs_mdark needs at least {kw.MIN_FRAMES}; {why}")
    for path, reason in dropped:
        log.warning("dropped %s: %s", path, reason)
    infos = [info for info, why in measures.stats if not why]
    for k, s in enumerate(measures.per_pair):
        if not s > 0:
            raise InputError(f"{keep[k].path} and {keep[k + 1].path}: identical "
                             "pixel values (the same exposure twice?)")
    return replace(fs, raws=keep), infos, dropped


@dataclass
class Calibration:
    """How a set's raw values become electrons on the science region."""

    det: Detector
    gain: float                       # e-/ADU
    region: tuple                     # (row0, row1, col0, col1) of the science pixels
    pix_offset: np.ndarray | None     # master bias (e-) on the region, or None
    pix_var: np.ndarray | None        # its variance (e-^2)
    overscan: bool                    # bias level of each frame from its overscan


def calibration(fs: FrameSet) -> Calibration:
    """The set's gain, science region and bias (master bias or overscan).

    Raises
    ------
    InputError
        An invalid gain or binning, frames too small for the science region,
        an unreadable master bias, or VIS frames without overscan and
        without a master bias.
    """
    det = detector(fs.arm)
    gain = _gain(fs, det)
    region = _region(fs, det)
    _, _, c0, c1 = region
    pix_offset = pix_var = None
    if fs.bias is not None:
        pix_offset, pix_var = _master_bias(fs.bias, region, fs.first.shape, gain)
    elif det.bias_from_overscan and c0 == 0 and c1 == fs.first.shape[1]:
        raise InputError(f"{fs.first.path}: no overscan columns to measure the bias "
                         f"level; add a {kw.BIAS_TAG} frame to the SOF")
    return Calibration(det, gain, region, pix_offset, pix_var,
                       det.bias_from_overscan and fs.bias is None)


def _frame_statistics(raws, rows, region, saturation, gain, overscan, pix_offset, kf, itf,
                      threads) -> FrameMeasures:
    """Frames are measured two at a time: the sorts release the GIL."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        stats = list(pool.map(lambda img: _frame_stats(
            img, rows, region, saturation, gain, overscan, pix_offset, kf, itf), raws))
        usable = [e for _, e, why in stats if not why]
        s_t, per_pair = (temporal_noise(usable, kf, itf, pool.map)
                         if len(usable) >= kw.MIN_FRAMES else (np.nan, []))
    return FrameMeasures([(info, why) for info, _, why in stats], s_t, per_pair)


def measure_frames(fs: FrameSet, values: Values, cal: Calibration) -> FrameMeasures:
    """Each frame's bias, level and robust sigma, and the temporal noise of
    one frame, from evenly spaced rows of every frame.

    Parameters
    ----------
    fs : FrameSet
        The frames; read, not changed.
    values : Values
        frame_clipping_sigma / _iterations and nthreads are used.
    cal : Calibration
        From ``calibration(fs)``.

    Returns
    -------
    FrameMeasures
        A frame without usable data (constant, no valid pixel) has no
        FrameInfo and the reason instead.

    Raises
    ------
    InputError
        A frame cannot be read.
    """
    r0, r1, _, _ = cal.region
    rows = sample_rows(r0, r1, fs.first.shape[1])
    return _frame_statistics(fs.raws, rows, cal.region, cal.det.saturation, cal.gain,
                             cal.overscan, cal.pix_offset, values.frame_clipping_sigma,
                             values.frame_clipping_iterations, thread_count(values.nthreads))


def stack_set(fs: FrameSet, infos: list[FrameInfo], s_t: float, values: Values,
              cal: Calibration, stack=None):
    """Clip and combine the frames of ``fs`` with the compiled kernel.

    Parameters
    ----------
    fs : FrameSet
        Usable frames only, in the order of ``infos``.
    infos : list of FrameInfo
        Their statistics (bias, level, robust sigma).
    s_t : float
        Temporal noise of one frame, e-.
    values : Values
        The clipping parameters, chunk_mbytes and nthreads.
    cal : Calibration
    stack : module, optional
        ``soxs_lib.core.stack`` with its kernel loaded (``_kernel``).

    Returns
    -------
    soxs_lib.core.stack.StackResult
    """
    stack = stack or _kernel(values.nthreads)
    det, gain = cal.det, cal.gain
    biases = [i.bias_adu for i in infos]
    model = stack.FrameModel(
        scale=np.array([img.bscale * gain for img in fs.raws], np.float64),
        offset=np.array([(img.bzero - b) * gain
                         for img, b in zip(fs.raws, biases, strict=True)]),
        satv=np.array([(det.saturation - img.bzero) / img.bscale for img in fs.raws]),
        level=np.array([i.level for i in infos]),
        fsigma=np.array([i.sigma for i in infos]),
        s_t=s_t, lbar=float(np.median([i.level for i in infos])))
    return stack.stack_frames(fs.raws, cal.region, model, values.frame_clipping_sigma,
                              values.stacked_clipping_sigma,
                              values.stacked_clipping_iterations,
                              values.chunk_mbytes << 20, cal.pix_offset, cal.pix_var,
                              values.nthreads)


def combine_outside(fs: FrameSet, infos: list[FrameInfo], s_t: float, values: Values,
                    cal: Calibration, combine: Callable):
    """Stack the frames with a combiner other than the kernel (CPL's
    image-list clipping, which the PyEsoRex recipe passes in), then derive
    ERR, QUAL and the counts as the kernel does.

    Parameters
    ----------
    fs, infos, s_t, values, cal
        As for ``stack_set``.
    combine : callable
        ``combine(frames, kappa)`` with ``frames`` a list of (electrons,
        mask) per frame -- float32 science region, bias removed, and uint8
        mask of the excluded (saturated, NaN/inf) samples -- and ``kappa``
        stacked_clipping_sigma; returns (mean, number of samples used),
        array-likes of the region's shape (NaN or anything where none).

    Returns
    -------
    soxs_lib.core.stack.StackResult
    """
    r0, r1, c0, c1 = cal.region
    frames = []
    saturated = badinput = None
    nvalid = np.zeros((r1 - r0, c1 - c0), np.uint16)
    for img, info in zip(fs.raws, infos, strict=True):
        adu = img.read_rows(r0, r1)[:, c0:c1]
        nonfinite = ~np.isfinite(adu)
        sat = np.zeros_like(nonfinite)
        np.greater_equal(adu, cal.det.saturation, out=sat, where=~nonfinite)
        excluded = nonfinite | sat
        e = (adu - np.float32(info.bias_adu)) * np.float32(cal.gain)
        if cal.pix_offset is not None:
            e -= cal.pix_offset
        e[excluded] = 0.0
        frames.append((np.ascontiguousarray(e, np.float32), excluded.astype(np.uint8)))
        saturated = sat if saturated is None else saturated | sat
        badinput = nonfinite if badinput is None else badinput | nonfinite
        nvalid += ~excluded
    mean, nused = combine(frames, values.stacked_clipping_sigma)
    from soxs_lib.core.stack import StackResult
    m = np.asarray(nused).astype(np.uint16)
    lbar = float(np.median([i.level for i in infos]))
    pix_var = 0.0 if cal.pix_var is None else cal.pix_var
    with np.errstate(divide="ignore", invalid="ignore"):
        flux = np.where(m > 0, np.asarray(mean, np.float32), np.float32(np.nan))
        err = np.sqrt((s_t ** 2 + np.maximum(flux - lbar, 0.0)) / m + pix_var)
    # the flags of the kernel's _finish
    qual = (np.where(saturated, flags.SATURATED, 0) | np.where(badinput, flags.BADINPUT, 0)
            | np.where(2 * m.astype(np.int32) < len(frames), flags.LOWCOVER, 0)
            | np.where(m == 0, flags.NODATA, 0)).astype(np.uint8)
    return StackResult(flux.astype(np.float32), err.astype(np.float32), m, qual,
                       (nvalid - np.minimum(m, nvalid)).astype(np.uint16))


def _kernel(threads: int):
    """The stacking module, its compiled kernel loaded and its ``threads``
    threads started (no more than the set will use: a ``reduce all`` worker
    starts them once).  Importing numba and loading the kernel hold the GIL,
    so ``make_master_dark`` does it while the frames are measured elsewhere."""
    from soxs_lib.core import stack
    stack.warm_up(threads)
    return stack


def make_master_dark(fs: FrameSet, values: Values, qc_ranges: dict,
                     stacked: Callable[[np.ndarray, tuple], None] | None = None,
                     elsewhere: Callable = InThread,
                     combine: Callable | None = None) -> MasterDark:
    """Make a master dark from a checked set of raw darks.

    Parameters
    ----------
    fs : FrameSet
        From ``frames.load_frameset``; read, never changed nor closed (the
        caller closes it).
    values : Values
        Validated parameters (``params.resolve``).
    qc_ranges : dict
        QC name -> (low, high) acceptable range (``Settings.qc_ranges``).
    stacked : callable, optional
        ``stacked(flux, region)`` sees the master as soon as it is stacked
        (NaN where no frame has data) and the detector region it covers,
        before hot pixels and QC (the QC plot starts there).
    elsewhere : callable
        ``elsewhere(fn, *args)`` starts ``fn(*args)`` away from this thread
        and returns an object with ``result()`` and ``cancel()``: the frames
        are measured there while the compiled kernel loads here.
        ``InThread`` by default; the command line passes ``child.Child``
        (a forked process: both hold the GIL).
    combine : callable, optional
        The combiner of ``stack_method = cpl`` (see ``combine_outside``);
        only the PyEsoRex recipe, which has PyCPL, can pass it.

    Returns
    -------
    MasterDark
        Its ``frameset`` holds the frames stacked, ``dropped`` those left
        out as unusable, ``notes`` warnings for the report.

    Raises
    ------
    SettingsError
        ``stack_method = cpl`` without ``combine`` (no PyCPL).
    InputError
        Unreadable frames or master bias, fewer than 3 usable frames, two
        identical frames, frames that do not fit the detector.
    """
    outside = values.stack_method == "cpl"
    if outside and combine is None:
        raise SettingsError("stack_method 'cpl' needs PyCPL: run the PyEsoRex recipe "
                            "(pyesorex --recipe-dir \"$(soxs recipe-dir)\" soxs_mdark "
                            "--stack_method=cpl <sof>); soxs mdark stacks with 'soxs'")
    t0 = time.perf_counter()
    cal = calibration(fs)
    call = elsewhere(measure_frames, fs, values, cal)
    try:
        stack = None if outside else _kernel(values.nthreads)
        measures = call.result()
    finally:
        call.cancel()
    used, infos, dropped = _keep_usable(fs, measures)
    t1 = time.perf_counter()

    if outside:
        res = combine_outside(used, infos, measures.s_t, values, cal, combine)
    else:
        res = stack_set(used, infos, measures.s_t, values, cal, stack)
    if stacked is not None:
        stacked(res.flux, cal.region)
    t2 = time.perf_counter()

    flux, err, qual = res.flux, res.err, res.qual
    med, rms = hotpix.flag_hot_pixels(flux, qual, values.hot_pixel_sigma)
    nodata = (qual & flags.NODATA) != 0
    if nodata.any():
        flux[nodata] = med
        err[nodata] = measures.s_t
    exptime = used.exptime
    values_qc = qc.master_dark_values(flux, err, qual, res.nused, res.nrej, med, rms,
                                      measures.s_t, exptime, len(dropped))
    notes = []
    temp, note = qc.detector_temperature(
        [(img.path.name, img.header) for img in used.raws], used.arm)
    if temp is not None:
        values_qc["DETECTOR TEMP"] = temp
    if note:
        log.warning("%s", note)
        notes.append(note)
    results = qc.evaluate(values_qc, qc_ranges)
    t3 = time.perf_counter()
    return MasterDark(arm=used.arm, exptime=exptime, frameset=used, params=values,
                      flux=flux, err=err, qual=qual, nused=res.nused, gain=cal.gain,
                      region=cal.region, frames=infos, qc=results,
                      timings={"frame statistics": t1 - t0, "stacking": t2 - t1,
                               "hot pixels and QC": t3 - t2}, notes=notes, dropped=dropped)
