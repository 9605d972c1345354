"""The floor of a Python master-dark tool: start, import numpy and astropy,
read every raw frame fully, write a FLUX/QUAL/ERR product with checksums.

    python floor.py <product.fits> <ny> <nx> <raw frame>...
"""
import sys
import numpy as np
from astropy.io import fits
out, ny, nx = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
total = 0
for path in sys.argv[4:]:
    with fits.open(path, memmap=False) as hdul:
        for hdu in hdul:
            if hdu.data is not None:
                total += hdu.data.size
hdus = fits.HDUList([fits.PrimaryHDU(),
                     fits.ImageHDU(np.zeros((ny, nx), np.float32), name="FLUX"),
                     fits.ImageHDU(np.zeros((ny, nx), np.int32), name="QUAL"),
                     fits.ImageHDU(np.zeros((ny, nx), np.float32), name="ERR")])
hdus.writeto(out, overwrite=True, checksum=True)
