"""The recipe parameters, each declared once.

The command line (``--name=value``), the settings file (``soxs_mdark`` or
soxspipe's ``soxs-mdark`` section), the PyEsoRex parameters
(``soxs.soxs_mdark.<name>``, alias ``<name>``), the man page and the product's
``ESO PRO REC1 PARAMi`` keywords are all generated from ``PARAMETERS``.
"""

from __future__ import annotations

from dataclasses import dataclass, make_dataclass
import math
import os

from soxs_lib.config.errors import SettingsError
from soxs_lib.config.keywords import PRODUCT_CATGS

RECIPE = "soxs_mdark"
CONTEXT = f"soxs.{RECIPE}"


@dataclass(frozen=True)
class Param:
    """One parameter: its name (the command-line alias), type, default,
    allowed range (numbers) or choices (an enumeration) and description."""

    name: str
    type: type
    default: float | int | str
    min: float | int | None
    max: float | int | None
    description: str
    choices: tuple[str, ...] = ()

    @property
    def full_name(self) -> str:
        """``soxs.soxs_mdark.<name>``, for .rc and EDPS files."""
        return f"{CONTEXT}.{self.name}"

    @property
    def soxspipe_key(self) -> str:
        """The key in a soxspipe settings file (hyphens)."""
        return self.name.replace("_", "-")

    @property
    def allowed(self) -> str:
        """What it accepts, for help texts: ``[min, max]`` or ``a|b``."""
        return "|".join(self.choices) if self.choices else f"[{self.min}, {self.max}]"

    def coerce(self, value, source: str = "parameter"):
        """Return ``value`` as this parameter's type, or raise SettingsError
        naming the parameter, the value and what was expected."""
        where = f"{source} '{self.name}'"
        if isinstance(value, bool) or value is None:
            raise SettingsError(f"{where}: {value!r} is not a {self.type.__name__}")
        if self.choices:
            if str(value) not in self.choices:
                raise SettingsError(f"{where}: {value!r} is not one of "
                                    f"{', '.join(self.choices)}")
            return str(value)
        value = self._number(value, where)
        if not self.min <= value <= self.max:
            raise SettingsError(
                f"{where}: {value!r} is outside the allowed range "
                f"[{self.min}, {self.max}]")
        return value

    def _number(self, value, where: str):
        """``value`` (a number or its text) as an int or a finite float."""
        if isinstance(value, str):
            try:
                value = float(value) if self.type is float else int(value, 10)
            except ValueError:
                raise SettingsError(
                    f"{where}: {value!r} is not a {self.type.__name__}") from None
        if self.type is int:
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int):
                raise SettingsError(f"{where}: {value!r} is not an integer")
            return value
        if not isinstance(value, (int, float)):
            raise SettingsError(f"{where}: {value!r} is not a number")
        value = float(value)
        if not math.isfinite(value):
            raise SettingsError(f"{where}: {value!r} is not a finite number")
        return value


PARAMETERS: tuple[Param, ...] = (
    Param("frame_clipping_sigma", float, 3.0, 1.0, 100.0,
          "Number of sigma (robust sigma of the frame) from the median frame flux "
          "beyond which a pixel is rogue in that frame; a rogue sample is rejected "
          "when it also departs from its pixel's non-rogue samples by this many "
          "noise sigmas"),
    Param("frame_clipping_iterations", int, 3, 1, 50,
          "Number of sigma-clipping iterations for each frame's median level and "
          "robust sigma"),
    Param("stacked_clipping_sigma", float, 5.0, 1.0, 100.0,
          "Number of noise sigmas of the pixel stack from the median pixel flux "
          "beyond which a sample is excluded from the stack"),
    Param("stacked_clipping_iterations", int, 5, 1, 50,
          "Maximum number of sigma-clipping iterations on each pixel stack"),
    Param("hot_pixel_sigma", float, 5.0, 1.0, 1000.0,
          "Number of sigma (robust sigma of the master) above the master's median "
          "beyond which a pixel is flagged hot (QUAL bit 1)"),
    Param("chunk_mbytes", int, 48, 4, 4096,
          "Memory budget in MB of one block of the pixel stack; results do not "
          "depend on it"),
    Param("stack_method", str, "soxs", None, None,
          "How the frames are stacked: soxs, the project's per-pixel clipping on the "
          "noise model (default); cpl, CPL's image-list sigma clipping "
          "(ImageList.collapse_sigclip_create, kappa stacked_clipping_sigma, "
          "MEDIAN_MEAN), which leaves cosmic rays in stacks of 3 to 5 frames; needs "
          "PyCPL (the PyEsoRex recipe)", choices=("soxs", "cpl")),
    Param("product_catg", str, PRODUCT_CATGS[0], None, None,
          "The product's category (ESO PRO CATG and tag): DARK writes DARK_<ARM>, as the "
          "SOXS documentation names it (default); MASTER_DARK writes MASTER_DARK_<ARM>, "
          "as soxspipe does, so soxspipe's recipes take the product as their master dark "
          "and its QC RAW RON as their read noise; nothing else changes",
          choices=PRODUCT_CATGS),
    Param("nthreads", int, 0, 0, 256,
          "Threads for the stacking; 0 uses OMP_NUM_THREADS if set, else all cores; "
          "results do not depend on it"),     # policy: thread_count
)

BY_NAME = {p.name: p for p in PARAMETERS}

# the validated values of every parameter, as one frozen object with a field
# per declaration (``values.frame_clipping_sigma``)
Values = make_dataclass("Values", [(p.name, p.type) for p in PARAMETERS], frozen=True)
Values.__doc__ = "Validated values of every soxs_mdark parameter (see ``PARAMETERS``)."


def as_dict(values) -> dict:
    """Parameter name -> value, in declaration order."""
    return {p.name: getattr(values, p.name) for p in PARAMETERS}


def defaults():
    """The default ``Values``."""
    return Values(**{p.name: p.default for p in PARAMETERS})


def lookup(key: str, source: str = "parameter") -> Param:
    """Find a parameter by name, soxspipe key or full name.

    Raises
    ------
    SettingsError
        No parameter of that name; the message lists the known ones.
    """
    name = key.strip()
    if name.startswith(CONTEXT + "."):
        name = name[len(CONTEXT) + 1:]
    name = name.replace("-", "_")
    try:
        return BY_NAME[name]
    except KeyError:
        known = ", ".join(p.name for p in PARAMETERS)
        raise SettingsError(
            f"{source}: unknown parameter '{key}' (known: {known})") from None


def resolve(*layers: dict, source: str = "parameter"):
    """Merge parameter layers over the defaults, validating each value.

    Parameters
    ----------
    *layers : dict
        Name (any spelling ``lookup`` takes) -> value; later layers win.
    source : str
        What to name in messages (``"command line"``, a settings file).

    Returns
    -------
    Values

    Raises
    ------
    SettingsError
        An unknown name, or a value of the wrong type or out of its range.
    """
    values = as_dict(defaults())
    for layer in layers:
        for key, value in layer.items():
            par = lookup(key, source)
            values[par.name] = par.coerce(value, source)
    return Values(**values)


def thread_count(requested: int = 0) -> int:
    """Threads the ``nthreads`` parameter asks for.

    Parameters
    ----------
    requested : int
        The parameter: used if positive.

    Returns
    -------
    int
        ``requested`` if positive, else ``OMP_NUM_THREADS`` if set (as EDPS
        sets it per job), else every core.
    """
    if requested > 0:
        return requested
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)
