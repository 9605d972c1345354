"""A straightforward whole-stack numpy version of the clipping, written
independently of the compiled kernel: the oracle for the streamed path."""

import numpy as np


def reference_combine(raw, model, clipping, pix_offset=0.0, pix_var=0.0):
    """Mean, ERR and samples used per pixel of ``raw`` (N, ...), with the
    kernel's FrameModel and (kframe, kstack, iterations)."""
    scale, offset, satv = model.scale, model.offset, model.satv
    level, fsigma, s_t, lbar = model.level, model.fsigma, model.s_t, model.lbar
    kf, ks, iterations = clipping
    raw = raw.reshape(raw.shape[0], -1).astype(np.float64)
    s_t2 = s_t ** 2
    valid = np.isfinite(raw) & (raw < satv[:, None])
    x = np.where(valid, raw * scale[:, None] + offset[:, None] - pix_offset, np.nan)
    with np.errstate(invalid="ignore"):
        rogue = valid & (np.abs(x - level[:, None]) > kf * fsigma[:, None])
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        clean = np.where(rogue, np.nan, x)
        ref = np.where((~np.isnan(clean)).any(0), np.nanmedian(clean, 0), np.nanmedian(x, 0))
        lim = kf * np.sqrt(s_t2 + np.maximum(ref - lbar, 0))
        keep = valid & ~(rogue & (np.abs(x - ref) > lim))
        keep = np.where(keep.any(0), keep, valid)
        for _ in range(iterations):
            med = np.nanmedian(np.where(keep, x, np.nan), 0)
            lim = ks * np.sqrt(s_t2 + np.maximum(med - lbar, 0))
            new = keep & (np.abs(x - med) <= lim)
            update = (new.sum(0) != keep.sum(0)) & new.any(0)
            if not update.any():
                break
            keep = np.where(update, new, keep)
        n = keep.sum(0)
        mean = np.nansum(np.where(keep, x, 0.0), 0) / n
        err = np.sqrt((s_t2 + np.maximum(mean - lbar, 0)) / n + pix_var)
    return mean, err, n
