"""FITS checksums of the product, summed chunk by chunk as it is written
(io/checksum.py, io/fitswrite.py), against astropy's."""

import hashlib

from astropy.io import fits
import numpy as np
import pytest

from soxs_lib.io.checksum import checksum_card, ones_sum
from soxs_lib.io.fitswrite import data_md5, write_hdus
from soxs_lib.runtime.child import InThread


@pytest.mark.parametrize("seed", range(60))
def test_sums_and_encoding_are_astropy_s(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 90)), int(rng.integers(1, 90)))
    dtype = (">f4", ">i4", ">f8")[seed % 3]
    data = (rng.normal(0, 10 ** rng.uniform(-3, 6), shape)).astype(dtype)
    if seed % 5 == 0:
        data[...] = 0                       # the sum of nothing
    hdu = fits.ImageHDU(data, name="X")
    hdu.add_checksum()
    datasum = ones_sum(data.tobytes())
    assert str(datasum) == hdu.header["DATASUM"]
    header = hdu.header.copy()
    header["CHECKSUM"] = "0" * 16
    assert checksum_card(header.tostring().encode(), datasum) == hdu.header["CHECKSUM"]


def test_a_sum_taken_in_pieces_is_the_sum_of_the_whole():
    words = np.random.default_rng(1).integers(0, 2**32, 100_003, dtype=np.uint64)
    data = words.astype(">u4").tobytes()
    s = 0
    for a in range(0, len(data), 4 * 777):
        s = ones_sum(data[a:a + 4 * 777], s)
    assert s == ones_sum(data)


@pytest.mark.parametrize("ahead", [None, "same", "others", "FLUX"])
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (1024, 256), (1031, 517)])
def test_the_streamed_product_verifies_and_keeps_its_values(tmp_path, shape, ahead):
    """Chunks of 1 MiB: shapes below, at and across a chunk, and padding;
    the data hashed as they are written, or ahead on another thread; an MD5
    made ahead of other arrays (other values, or FLUX alone) is not used."""
    rng = np.random.default_rng(shape[0])
    flux = rng.normal(1.5, 2.0, shape).astype(np.float32)
    qual = rng.integers(0, 2**20, shape).astype(np.int32)
    hdus = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(flux, name="FLUX"),
                         fits.ImageHDU(qual, name="QUAL")])
    hdus[0].header["DATAMD5"] = "0" * 32
    path = tmp_path / "p.fits"
    images = [hdus["FLUX"].data, hdus["QUAL"].data]
    arrays = {None: None, "same": images, "others": [a + 1 for a in images],
              "FLUX": images[:1]}[ahead]
    calls = []

    def sums(arrays):
        calls.append(len(arrays))
        return data_md5(arrays)
    write_hdus(hdus, path, None if arrays is None else (arrays, InThread(sums, arrays)))
    with fits.open(path, checksum=True) as h:
        assert all(hdu.verify_checksum() == 1 and hdu.verify_datasum() == 1 for hdu in h)
        np.testing.assert_array_equal(h["FLUX"].data, flux)
        np.testing.assert_array_equal(h["QUAL"].data, qual)
        spans = [(h.fileinfo(i)["datLoc"], h.fileinfo(i)["datSpan"]) for i in range(len(h))]
        raw = path.read_bytes()
        assert h[0].header["DATAMD5"] == hashlib.md5(
            b"".join(raw[a:a + n] for a, n in spans)).hexdigest()
    assert path.stat().st_size % 2880 == 0
    assert calls == ([] if arrays is None else [len(arrays)])


def test_a_run_hashes_its_data_while_it_computes_qc(vis_small, tmp_path, monkeypatch):
    """The master's FLUX, QUAL and ERR, final once hot pixels are flagged,
    are hashed ahead, not as they are written; the product's sums and
    DATAMD5 still verify."""
    from soxs_lib.io import fitswrite
    from soxs_lib.pipeline import run
    summed, hashed_here = [], []
    monkeypatch.setattr(run, "data_md5",
                        lambda arrays: summed.extend(a.shape for a in arrays)
                        or data_md5(arrays))
    write_data = fitswrite._write_data
    monkeypatch.setattr(fitswrite, "_write_data", lambda fh, data, md5, *rest: (
        hashed_here.append(md5 is not None) or write_data(fh, data, md5, *rest)))
    _, sof = vis_small
    res = run.run_mdark([str(sof)], tmp_path)
    path = next(p for tag, p in res.products.items() if tag != "LOG")
    with fits.open(path, checksum=True) as h:
        assert summed == [h[name].data.shape for name in ("FLUX", "QUAL", "ERR")]
        assert hashed_here == [False, False, False]
        assert all(hdu.verify_checksum() == 1 and hdu.verify_datasum() == 1 for hdu in h)
        spans = [(h.fileinfo(i)["datLoc"], h.fileinfo(i)["datSpan"]) for i in range(len(h))]
        raw = path.read_bytes()
        assert h[0].header["DATAMD5"] == hashlib.md5(
            b"".join(raw[a:a + n] for a, n in spans)).hexdigest()
