"""The folders that ship inside the package but live at the top of the
checkout: ``static_calib/`` (as ``soxs_lib.static_calib``) and ``recipes/``
(as ``soxs_lib.recipes``, the folder for ``pyesorex --recipe-dir``)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent


def _folder(package: str, checkout_name: str) -> Path:
    """The installed sub-package's folder, or the checkout's top-level one
    when the package runs from a checkout that is not installed.

    Raises
    ------
    FileNotFoundError
        Neither exists (a broken installation).
    """
    try:
        found = Path(str(files(package)))
        if found.is_dir():
            return found
    except ModuleNotFoundError:
        pass
    fallback = CHECKOUT / checkout_name
    if fallback.is_dir():
        return fallback
    raise FileNotFoundError(f"{package} is not installed and {fallback} does not exist")


def static_calib() -> Path:
    """The folder of the static calibration files (``detectors.yaml``)."""
    return _folder("soxs_lib.static_calib", "static_calib")


def recipe_dir() -> Path:
    """The folder holding the PyEsoRex recipe ``soxs_mdark.py``."""
    return _folder("soxs_lib.recipes", "recipes")
