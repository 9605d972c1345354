"""Copy raw frames adding the keywords soxspipe needs but a frame lacks.

    python patch_headers.py '<json job>'

The job: {"arm": ..., "cards": {keyword: value or None}, "files": [[src, dst], ...]};
a None value is taken from the frame (EXPTIME from ESO DET DIT, DATE-OBS from
ARCFILE) or the arm.
"""
import json, sys
from astropy.io import fits
job = json.loads(sys.argv[1])
for src, dst in job["files"]:
    with fits.open(src) as hdul:
        h = hdul[0].header
        for k, v in job["cards"].items():
            if k not in h:
                if v is None:
                    v = {"ESO SEQ ARM": job["arm"], "EXPTIME": h.get("ESO DET DIT", 0.0),
                         "DATE-OBS": h.get("ARCFILE", "SOXS.2026-01-11T08:29:24.000")[5:28]}[k]
                h["HIERARCH " + k if k.startswith("ESO ") else k] = v
        hdul.writeto(dst)
