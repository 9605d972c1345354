"""The package as users install it: a wheel built from the checkout, installed
(not editable) into a fresh virtual environment outside the source tree,
reduces darks with nothing of the checkout on its path."""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

from astropy.io import fits

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, cwd, timeout=900):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                         timeout=timeout, env=env)
    assert res.returncode == 0, f"{cmd}: exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res.stdout


def test_wheel_in_a_fresh_venv_simulates_and_reduces(tmp_path):
    assert not tmp_path.is_relative_to(ROOT)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
          "-q", "-w", dist, ROOT], tmp_path)
    [wheel] = dist.glob("soxs_mdark-*.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], tmp_path)
    _run([venv / "bin/python", "-m", "pip", "install", "--disable-pip-version-check", "-q",
          wheel], tmp_path)
    soxs = venv / "bin/soxs"
    work = tmp_path / "work"
    work.mkdir()
    _run([soxs, "simulate", "--arm", "VIS", "-n", "3", "--binning", "2", "-o", "raw"], work)
    out = _run([soxs, "mdark", "raw/mdark.sof", "-o", "ws"], work)
    assert "QC: all metrics pass" in out
    [product] = (work / "ws/products/soxs_mdark").glob("*.fits")
    assert fits.getheader(product)["HIERARCH ESO PRO CATG"] == "DARK_VIS"
    # the shipped folders come from the installed package, not the checkout
    site = _run([venv / "bin/python", "-c", "import soxs_lib, pathlib; "
                 "print(pathlib.Path(soxs_lib.__file__).parent)"], work).strip()
    assert not Path(site).is_relative_to(ROOT)
    # the night layer ships too: a workspace prepped and reduced
    night = work / "night"
    _run([soxs, "simulate", "--arm", "VIS", "-n", "3", "--binning", "2", "-o",
          night / "raw"], work)
    assert "1 dark set(s), 1 SOF(s) written" in _run([soxs, "prep", night], work)
    assert "PASS" in _run([soxs, "reduce", "all", night, "-j", "1"], work)
    assert len(list((night / "products/soxs_mdark").glob("*.fits"))) == 1
    recipes = Path(_run([soxs, "recipe-dir"], work).strip())
    assert recipes.is_relative_to(site) and (recipes / "soxs_mdark.py").is_file()
    assert (Path(site) / "static_calib" / "detectors.yaml").is_file()
    # the EDPS workflow ships too, where soxs edps-config says it is
    config = _run([soxs, "edps-config"], work).splitlines()
    [wdir] = [Path(x.split("=", 1)[1]) for x in config if x.startswith("workflow_dir=")]
    assert wdir.is_relative_to(site)
    for name in ("soxs_keywords.py", "soxs_rules.py", "soxs_classification.py",
                 "soxs_datasources.py", "soxs_wkf.py", "soxs_parameters.yaml"):
        assert (wdir / "soxs" / name).is_file(), name
