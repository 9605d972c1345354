"""The documentation site (``docs/``): it builds with warnings as errors and
no network, and the recipe page's tables and the command-line reference come
from the declarations, so what is declared appears with no edit to docs/."""

from __future__ import annotations

from pathlib import Path

import pytest

sphinx_build = pytest.importorskip("sphinx.cmd.build")

from soxs_lib.cli.main import HANDLERS  # noqa: E402
from soxs_lib.config import keywords as kw  # noqa: E402
from soxs_lib.config import params, qc  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs"
# Sphinx's own deprecations, raised while it builds (not ours to fix)
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


def build(out: Path) -> dict:
    """Build the site into ``out`` (warnings are errors); page -> its HTML."""
    status = sphinx_build.build_main(["-W", "-q", "-b", "html", "-d", str(out / "doctrees"),
                                      str(DOCS), str(out / "html")])
    assert status == 0
    return {p.stem: p.read_text() for p in (out / "html").glob("*.html")}


def test_the_site_builds_with_every_page_and_table(tmp_path):
    pages = build(tmp_path)
    assert {"index", "install", "tour", "recipe", "cli", "settings", "night", "pyesorex",
            "qc", "benchmarks", "api"} <= set(pages)
    recipe = pages["recipe"]
    order = [recipe.index(f"<h2>{h}<") for h in ("Usage", "Reduction Tips", "Parameters",
                                                 "Input", "Output", "QC Metrics", "Method",
                                                 "API")]
    assert order == sorted(order)                        # the seeds' order
    for p in params.PARAMETERS:
        assert p.name in recipe and p.full_name in recipe
    for q in qc.QC_DEFS:
        assert q.name in recipe
    for tag in kw.KNOWN_TAGS:
        assert tag in recipe
    assert "MASTER_DARK_&lt;ARM&gt;" in recipe and kw.PRO_TYPE_VALUE in recipe
    for command in HANDLERS:
        assert f"soxs {command}" in pages["cli"]
    assert "stacked_clipping_sigma:" in pages["settings"]


def test_a_declared_parameter_and_metric_reach_the_pages_with_no_edit(tmp_path, monkeypatch):
    extra = params.Param("test_only_knob", float, 1.5, 0.0, 2.0, "a parameter of this test")
    metric = qc.QCDef("TEST ONLY METRIC", "e-", "a metric of this test", {"NIR": (0.0, 9.0)})
    monkeypatch.setattr(params, "PARAMETERS", params.PARAMETERS + (extra,))
    monkeypatch.setattr(qc, "QC_DEFS", qc.QC_DEFS + (metric,))
    monkeypatch.setattr(qc, "BY_NAME", {q.name: q for q in qc.QC_DEFS})
    pages = build(tmp_path)
    assert "test_only_knob" in pages["recipe"] and "a parameter of this test" in pages["recipe"]
    assert "TEST ONLY METRIC" in pages["recipe"] and "NIR: [0, 9]" in pages["recipe"]
    assert "--test_only_knob" in pages["cli"]        # mdark's epilog, from the parser
