"""The ``soxs`` command line end to end, and the product it writes."""

import hashlib
import os
import signal
from pathlib import Path
import subprocess
import sys
import warnings

import numpy as np
from astropy.io import fits
import pytest

from soxs_lib.cli import main as cli
from soxs_lib.config import params
from soxs_lib.config import qc

SOXS = Path(sys.executable).with_name("soxs")


def run(*args, cwd=None):
    return subprocess.run([str(SOXS), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def product_files(root):
    return sorted(p.relative_to(root).as_posix() for p in Path(root).rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def done(vis_small, tmp_path_factory):
    truth, sof = vis_small
    out = tmp_path_factory.mktemp("ws")
    res = run("mdark", sof, "-o", out, "--frame_clipping_sigma=4")
    return truth, sof, out, res


def test_end_to_end_products_report_and_log(done):
    truth, sof, out, res = done
    assert res.returncode == 0, res.stderr
    files = product_files(out)
    stem = "20260111T082924_VIS_2X2_1_MDARK_300_0S_SOXS"   # soxspipe's rule
    assert files == [f"products/soxs_mdark/{stem}.fits", f"products/soxs_mdark/{stem}_log.txt",
                     f"qc/soxs_mdark/{stem}_QC.png"]
    for word in ("Products:", "QC plots:", "MDARK MEDIAN", "RAW RON", "PASS", stem):
        assert word in res.stdout
    log = (out / f"products/soxs_mdark/{stem}_log.txt").read_text().rstrip().splitlines()
    assert log[-1].endswith(f"soxs mdark -x {sof} -o {out} --frame_clipping_sigma=4")
    png = (out / f"qc/soxs_mdark/{stem}_QC.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20000


def test_product_header_is_eso_compliant(done):
    truth, sof, out, res = done
    path = next((out / "products/soxs_mdark").glob("*.fits"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # a checksum that does not verify
        with fits.open(path, checksum=True) as hdul:
            for hdu in hdul:
                assert hdu.verify_checksum() == 1 and hdu.verify_datasum() == 1, hdu.name
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "FLUX", "QUAL", "ERR"]
        h = hdul[0].header
        assert h["HIERARCH ESO PRO CATG"] == "DARK_VIS"
        assert h["HIERARCH ESO PRO TYPE"] == "REDUCED"
        assert h["HIERARCH ESO PRO TECH"] == "IMAGE"
        assert h["HIERARCH ESO PRO REC1 ID"] == "soxs_mdark"
        assert h["HIERARCH ESO PRO REC1 PIPE ID"].startswith("soxs/")
        assert h["PIPEFILE"] == path.name
        assert h["NCOMBINE"] == 3 and h["HIERARCH ESO PRO DATANCOM"] == 3
        assert h["HIERARCH ESO SEQ ARM"] == "VIS"
        assert h["INSTRUME"] == "SOXS" and h["EXPTIME"] == 300.0
        assert "HIERARCH ESO DPR TYPE" not in h and "ARCFILE" not in h
        assert "HIERARCH ESO DET READ CURNAME" in h
        names = sorted(p.name for p in truth.paths)
        assert [h[f"HIERARCH ESO PRO REC1 RAW{i} NAME"] for i in (1, 2, 3)] == names
        assert h["HIERARCH ESO PRO REC1 RAW1 CATG"] == "DARK_VIS"
        aliases = [h[f"HIERARCH ESO PRO REC1 PARAM{i} NAME"]
                   for i in range(1, len(params.PARAMETERS) + 1)]
        assert aliases == [p.name for p in params.PARAMETERS]
        i = aliases.index("frame_clipping_sigma") + 1
        assert float(h[f"HIERARCH ESO PRO REC1 PARAM{i} VALUE"]) == 4.0
        for q in ("HOTPIX NUM", "HOTPIX FRAC", "MDARK MEDIAN", "RAW RON", "MASTER RON"):
            assert f"HIERARCH ESO QC {q}" in h
        assert h["HIERARCH ESO QC MDARK MEDIAN STATUS"] == "PASS"
        assert h["HIERARCH ESO QC STATUS"] == "PASS"
        spans = [(hdul.fileinfo(i)["datLoc"], hdul.fileinfo(i)["datSpan"])
                 for i in range(len(hdul))]
        raw = path.read_bytes()
        assert h["DATAMD5"] == hashlib.md5(b"".join(raw[a:a + n] for a, n in spans)).hexdigest()
        assert "CHECKSUM" in h and "DATASUM" in h
        assert hdul["FLUX"].data.dtype == np.dtype(">f4")
        assert hdul["ERR"].data.dtype == np.dtype(">f4")
        assert hdul["FLUX"].header["BUNIT"] == "electron"
        assert hdul["QUAL"].header["QUALB0"] == 1 and hdul["QUAL"].data.dtype == np.dtype(">i4")
        assert np.all(np.isfinite(hdul["FLUX"].data))


def test_existing_product_is_not_clobbered_without_x(done):
    truth, sof, out, res = done
    before = {p: (out / p).read_bytes() for p in product_files(out)}
    again = run("mdark", sof, "-o", out)
    assert again.returncode == 4
    assert "exists" in again.stderr and "-x" in again.stderr
    assert "Traceback" not in again.stderr
    assert {p: (out / p).read_bytes() for p in product_files(out)} == before


def test_overwrite_and_deterministic_data(done):
    truth, sof, out, res = done
    path = next((out / "products/soxs_mdark").glob("*.fits"))
    first = fits.getdata(path, "FLUX").copy()
    files = product_files(out)
    again = run("-x", "mdark", sof, "-o", out, "--frame_clipping_sigma=4")
    assert again.returncode == 0, again.stderr
    np.testing.assert_array_equal(fits.getdata(path, "FLUX"), first)
    assert product_files(out) == files and len(files) == 3   # replaced, no temporary left


SIGNED = ("CHECKSUM", "DATASUM", "DATE")     # the moment of writing


def test_product_catg_master_dark_changes_the_category_alone(done, tmp_path):
    """soxspipe's recipes find a master dark by ``PRO CATG MASTER_DARK_<ARM>``
    and take its read noise from ``QC RAW RON`` when ``PRO DATANCOM`` is there."""
    truth, sof, out, res = done
    again = run("mdark", sof, "-o", tmp_path, "--frame_clipping_sigma=4",
                "--product_catg=MASTER_DARK")
    assert again.returncode == 0, again.stderr
    assert product_files(tmp_path) == product_files(out)       # the same names
    [a] = (out / "products/soxs_mdark").glob("*.fits")
    [b] = (tmp_path / "products/soxs_mdark").glob("*.fits")
    with fits.open(a) as ha, fits.open(b) as hb:
        pa, pb = ha[0].header, hb[0].header
        assert pb["HIERARCH ESO PRO CATG"] == "MASTER_DARK_VIS"
        assert pb["HIERARCH ESO PRO DATANCOM"] == 3 and pb["HIERARCH ESO QC RAW RON"] > 0
        i = [p.name for p in params.PARAMETERS].index("product_catg") + 1
        assert pb[f"HIERARCH ESO PRO REC1 PARAM{i} VALUE"] == "MASTER_DARK"
        assert pa[f"HIERARCH ESO PRO REC1 PARAM{i} VALUE"] == "DARK"
        differ = {k for k in set(pa) | set(pb) if k not in SIGNED and pa.get(k) != pb.get(k)}
        assert differ == {"ESO PRO CATG", f"ESO PRO REC1 PARAM{i} VALUE"}
        for name in ("FLUX", "QUAL", "ERR"):
            np.testing.assert_array_equal(ha[name].data, hb[name].data)
            assert {k: v for k, v in ha[name].header.items() if k not in SIGNED} == \
                {k: v for k, v in hb[name].header.items() if k not in SIGNED}
    assert "MASTER_DARK_VIS" in again.stdout


def test_product_catg_from_either_settings_file(vis_small, tmp_path):
    truth, sof = vis_small
    own, theirs = tmp_path / "own.yaml", tmp_path / "soxspipe.yaml"
    own.write_text("soxs_mdark:\n  product_catg: MASTER_DARK\n")
    theirs.write_text("soxs-mdark:\n  product-catg: MASTER_DARK\n")
    for k, settings in enumerate((own, theirs)):
        ws = tmp_path / f"ws{k}"
        assert cli.main(["mdark", str(sof), "-o", str(ws), "-s", str(settings)]) == 0
        h = fits.getheader(next((ws / "products/soxs_mdark").glob("*.fits")))
        assert h["HIERARCH ESO PRO CATG"] == "MASTER_DARK_VIS"
    assert cli.main(["mdark", str(sof), "-o", str(tmp_path / "bad"),
                     "--product_catg=MASTER_BIAS"]) == 3


def test_soxspipe_settings_file_and_override_precedence(vis_small, tmp_path):
    truth, sof = vis_small
    yaml = tmp_path / "soxspipe.yaml"
    yaml.write_text("version: 1\ninstrument: soxs\nworkspace-root-dir: .\n"
                    "soxs-mbias:\n  frame-clipping-sigma: 9\n"
                    "soxs-mdark:\n  frame-clipping-sigma: 3\n  frame-clipping-iterations: 1\n"
                    "  stacked-clipping-sigma: 6\n  stacked-clipping-iterations: 5\n"
                    "  vis:\n    qc-acceptable-ranges:\n      mdark-median: [100, 200]\n")
    assert cli.main(["mdark", str(sof), "-o", str(tmp_path), "-s", str(yaml),
                     "--stacked-clipping-sigma=7"]) == cli.EXIT_QC_FAILED
    h = fits.getheader(next((tmp_path / "products/soxs_mdark").glob("*.fits")))
    values = {h[f"HIERARCH ESO PRO REC1 PARAM{i} NAME"]: h[f"HIERARCH ESO PRO REC1 PARAM{i} VALUE"]
              for i in range(1, len(params.PARAMETERS) + 1)}
    assert float(values["stacked_clipping_sigma"]) == 7.0      # command line wins
    assert int(values["frame_clipping_iterations"]) == 1        # from the file
    assert h["HIERARCH ESO QC MDARK MEDIAN STATUS"] == "FAIL"
    assert h["HIERARCH ESO QC STATUS"] == "FAIL"


def test_folder_and_file_list_inputs(vis_small, tmp_path):
    truth, sof = vis_small
    assert cli.main(["mdark", str(sof.parent), "-o", str(tmp_path / "a")]) == 0
    assert cli.main(["mdark", *map(str, truth.paths), "-o", str(tmp_path / "b")]) == 0
    a = fits.getdata(next((tmp_path / "a/products/soxs_mdark").glob("*.fits")), "FLUX")
    b = fits.getdata(next((tmp_path / "b/products/soxs_mdark").glob("*.fits")), "FLUX")
    np.testing.assert_array_equal(a, b)


def test_sof_order_does_not_matter(vis_small, tmp_path):
    truth, sof = vis_small
    rev = tmp_path / "rev.sof"
    rev.write_text("".join(f"{p} DARK_VIS\n" for p in reversed(truth.paths)))
    assert cli.main(["mdark", str(rev), "-o", str(tmp_path / "r")]) == 0
    assert cli.main(["mdark", str(sof), "-o", str(tmp_path / "f")]) == 0
    a = fits.getdata(next((tmp_path / "r/products/soxs_mdark").glob("*.fits")), "FLUX")
    b = fits.getdata(next((tmp_path / "f/products/soxs_mdark").glob("*.fits")), "FLUX")
    np.testing.assert_array_equal(a, b)


def test_help_lists_every_parameter_and_settings_roundtrip(capsys, tmp_path):
    with pytest.raises(SystemExit):
        cli.main(["mdark", "--help"])
    text = capsys.readouterr().out
    for p in params.PARAMETERS:
        assert f"--{p.name}" in text
    assert cli.main(["settings"]) == 0
    yaml = tmp_path / "s.yaml"
    yaml.write_text(capsys.readouterr().out)
    from soxs_lib.config import settings
    s = settings.load(yaml)
    assert params.resolve(s.values) == params.defaults()
    assert s.qc_ranges("NIR") == qc.default_ranges("NIR")


def test_last_line_of_the_log_reruns_the_reduction(done, tmp_path):
    """Copied from the log as is, with soxs not on PATH, it reproduces the product."""
    truth, sof, out, res = done
    prod = next((out / "products/soxs_mdark").glob("*.fits"))
    before = fits.getdata(prod, "FLUX")
    command = next((out / "products/soxs_mdark").glob("*_log.txt")).read_text() \
        .rstrip().splitlines()[-1]
    env = {k: v for k, v in os.environ.items() if k != "PATH"}
    env["PATH"] = "/usr/bin:/bin"
    rerun = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                           cwd=tmp_path, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    np.testing.assert_array_equal(fits.getdata(prod, "FLUX"), before)


def _closed_stdout(*args):
    """Run soxs with a standard output whose reader is already gone (``| true``)."""
    p = subprocess.Popen([str(Path(sys.executable).with_name("soxs")), *map(str, args)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()
    err = p.stderr.read().decode()
    return p.wait(timeout=300), err


def test_a_closed_standard_output_ends_quietly_with_sigpipes_status():
    assert _closed_stdout("settings") == (128 + signal.SIGPIPE, "")
