"""Every parameter, QC metric and flag is declared once and complete."""

import pytest

from soxs_lib.config import flags, params, settings
from soxs_lib.config import qc
from soxs_lib.config.errors import SettingsError


def test_parameters_are_complete_and_defaults_valid():
    names = [p.name for p in params.PARAMETERS]
    assert len(set(names)) == len(names)
    for required in ("frame_clipping_sigma", "frame_clipping_iterations",
                     "stacked_clipping_sigma", "stacked_clipping_iterations"):
        assert required in names
    for p in params.PARAMETERS:
        assert p.full_name == f"soxs.soxs_mdark.{p.name}"
        assert p.coerce(p.default) == p.default and p.description
        if p.choices:
            assert p.default in p.choices and p.min is None and p.max is None
            with pytest.raises(SettingsError, match="is not one of"):
                p.coerce("nope")
        else:
            assert p.min <= p.default <= p.max
            with pytest.raises(SettingsError):
                p.coerce(p.min - 1)
        with pytest.raises(SettingsError):
            p.coerce(True)


def test_stack_method_is_an_enumeration_everywhere():
    from soxs_lib.cli import manpage
    p = params.BY_NAME["stack_method"]
    assert p.choices == ("soxs", "cpl") and p.default == "soxs"
    assert params.resolve({"stack-method": "cpl"}).stack_method == "cpl"
    assert "stack_method (str, default soxs, one of soxs|cpl)" in manpage.description()
    assert "stack_method: soxs" in settings.default_yaml()


def test_lookup_accepts_every_spelling():
    p = params.lookup("soxs.soxs_mdark.stacked_clipping_sigma")
    assert params.lookup("stacked-clipping-sigma") is p is params.lookup("stacked_clipping_sigma")
    with pytest.raises(SettingsError, match="unknown parameter 'nope'"):
        params.lookup("nope")


def test_qc_and_flags_declared_once():
    assert len({q.name for q in qc.QC_DEFS}) == len(qc.QC_DEFS)
    for name in ("HOTPIX NUM", "HOTPIX FRAC", "MDARK MEDIAN", "RAW RON", "MASTER RON"):
        assert qc.BY_NAME[name].keyword == f"ESO QC {name}"
    assert qc.default_ranges("NIR")["MDARK MEDIAN"] == (-15.0, 50.0)
    assert qc.default_ranges("NIR")["RAW RON"] == (0.0, 30.0)
    assert set(qc.default_ranges("VIS")) >= {"MDARK MEDIAN", "RAW RON"}
    bits = list(flags.MEANINGS)
    assert all(b & (b - 1) == 0 for b in bits) and len(set(bits)) == len(bits)


def test_soxspipe_ranges_per_arm_and_global():
    s = settings.parse({"soxs-mdark": {"qc-acceptable-ranges": {"raw-ron": [1, 2]},
                                       "nir": {"qc-acceptable-ranges": {"mdark-median": [0, 1]}}}},
                       "x")
    assert s.qc_ranges("NIR")["RAW RON"] == (1.0, 2.0)
    assert s.qc_ranges("NIR")["MDARK MEDIAN"] == (0.0, 1.0)
    assert s.qc_ranges("VIS")["MDARK MEDIAN"] == qc.default_ranges("VIS")["MDARK MEDIAN"]
