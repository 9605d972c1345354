"""The layers of soxs_lib, enforced: each sub-package imports only those it
sits on (``config`` facts, ``core`` science and ``runtime`` processes side by
side, then ``io``, ``pipeline``, ``night``, ``cli``), nothing imports the
PyEsoRex recipe, and no module outgrows a sitting."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "soxs_lib"
BELOW = {
    "config": set(),
    "core": {"config"},
    "runtime": {"config"},
    "io": {"config", "core", "runtime"},
    "pipeline": {"config", "core", "runtime", "io"},
    "night": {"config", "core", "runtime", "io", "pipeline"},
    "cli": {"config", "core", "runtime", "io", "pipeline", "night"},
}
MAX_LINES = 300


def imported(tree: ast.AST) -> list[str]:
    """Every module an AST imports, ``from soxs_lib import io`` as ``soxs_lib.io``."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            out += [module] + [f"{module}.{a.name}" for a in node.names]
    return out


def violations(source: str, layer: str) -> list[str]:
    """The imports of a module of ``layer`` that run back up, or sideways."""
    bad = []
    for name in imported(ast.parse(source)):
        parts = name.split(".")
        if name.startswith("soxs_lib.recipes") or parts[0] == "recipes":
            bad.append(name)
        elif parts[0] == "soxs_lib" and len(parts) > 1 and parts[1] in BELOW \
                and parts[1] != layer and parts[1] not in BELOW[layer]:
            bad.append(name)
    return bad


def layer_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0]


MODULES = [p for p in sorted(PACKAGE.rglob("*.py")) if p.parent != PACKAGE]


def test_every_module_sits_in_a_layer():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py"]          # the version and the pipeline's name only
    assert {layer_of(p) for p in MODULES} == set(BELOW)
    assert all((PACKAGE / layer / "__init__.py").is_file() for layer in BELOW)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_down_the_layers_only(path):
    assert violations(path.read_text(), layer_of(path)) == []


def test_the_check_sees_an_import_that_runs_up():
    # lazy imports inside functions count as much as those at the top
    source = "def f():\n    from soxs_lib.io.frames import FrameSet\n"
    assert violations(source, "core") == ["soxs_lib.io.frames", "soxs_lib.io.frames.FrameSet"]
    assert violations("from soxs_lib import night", "io") == ["soxs_lib.night"]
    assert violations("from soxs_lib.runtime import signals", "core") != []
    assert violations("import soxs_lib.recipes.soxs_mdark", "cli") != []
    assert violations("from soxs_lib.config import params", "core") == []


def test_soxs_lib_imports_absolutely():
    # a relative import would hide its layer from the check above
    for path in MODULES:
        assert not any(n.startswith(".") for n in imported(ast.parse(path.read_text()))), path


WORKFLOW_MODULES = sorted((ROOT / "workflows").rglob("*.py"))
# the EDPS workflow is a front end: it reads the declarations (config) and
# applies prep's rule (night), as any user of soxs_lib would
WORKFLOW_USES = {"config", "night"}


@pytest.mark.parametrize("path", WORKFLOW_MODULES, ids=lambda p: p.name)
def test_the_edps_workflow_uses_the_declarations_and_prep_only(path):
    used = {n.split(".")[1] for n in imported(ast.parse(path.read_text()))
            if n.startswith("soxs_lib.") and n.split(".")[1] in BELOW}
    assert used <= WORKFLOW_USES
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_nothing_imports_the_recipe():
    users = [p for folder in ("soxs_lib", "tests", "benchmarks", "workflows")
             for p in sorted((ROOT / folder).rglob("*.py")) if "venv" not in str(p)]
    assert any(p.parent.name == "night" for p in users)
    for path in users:
        names = imported(ast.parse(path.read_text()))
        assert not any(n.split(".")[0] == "recipes" or n.startswith("soxs_lib.recipes")
                       for n in names), path


@pytest.mark.parametrize("path", MODULES + [ROOT / "recipes" / "soxs_mdark.py"],
                         ids=lambda p: p.name)
def test_no_module_over_300_lines(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES
