"""Raw frames as archives and instruments deliver them: gzip, bzip2, xz, Unix
compress, tile compression, an image in an extension, every BITPIX.  The same
frames in any form give the same master; damaged archives are refused by
name; no decompressed copy outlives the run."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
from pathlib import Path
import signal
import subprocess
import sys
import tempfile
import time

from astropy.io import fits
import ncompress
import numpy as np
import pytest

from soxs_lib.cli import main as cli
from soxs_lib.io import archive, fitsfile, frames
from soxs_lib.io.rawimage import RawImage
from soxs_lib.config import params
from soxs_lib.config import qc
from soxs_lib.config.errors import InputError
from soxs_lib.core.mdark import make_master_dark

SOXS = Path(sys.executable).with_name("soxs")


def master(sof):
    fs = frames.load_frameset(frames.collect_inputs([str(sof)]))
    return make_master_dark(fs, params.resolve({}), qc.default_ranges(fs.arm))


def assert_same_master(a, b, exact=True):
    np.testing.assert_array_equal(a.qual, b.qual)
    if exact:
        np.testing.assert_array_equal(a.flux, b.flux)
        np.testing.assert_array_equal(a.err, b.err)
    else:   # float32 rounding of the raw values
        np.testing.assert_allclose(a.flux, b.flux, rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(a.err, b.err, rtol=1e-6, atol=1e-4)
    assert [(r.qc.name, r.status) for r in a.qc] == [(r.qc.name, r.status) for r in b.qc]
    for ra, rb in zip(a.qc, b.qc, strict=True):
        assert ra.value == pytest.approx(rb.value, rel=1e-6, abs=1e-9), ra.qc.name


def gzip_file(src, dst):
    dst.write_bytes(gzip.compress(src.read_bytes(), compresslevel=1))


def bzip2_file(src, dst):
    dst.write_bytes(bz2.compress(src.read_bytes(), compresslevel=1))


def compress_file(src, dst):
    dst.write_bytes(ncompress.compress(src.read_bytes()))


def tiles(kind, **extra):
    def write(src, dst):
        with fits.open(src) as h:
            data = h[0].data
            if kind == "PLIO_1":          # PLIO holds non-negative integers below 2**24
                data = data.astype(np.int32)
            fits.HDUList([fits.PrimaryHDU(header=h[0].header),
                          fits.CompImageHDU(data, compression_type=kind, **extra)]) \
                .writeto(dst)
    return write


def in_extension(src, dst):
    with fits.open(src) as h:
        fits.HDUList([fits.PrimaryHDU(header=h[0].header),
                      fits.ImageHDU(h[0].data, name="CHIP1")]).writeto(dst)


def in_extension_gzip(src, dst):
    tmp = dst.with_name(dst.name + ".part.fits")
    in_extension(src, tmp)
    gzip_file(tmp, dst)
    tmp.unlink()


FORMS = {
    ".fits.gz": gzip_file, ".fits.bz2": bzip2_file,
    ".fits.Z": compress_file,
    ".rice.fits.fz": tiles("RICE_1"), ".gzip1.fits.fz": tiles("GZIP_1"),
    ".gzip2.fits.fz": tiles("GZIP_2"), ".hcompress.fits.fz": tiles("HCOMPRESS_1"),
    ".plio.fits.fz": tiles("PLIO_1"), ".ext.fits": in_extension,
    ".ext.fits.gz": in_extension_gzip,
}


def convert(truth, folder: Path, suffix: str, writer) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for p in truth.paths:
        dst = folder / (p.name[: -len(".fits")] + suffix)
        writer(p, dst)
        lines.append(f"{dst.name} DARK_{truth.arm}\n")
    sof = folder / "mdark.sof"
    sof.write_text("".join(lines))
    return sof


@pytest.fixture(scope="module")
def plain(vis_small):
    truth, sof = vis_small
    return truth, master(sof)


@pytest.mark.parametrize("suffix", list(FORMS))
def test_every_form_gives_the_plain_files_master(plain, tmp_path, suffix):
    truth, ref = plain
    sof = convert(truth, tmp_path / "raw", suffix, FORMS[suffix])
    md = master(sof)
    assert_same_master(md, ref)
    assert [img.path.name for img in md.frameset.raws] == [
        p.name[: -len(".fits")] + suffix for p in truth.paths]
    # the header is the primary's: the ESO keywords are all there
    assert md.frameset.first.header["ESO SEQ ARM"] == "VIS"


def test_nir_float_frames_tile_compressed_losslessly(nir, tmp_path):
    truth, sof = nir
    three = type(truth)(**{**truth.__dict__, "paths": truth.paths[:3]})
    plain_sof = tmp_path / "plain.sof"
    plain_sof.write_text("".join(f"{p} DARK_NIR\n" for p in three.paths))
    fz = convert(three, tmp_path / "fz", ".fits.fz", tiles("GZIP_2", quantize_level=0))
    gz = convert(three, tmp_path / "gz", ".fits.gz", gzip_file)
    ref = master(plain_sof)
    assert_same_master(master(fz), ref)
    assert_same_master(master(gz), ref)


def test_product_lists_the_inputs_under_their_own_names(vis_small, tmp_path):
    truth, _ = vis_small
    sof = convert(truth, tmp_path / "raw", ".fits.Z", compress_file)
    assert cli.main(["mdark", str(sof), "-o", str(tmp_path / "ws")]) == 0
    h = fits.getheader(next((tmp_path / "ws/products/soxs_mdark").glob("*.fits")))
    assert [h[f"HIERARCH ESO PRO REC1 RAW{i} NAME"] for i in (1, 2, 3)] == [
        p.name.replace(".fits", ".fits.Z") for p in truth.paths]


def test_a_folder_of_archives_is_an_input(vis_small, tmp_path):
    truth, _ = vis_small
    sof = convert(truth, tmp_path / "raw", ".fits.gz", gzip_file)
    sof.unlink()
    entries = frames.collect_inputs([str(tmp_path / "raw")])
    assert sorted(p.name for p, _ in entries) == sorted(
        p.name + ".gz" for p in truth.paths)
    assert [p.name for p, _ in frames.collect_inputs([str(entries[0][0])] * 1)] == [
        entries[0][0].name]


@pytest.mark.parametrize("name,expect", [
    ("a.fits", True), ("a.FITS.GZ", True), ("a.fits.Z", True), ("a.fit.bz2", True),
    ("a.fz", True), ("a.fits.fz", True), ("a.fts.xz", False), ("a.sof", False),
    ("a.gz", False), ("a.txt", False),
])
def test_file_names_of_fits_files_and_their_archives(name, expect):
    assert archive.looks_like_fits(name) is expect


# -- every BITPIX with BZERO/BSCALE gives the same electrons -------------------------

BITPIX_FORMS = {          # BITPIX: (stored dtype, BSCALE, BZERO)
    8: (np.uint8, 1.0, 880.0),
    16: (np.int16, 0.5, 0.0),
    32: (np.int32, 0.25, 100.0),
    -32: (np.float32, 1.0, 0.0),
    -64: (np.float64, 2.0, -7.0),
}


def test_every_bitpix_gives_the_same_master(vis_small, tmp_path):
    truth, _ = vis_small
    # values every form holds exactly: integers 880..1135 ADU (bias ~1000)
    physical = [np.clip(fits.getdata(p).astype(np.float64), 880, 1135) for p in truth.paths]
    headers = [fits.getheader(p) for p in truth.paths]
    masters = {}
    for bitpix, (dtype, bscale, bzero) in BITPIX_FORMS.items():
        folder = tmp_path / f"b{bitpix}"
        folder.mkdir()
        for p, phys, hdr in zip(truth.paths, physical, headers, strict=True):
            stored = ((phys - bzero) / bscale).astype(dtype)
            hdu = fits.PrimaryHDU(stored, hdr.copy())
            hdu.header["BSCALE"], hdu.header["BZERO"] = bscale, bzero
            if dtype is np.uint8:
                hdu.header["BITPIX"] = 8
            hdu.writeto(folder / p.name, output_verify="silentfix")
            assert fits.getheader(folder / p.name)["BITPIX"] == bitpix
            img = RawImage(folder / p.name)
            np.testing.assert_array_equal(img.read_all(), phys.astype(np.float32))
            # as the stacking child reads it: mapped, the same stored values
            reader = img.source().open()
            rows = reader.read_rows_raw(3, img.shape[0])
            assert rows.dtype == img.dtype
            np.testing.assert_array_equal(rows, img.read_rows_raw(3, img.shape[0]))
            reader.close()
            img.close()
        masters[bitpix] = master(folder)
    for md in masters.values():
        assert_same_master(md, masters[-32], exact=False)


# -- headers -------------------------------------------------------------------------

def test_extension_header_merged_as_eso_tools_do():
    primary = fits.Header([("HIERARCH ESO DET BINX", 1), ("EXPTIME", 300.0),
                           ("BUNIT", "adu"), ("HIERARCH ESO ONLY PRIMARY", "p")])
    image = fits.Header([("XTENSION", "IMAGE"), ("BITPIX", 16), ("NAXIS", 2),
                         ("NAXIS1", 10), ("NAXIS2", 20), ("PCOUNT", 0), ("GCOUNT", 1),
                         ("BZERO", 32768.0), ("BUNIT", "ADU/s"), ("EXPTIME", 1.0),
                         ("HIERARCH ESO DET BINX", 2), ("HIERARCH ESO ONLY EXT", "e"),
                         ("EXTNAME", "CHIP1")])
    h = fitsfile.merge_headers(primary, image)
    assert h["ESO DET BINX"] == 1 and h["EXPTIME"] == 300.0          # the primary's
    assert h["BUNIT"] == "ADU/s" and h["BITPIX"] == 16 and h["BZERO"] == 32768.0
    assert h["NAXIS2"] == 20                                           # the data's
    assert h["ESO ONLY PRIMARY"] == "p" and h["ESO ONLY EXT"] == "e"
    assert "XTENSION" not in h and "EXTNAME" not in h and "PCOUNT" not in h


def test_read_header_of_each_form_has_the_eso_keywords(vis_small, tmp_path):
    truth, _ = vis_small
    for suffix, writer in FORMS.items():
        dst = tmp_path / f"x{suffix}"
        writer(truth.paths[0], dst)
        h = fitsfile.read_header(dst)
        assert h["ESO DPR TYPE"] == "DARK" and h["NAXIS"] == 2, suffix


# -- damage ----------------------------------------------------------------------------

def _corrupt_tile(src, dst):
    tiles("RICE_1")(src, dst)
    raw = bytearray(dst.read_bytes())
    with fits.open(dst) as h:
        start = h.fileinfo(1)["datLoc"]
        size = h[1]._data_size if hasattr(h[1], "_data_size") else 100000
    mid = start + size // 2
    raw[mid:mid + 4000] = os.urandom(4000)
    dst.write_bytes(bytes(raw))


def _truncated(writer):
    def write(src, dst):
        writer(src, dst)
        raw = dst.read_bytes()
        dst.write_bytes(raw[: len(raw) // 2])
    return write


def _garbled(writer):
    def write(src, dst):
        writer(src, dst)
        raw = bytearray(dst.read_bytes())
        raw[len(raw) // 3: len(raw) // 3 + 2000] = os.urandom(2000)
        dst.write_bytes(bytes(raw))
    return write


@pytest.mark.parametrize("suffix,writer,words", [
    (".fits.gz", _truncated(gzip_file), ["damaged gzip archive"]),
    (".fits.gz", _garbled(gzip_file), ["damaged gzip archive"]),
    (".fits.bz2", _truncated(bzip2_file), ["damaged bzip2 archive"]),
    (".fits.bz2", _garbled(bzip2_file), ["damaged bzip2 archive"]),
    (".fits.Z", _truncated(compress_file), ["truncated", "once decompressed"]),
    (".fits.fz", _corrupt_tile, ["damaged tile-compressed image"]),
    (".fits.fz", _truncated(tiles("RICE_1")), ["truncated"]),
])
def test_damaged_archives_are_refused_by_name(small_set, tmp_path, capsys, suffix, writer,
                                              words):
    truth, _ = small_set
    bad = tmp_path / ("bad" + suffix)
    writer(truth.paths[1], bad)
    sof = tmp_path / "in.sof"
    sof.write_text(f"{truth.paths[0]} DARK_VIS\n{bad} DARK_VIS\n{truth.paths[2]} DARK_VIS\n")
    rc = cli.main(["mdark", str(sof), "-o", str(tmp_path / "ws")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert str(bad) in err
    for w in words:
        assert w in err, (w, err)
    assert not (tmp_path / "ws").exists()


def test_several_compressed_images_are_refused_naming_them(small_set, tmp_path):
    truth, _ = small_set
    data, hdr = fits.getdata(truth.paths[0]), fits.getheader(truth.paths[0])
    bad = tmp_path / "chips.fits.fz"
    fits.HDUList([fits.PrimaryHDU(header=hdr), fits.CompImageHDU(data, name="CHIP1"),
                  fits.CompImageHDU(data, name="CHIP2")]).writeto(bad)
    with pytest.raises(InputError, match=r"2 image extensions \(CHIP1, CHIP2\)"):
        RawImage(bad)


def test_unsupported_archives_are_named_as_such(tmp_path):
    bad = tmp_path / "x.fits.zip"
    bad.write_bytes(b"PK\x03\x04" + b"\0" * 200)
    with pytest.raises(InputError, match="is a zip archive"):
        RawImage(bad)
    bad.write_bytes(lzma.compress(b"SIMPLE  =" + b" " * 3000))
    with pytest.raises(InputError, match="is an xz archive.*decompress it first"):
        RawImage(bad)
    bad.write_bytes(gzip.compress(b"not fits" * 100))
    with pytest.raises(InputError, match="the gzip archive does not hold a FITS file"):
        RawImage(bad)


# -- no decompressed copy outlives the run ------------------------------------------------

def _open_temporaries(folder: Path) -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder)):
            out.append(target)
    return out


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    folder = tmp_path / "tmpdir"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_no_temporary_file_after_a_run_or_a_refusal(vis_small, tmp_path, private_tmp):
    truth, _ = vis_small
    sof = convert(truth, tmp_path / "raw", ".fits.gz", gzip_file)
    with frames.load_frameset(frames.collect_inputs([str(sof)])) as fs:
        assert len(_open_temporaries(private_tmp)) == 3      # one decompressed copy a frame
        make_master_dark(fs, params.resolve({}), qc.default_ranges(fs.arm))
    assert _open_temporaries(private_tmp) == [] and list(private_tmp.iterdir()) == []
    bad = tmp_path / "raw" / "bad.fits.gz"
    _truncated(gzip_file)(truth.paths[0], bad)
    with pytest.raises(InputError):
        RawImage(bad)
    mixed = tmp_path / "mixed.sof"   # two good archives opened, then the bad one
    mixed.write_text("".join(f"{tmp_path / 'raw' / n} DARK_VIS\n" for n in
                             sorted(os.listdir(tmp_path / "raw"))[1:3]) + f"{bad} DARK_VIS\n")
    assert cli.main(["mdark", str(mixed), "-o", str(tmp_path / "ws")]) == 2
    import gc
    gc.collect()
    assert _open_temporaries(private_tmp) == [] and list(private_tmp.iterdir()) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_no_temporary_file_after_a_signal(nir, tmp_path, sig):
    truth, _ = nir
    sof = convert(truth, tmp_path / "raw", ".fits.gz", gzip_file)
    private = tmp_path / "tmpdir"
    private.mkdir()
    proc = subprocess.Popen([str(SOXS), "mdark", str(sof), "-o", str(tmp_path / "ws")],
                            env={**os.environ, "TMPDIR": str(private)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    # wait until the decompressed copies exist: the child holds them open
    while time.monotonic() < deadline and proc.poll() is None:
        held = []
        for fd in os.listdir(f"/proc/{proc.pid}/fd") if os.path.exists(
                f"/proc/{proc.pid}/fd") else []:
            try:
                held.append(os.readlink(f"/proc/{proc.pid}/fd/{fd}"))
            except OSError:
                pass
        if any(h.startswith(str(private)) for h in held):
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it was signalled"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == (130 if sig == signal.SIGTERM else -signal.SIGKILL), err
    assert list(private.iterdir()) == []
    assert not list((tmp_path / "ws").rglob("*.fits"))
