"""The frame statistics of a set: each frame's bias, level and robust sigma,
the temporal noise of one frame, and which frames are unusable."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
import logging

import numpy as np

from soxs_lib.config import keywords as kw
from soxs_lib.config.errors import InputError
from soxs_lib.config.params import Values, thread_count
from soxs_lib.core.calibration import Calibration
from soxs_lib.core.stats import clipped_stats, pair_noise, sample_rows

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
class FrameMeasures:
    """The frame statistics of a set: per frame (FrameInfo or None, why it
    is unusable or ""), the temporal noise of one frame (e-) and its value
    per consecutive pair of usable frames."""

    stats: list
    s_t: float
    per_pair: list


def _overscan_bias(img, rows, cal: Calibration, kf: float, itf: int):
    """(sampled rows in ADU, bias level from every overscan row or NaN)."""
    _, _, c0, c1 = cal.region
    full = img.read_rows(0, img.shape[0])
    adu = full[rows]
    over = np.concatenate([full[:, :c0], full[:, c1:]], axis=1)
    del full
    over = over[np.isfinite(over) & (over < cal.det.saturation)]
    _, _, _, bias = clipped_stats(over, kf, itf)  # mean: data are integers
    return adu, bias


def _frame_stats(img, rows, cal: Calibration, kf: float, itf: int):
    """(FrameInfo, sampled pixels in e-, why the frame is unusable or "")."""
    r0, _, c0, c1 = cal.region
    bias = 0.0
    if cal.overscan:     # every overscan row: the bias offsets the whole master
        adu, bias = _overscan_bias(img, rows, cal, kf, itf)
        if not np.isfinite(bias):
            return None, None, "its overscan holds no valid pixel"
    else:
        adu = img.read_row_set(rows)
    bad = ~np.isfinite(adu) | (adu >= cal.det.saturation)
    e = (adu[:, c0:c1] - bias) * cal.gain
    if cal.pix_offset is not None:
        e = e - cal.pix_offset[rows - r0]
    e[bad[:, c0:c1]] = np.nan
    level, sigma, nrogue, _ = clipped_stats(e, kf, itf)
    if not np.isfinite(level):
        return None, None, "no valid pixel (all NaN, infinite or saturated)"
    if sigma == 0.0:
        return None, None, (f"constant (value {level / cal.gain + bias:g} ADU): a failed "
                            "readout, not a dark")
    return (FrameInfo(img.path.name, bias, level, sigma,
                      nrogue / max(1, np.isfinite(e).sum())), e, "")


class _PairNoise:
    """``stats.pair_noise`` of each consecutive pair of usable frames, each
    measured as soon as its second frame is: by the helper once it is ready,
    else on this process's threads."""

    def __init__(self, pool, helper, sigma: float, iterations: int):
        self._pool, self._helper, self._args = pool, helper, (sigma, iterations)
        self._frames, self._here = [], {}

    def add(self, e) -> None:
        self._frames.append(e)
        k = len(self._frames) - 2
        if k < 0:
            return
        if self._helper is not None and self._helper.ready():
            self._helper.pair(k, self._frames[k], e, *self._args)
        else:
            self._here[k] = self._pool.submit(pair_noise, self._frames[k], e, *self._args)

    def per_pair(self) -> list:
        npairs = max(0, len(self._frames) - 1)
        there = self._helper.per_pair() if len(self._here) < npairs else {}
        return [self._here[k].result() if k in self._here else there[k] for k in range(npairs)]


def measure_frames(fs, values: Values, cal: Calibration, helper=None) -> FrameMeasures:
    """Each frame's bias, level and robust sigma, and the temporal noise of
    one frame, from evenly spaced rows of every frame.

    Frames are measured two at a time: the sorts release the GIL.  The noise
    of each consecutive pair of usable frames (``stats.pair_noise``) is
    measured as soon as both are, here or by ``helper``.

    Parameters
    ----------
    fs : soxs_lib.io.frames.FrameSet
        The frames; read, not changed.
    values : Values
        frame_clipping_sigma / _iterations and nthreads are used.
    cal : Calibration
        From ``calibration.calibration(fs)``.
    helper : object, optional
        Measures pairs once ``helper.ready()`` (``pipeline.stacker.
        StackProcess``): ``helper.pair(k, a, b, sigma, iterations)`` is given
        pair ``k`` (two frames' sampled pixels in electrons), and
        ``helper.per_pair()`` returns {k: ``pair_noise``} of those given.

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
    kf, itf = values.frame_clipping_sigma, values.frame_clipping_iterations
    with ThreadPoolExecutor(max_workers=thread_count(values.nthreads)) as pool:
        stats, pairs = [], _PairNoise(pool, helper, kf, itf)
        for st in pool.map(lambda img: _frame_stats(img, rows, cal, kf, itf), fs.raws):
            stats.append(st)
            if not st[2]:
                pairs.add(st[1])
        nusable = sum(not why for _, _, why in stats)
        per_pair = pairs.per_pair() if nusable >= kw.MIN_FRAMES else []
        s_t = float(np.median(per_pair)) if per_pair else np.nan
    return FrameMeasures([(info, why) for info, _, why in stats], s_t, per_pair)


def keep_usable(fs, measures: FrameMeasures):
    """The set without its unusable frames, their FrameInfos, and the
    (path, reason) of those left out; ``fs`` itself is not changed.

    Parameters
    ----------
    fs : soxs_lib.io.frames.FrameSet
        The frames measured.
    measures : FrameMeasures
        From ``measure_frames(fs, ...)``.

    Returns
    -------
    used : soxs_lib.io.frames.FrameSet
    infos : list of FrameInfo
    dropped : list of (Path, str)

    Raises
    ------
    InputError
        Fewer than ``MIN_FRAMES`` usable frames (names each bad frame), or
        two consecutive frames with identical pixels.
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
