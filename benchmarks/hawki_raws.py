"""Write synthetic HAWK-I raw darks for the benchmark's hawki_cal_dark runs.

    python hawki_raws.py <folder> <number of frames>

Each frame: a primary header with what hawki_cal_dark needs (ESO DET DIT,
NDIT, NDSAMPLES, DPR keywords) and four float32 2048x2048 chips CHIPn.INT1 of
Poisson dark signal plus Gaussian read noise over a fixed pattern with hot
pixels.
"""
import sys
import numpy as np
from astropy.io import fits
from astropy.time import Time, TimeDelta
d, m = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(2)
shape = (2048, 2048)
dit, ndit, gain, ron_e = 60.0, 1, 1.7, 5.0
chips = []
for _ in range(4):
    # dark level (ADU): reset/bias-like offset + dark current, 2% fixed pattern,
    # a gentle gradient, and ~0.1% steady hot pixels (excess 50..20000 ADU)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    level = 15.0 + 0.05 * dit / gain + 2e-3 * (xx + yy) / 2
    level = level * (1 + 0.02 * rng.standard_normal(shape))
    hot = rng.random(shape) < 1e-3
    level[hot] += np.exp(rng.uniform(np.log(50), np.log(20000), hot.sum()))
    chips.append(np.clip(level, 0, None))
t0 = Time("2026-01-11T08:29:24", scale="utc")
for i in range(m):
    t = t0 + TimeDelta((dit * ndit + 10) * i, format="sec")
    ph = fits.Header()
    for k, v in [("ORIGIN", "ESO"), ("TELESCOP", "ESO-VLT-U4"), ("INSTRUME", "HAWKI"),
                 ("OBJECT", "DARK"), ("EXPTIME", dit * ndit), ("DATE-OBS", t.isot),
                 ("MJD-OBS", t.mjd), ("HIERARCH ESO DPR CATG", "CALIB"),
                 ("HIERARCH ESO DPR TYPE", "DARK"), ("HIERARCH ESO DPR TECH", "IMAGE"),
                 ("HIERARCH ESO DET DIT", dit), ("HIERARCH ESO DET NDIT", ndit),
                 ("HIERARCH ESO DET NDSAMPLES", 2), ("HIERARCH ESO TPL NEXP", m),
                 ("HIERARCH ESO TPL EXPNO", i + 1)]:
        ph[k] = v
    hdus = [fits.PrimaryHDU(header=ph)]
    for c, level in enumerate(chips):
        # Poisson dark signal + Gaussian read noise, float32 like HAWK-I raws
        img = (rng.poisson(level * gain) / gain).astype(np.float32)
        img += np.float32(ron_e / gain) * rng.standard_normal(shape, dtype=np.float32)
        eh = fits.Header()
        eh["EXTNAME"] = f"CHIP{c + 1}.INT1"
        eh["HIERARCH ESO DET CHIP NO"] = c + 1
        eh["HIERARCH ESO DET CHIP LIVE"] = True
        hdus.append(fits.ImageHDU(img, header=eh))
    fits.HDUList(hdus).writeto(f"{d}/HAWKI_DARK_{i + 1:03d}.fits", overwrite=True)
