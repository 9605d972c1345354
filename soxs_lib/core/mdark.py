"""The soxs_mdark core: from a checked frame set to a master dark with its
ERR, QUAL and QC, as named steps (as stcal splits a step from its array
functions): ``calibration`` (gain, region, bias), ``measure.measure_frames``
(levels, noise, frames left out), ``stack_set`` (the kernel over the frames),
then hot pixels and ``qcvalues``.  Both front ends (``soxs mdark`` and the
PyEsoRex recipe) call ``make_master_dark``; neither does any science of its
own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
import logging
import time

import numpy as np

from soxs_lib.config import flags
from soxs_lib.config import keywords as kw
from soxs_lib.config.errors import SettingsError
from soxs_lib.config.params import Values
from soxs_lib.core import hotpix, qcvalues
from soxs_lib.core.calibration import Calibration, calibration
from soxs_lib.core.model import FrameModel, StackResult, finish
from soxs_lib.core.measure import FrameInfo, keep_usable, measure_frames
from soxs_lib.core.stack import stack_frames

log = logging.getLogger("soxs")


@dataclass
class MasterDark:
    """A master dark and how it was made.

    ``frameset`` holds the frames stacked; ``dropped`` the (path, reason) of
    those left out as unusable.  ``flux``, ``err`` (e-), ``qual`` (flags)
    and ``nused`` cover ``region`` (row0, row1, col0, col1) of the raw
    frames."""

    arm: str
    exptime: float
    frameset: object                  # soxs_lib.io.frames.FrameSet
    params: Values
    flux: np.ndarray
    err: np.ndarray
    qual: np.ndarray
    nused: np.ndarray
    gain: float
    region: tuple
    frames: list[FrameInfo]
    qc: list[qcvalues.QCResult]
    timings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)   # for the report and the log
    dropped: list = field(default_factory=list)

    @property
    def product_tag(self) -> str:
        """The product's category (``ESO PRO CATG``, its tag): the arm's, in
        the category the ``product_catg`` parameter chose."""
        return kw.product_tag(self.arm, self.params.product_catg)

    @property
    def qc_passed(self) -> bool:
        """No QC metric outside its acceptable range."""
        return all(r.passed is not False for r in self.qc)


def _frame_model(fs, infos: list[FrameInfo], s_t: float, cal: Calibration) -> FrameModel:
    gain = cal.gain
    return FrameModel(
        scale=np.array([img.bscale * gain for img in fs.raws], np.float64),
        offset=np.array([(img.bzero - i.bias_adu) * gain
                         for img, i in zip(fs.raws, infos, strict=True)]),
        satv=np.array([(cal.det.saturation - img.bzero) / img.bscale for img in fs.raws]),
        level=np.array([i.level for i in infos]),
        fsigma=np.array([i.sigma for i in infos]),
        s_t=s_t, lbar=float(np.median([i.level for i in infos])))


def stack_options(values: Values) -> dict:
    """``stack.stack_frames``' clipping, chunk_bytes and threads from the
    parameters: the same wherever the frames are stacked."""
    return dict(clipping=(values.frame_clipping_sigma, values.stacked_clipping_sigma,
                          values.stacked_clipping_iterations),
                chunk_bytes=values.chunk_mbytes << 20, threads=values.nthreads)


def stack_set(fs, model: FrameModel, values: Values, cal: Calibration) -> StackResult:
    """Clip and combine the frames of ``fs`` with the compiled kernel.

    Parameters
    ----------
    fs : soxs_lib.io.frames.FrameSet
        Usable frames only, in the order of ``model``.
    model : FrameModel
        Their conversion to electrons, levels and noise.
    values : Values
        The clipping parameters, chunk_mbytes and nthreads.
    cal : Calibration

    Returns
    -------
    StackResult
    """
    bias = None if cal.pix_offset is None else (cal.pix_offset, cal.pix_var)
    return stack_frames(fs.raws, cal.region, model, bias=bias, **stack_options(values))


def _electrons(img, info: FrameInfo, cal: Calibration):
    """A frame's science region in e- (0 where excluded), and its
    non-finite and saturated samples."""
    r0, r1, c0, c1 = cal.region
    adu = img.read_rows(r0, r1)[:, c0:c1]
    nonfinite = ~np.isfinite(adu)
    sat = np.zeros_like(nonfinite)
    np.greater_equal(adu, cal.det.saturation, out=sat, where=~nonfinite)
    e = (adu - np.float32(info.bias_adu)) * np.float32(cal.gain)
    if cal.pix_offset is not None:
        e -= cal.pix_offset
    e[nonfinite | sat] = 0.0
    return np.ascontiguousarray(e, np.float32), nonfinite, sat


def combine_outside(fs, infos: list[FrameInfo], model: FrameModel, values: Values,
                    cal: Calibration, combine: Callable) -> StackResult:
    """Stack the frames with a combiner other than the kernel (CPL's
    image-list clipping, which the PyEsoRex recipe passes in), then derive
    ERR, QUAL and the counts with the kernel's finish step (``model.finish``).

    Parameters
    ----------
    fs, model, values, cal
        As for ``stack_set``.
    infos : list of FrameInfo
        The frames' statistics (their bias levels are removed).
    combine : callable
        ``combine(frames, kappa)`` with ``frames`` a list of (electrons,
        mask) per frame -- float32 science region, bias removed, and uint8
        mask of the excluded (saturated, NaN/inf) samples -- and ``kappa``
        stacked_clipping_sigma; returns (mean, number of samples used),
        array-likes of the region's shape (NaN or anything where none).

    Returns
    -------
    StackResult
    """
    r0, r1, c0, c1 = cal.region
    frames = []
    qual = np.zeros((r1 - r0, c1 - c0), np.uint8)
    nvalid = np.zeros((r1 - r0, c1 - c0), np.uint16)
    for img, info in zip(fs.raws, infos, strict=True):
        e, nonfinite, sat = _electrons(img, info, cal)
        excluded = nonfinite | sat
        frames.append((e, excluded.astype(np.uint8)))
        qual |= np.where(sat, flags.SATURATED, 0).astype(np.uint8)
        qual |= np.where(nonfinite, flags.BADINPUT, 0).astype(np.uint8)
        nvalid += ~excluded
    mean, nused = combine(frames, values.stacked_clipping_sigma)
    return finish(mean, nused, nvalid, qual, 0.0 if cal.pix_var is None else cal.pix_var,
                  model.constants(*stack_options(values)["clipping"]))


def _qc(used, res: StackResult, med: float, rms: float, s_t: float, ndropped: int,
        qc_ranges: dict):
    """(QC results, notes for the report)."""
    values_qc = qcvalues.master_dark_values(res, med, rms, s_t, used.exptime, ndropped)
    notes = []
    temp, note = qcvalues.detector_temperature(
        [(img.path.name, img.header) for img in used.raws], used.arm)
    if temp is not None:
        values_qc["DETECTOR TEMP"] = temp
    if note:
        log.warning("%s", note)
        notes.append(note)
    return qcvalues.evaluate(values_qc, qc_ranges), notes


def make_master_dark(fs, values: Values, qc_ranges: dict,
                     stacked: Callable[[np.ndarray, tuple], None] | None = None,
                     combine: Callable | None = None,
                     stacker: Callable | None = None,
                     finished: Callable[[StackResult, float, float], None] | None = None
                     ) -> MasterDark:
    """Make a master dark from a checked set of raw darks.

    Parameters
    ----------
    fs : soxs_lib.io.frames.FrameSet
        From ``frames.load_frameset``; read, never changed nor closed (the
        caller closes it).
    values : Values
        Validated parameters (``params.resolve``).
    qc_ranges : dict
        QC name -> (low, high) acceptable range (``Settings.qc_ranges``).
    stacked : callable, optional
        ``stacked(flux, region)`` sees the master as soon as it is stacked
        (NaN where no frame has data) and the detector region it covers,
        before hot pixels and QC (the QC plot starts there); ``flux`` is
        not changed afterwards, so another process may go on reading it.
    combine : callable, optional
        The combiner of ``stack_method = cpl`` (see ``combine_outside``);
        only the PyEsoRex recipe, which has PyCPL, can pass it.
    stacker : callable, optional
        ``stacker(fs, model, values, cal)`` stacks as ``stack_set`` does,
        elsewhere (``soxs mdark``: a child forked as the run started, which
        measures the noise of frame pairs on the other core while this
        process measures the frames: the ``helper`` of
        ``measure.measure_frames``).
    finished : callable, optional
        ``finished(result, median, rms)`` sees the master's FLUX, ERR and
        QUAL (a ``StackResult``) as the product holds them (hot pixels
        flagged, pixels without data filled) as soon as they are, with the
        master's median and robust scatter (``hotpix.flag_hot_pixels``),
        before the QC values are computed; they are not changed afterwards.

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
    measures = measure_frames(fs, values, cal, stacker)
    used, infos, dropped = keep_usable(fs, measures)
    model = _frame_model(used, infos, measures.s_t, cal)
    t1 = time.perf_counter()

    if outside:
        res = combine_outside(used, infos, model, values, cal, combine)
    elif stacker is not None:
        res = stacker(used, model, values, cal)
    else:
        res = stack_set(used, model, values, cal)
    if stacked is not None:
        stacked(res.flux, cal.region)
    t2 = time.perf_counter()

    med, rms = hotpix.flag_hot_pixels(res.flux, res.qual, values.hot_pixel_sigma)
    nodata = (res.qual & flags.NODATA) != 0
    if nodata.any():        # new arrays: the master as stacked is not changed
        res = replace(res, flux=np.where(nodata, np.float32(med), res.flux),
                      err=np.where(nodata, np.float32(measures.s_t), res.err))
    if finished is not None:
        finished(res, med, rms)
    results, notes = _qc(used, res, med, rms, measures.s_t, len(dropped), qc_ranges)
    t3 = time.perf_counter()
    return MasterDark(arm=used.arm, exptime=used.exptime, frameset=used, params=values,
                      flux=res.flux, err=res.err, qual=res.qual, nused=res.nused,
                      gain=cal.gain, region=cal.region, frames=infos, qc=results,
                      timings={"statistics": t1 - t0, "stacking": t2 - t1,
                               "hot pixels and QC": t3 - t2}, notes=notes, dropped=dropped)
