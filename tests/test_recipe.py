"""The PyEsoRex recipe's declarations, checked where PyCPL is not needed:
the adapter imports the shared library, soxs_lib never imports cpl, and the
man page covers every declaration.  The recipe run through ``cpl`` is in
``test_recipe_cpl.py``."""

import ast
from pathlib import Path

from soxs_lib.cli import manpage
from soxs_lib.config import params, flags
from soxs_lib.config import qc

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "soxs_mdark.py"


def test_recipe_uses_the_shared_declarations_only():
    tree = ast.parse(RECIPE.read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert {"soxs_lib.core.mdark", "soxs_lib.io.frames", "soxs_lib.io.product"} <= imported
    # no science in the adapter: it never touches numpy
    assert "numpy" not in RECIPE.read_text()


def test_soxs_lib_never_imports_cpl():
    paths = sorted((RECIPE.parents[1] / "soxs_lib").rglob("*.py"))
    assert any(p.parent.name == "night" for p in paths)     # every sub-package too
    for path in paths:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "cpl" or n.startswith("cpl.") for n in names), path


def test_man_page_covers_every_declaration():
    text = manpage.description()
    for p in params.PARAMETERS:
        assert p.name in text and str(p.default) in text
    for q in qc.QC_DEFS:
        assert q.keyword in text
        for arm, (lo, hi) in q.ranges.items():
            assert f"{arm} [{lo:g}, {hi:g}]" in text
    for meaning in flags.MEANINGS.values():
        assert meaning in text
    for tag in ("DARK_NIR", "DARK_VIS", "MASTER_BIAS_VIS", "REDUCED", "IMAGE"):
        assert tag in text
