"""The folders that ship inside the package: ``static_calib/`` (as
``soxs_lib.static_calib``), ``recipes/`` (as ``soxs_lib.recipes``, the
folder for ``pyesorex --recipe-dir``) and ``workflows/`` (as
``soxs_lib.workflows``, EDPS's ``workflow_dir``).  They live at the top of the
checkout; ``soxs_lib/static_calib``, ``soxs_lib/recipes`` and
``soxs_lib/workflows`` link to them, so a checkout and an installed package
find them the same way."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _folder(package: str) -> Path:
    """The sub-package's folder.

    Raises
    ------
    FileNotFoundError
        It does not exist (a broken installation).
    """
    found = Path(str(files(package)))
    if not found.is_dir():
        raise FileNotFoundError(f"{found}: {package} is missing (a broken installation)")
    return found


def static_calib() -> Path:
    """The folder of the static calibration files (``detectors.yaml``)."""
    return _folder("soxs_lib.static_calib")


def recipe_dir() -> Path:
    """The folder holding the PyEsoRex recipe ``soxs_mdark.py``."""
    return _folder("soxs_lib.recipes")


def workflow_dir() -> Path:
    """The folder holding the EDPS workflow package ``soxs`` (EDPS's
    ``workflow_dir``)."""
    return _folder("soxs_lib.workflows")
