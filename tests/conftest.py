"""Shared synthetic data: made once per session with the project's simulator."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
import shutil

import pytest

from soxs_lib.io import frames
from soxs_lib.config import params
from soxs_lib.config import qc
from soxs_lib.core.mdark import make_master_dark
from soxs_lib.io.simulate import simulate_darks

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "xshooter_static_bpm"


def bpm(arm: str):
    """A real X-Shooter bad-pixel map for a realistic hot-pixel pattern, when
    the shared data are beside the project (as in CI); else a synthetic one."""
    path = SHARED / {"NIR": "BP_MAP_RP_NIR.fits.gz", "VIS": "BP_MAP_RP_VIS_1x1.fits.gz"}[arm]
    return path if path.exists() else None


def reduce(sof, **overrides):
    fs = frames.load_frameset(frames.collect_inputs([str(sof)]))
    return make_master_dark(fs, params.resolve(overrides), qc.default_ranges(fs.arm))


@pytest.fixture(scope="session")
def nir(tmp_path_factory):
    d = tmp_path_factory.mktemp("nir")
    truth = simulate_darks(d, arm="NIR", nframes=5, seed=11, pattern=bpm("NIR"))
    return truth, d / "mdark.sof"


@pytest.fixture(scope="session")
def nir_master(nir):
    truth, sof = nir
    return truth, reduce(sof)


@pytest.fixture(scope="session")
def vis(tmp_path_factory):
    d = tmp_path_factory.mktemp("vis")
    truth = simulate_darks(d, arm="VIS", nframes=4, seed=12, exptime=1800.0,
                           dark_rate=0.002, pattern=bpm("VIS"))
    return truth, d / "mdark.sof"


@pytest.fixture(scope="session")
def vis_small(tmp_path_factory):
    """Binned 2x2 VIS darks: small and quick, for the command-line tests."""
    d = tmp_path_factory.mktemp("vis_small")
    truth = simulate_darks(d, arm="VIS", nframes=3, seed=13, binning=2,
                           cosmics_per_frame=100)
    return truth, d / "mdark.sof"


@pytest.fixture
def small_set(vis_small, tmp_path):
    """A private copy of the small set, free to damage."""
    truth, sof = vis_small
    dst = tmp_path / "raw"
    shutil.copytree(sof.parent, dst)
    return replace(truth, paths=[dst / p.name for p in truth.paths]), dst / "mdark.sof"


@pytest.fixture
def one_dead_of_four(tmp_path):
    """Four small VIS darks, the third all zero (a failed readout): (sof, dead)."""
    from astropy.io import fits
    import numpy as np
    truth = simulate_darks(tmp_path / "raw", arm="VIS", nframes=4, seed=7, binning=2,
                           cosmics_per_frame=50)
    dead = truth.paths[2]
    with fits.open(dead) as h:
        fits.PrimaryHDU(np.zeros_like(h[0].data), h[0].header).writeto(dead, overwrite=True)
    return tmp_path / "raw" / "mdark.sof", dead
