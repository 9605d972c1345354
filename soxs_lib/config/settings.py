"""Settings files: the project's own and soxspipe's.

Both put the recipe's parameters in one section, ``soxs_mdark`` (own) or
``soxs-mdark`` (soxspipe, hyphenated keys).  QC acceptable ranges go in a
``qc-acceptable-ranges`` (or ``qc_acceptable_ranges``) block of that section,
either directly (all arms) or under an ``nir``/``vis`` sub-section, mapping a
QC name (``mdark-median`` or ``MDARK MEDIAN``) to ``[low, high]``.

Everything else in a soxspipe file (other recipes, workspace settings) is
ignored; in the project's own file an unknown key is an error.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from soxs_lib.config import keywords as kw, params
from soxs_lib.config import qc
from soxs_lib.config.errors import SettingsError

SECTION_OWN = params.RECIPE
SECTION_SOXSPIPE = params.RECIPE.replace("_", "-")
OWN_TOP_KEYS = {SECTION_OWN, "version"}
QC_BLOCK_KEYS = {"qc-acceptable-ranges", "qc_acceptable_ranges"}


def _norm(key) -> str:
    return str(key).strip().lower().replace("-", "_")


def _parse_ranges(block, where: str, lenient: bool, warnings: list) -> dict:
    """QC name -> (low, high).  An unknown QC name is an error, or with
    ``lenient`` (a soxspipe file, whose recipes check more metrics) a warning
    appended to ``warnings``."""
    if not isinstance(block, dict):
        raise SettingsError(f"{where}: expected a mapping of QC name to [low, high]")
    out = {}
    for key, value in block.items():
        name = qc.normalise_name(key)
        if name not in qc.BY_NAME:
            known = ", ".join(q.settings_key for q in qc.QC_DEFS)
            if lenient:
                warnings.append(f"{where}: QC metric '{key}' is not one of soxs_mdark's "
                                f"({known}); ignored")
                continue
            raise SettingsError(f"{where}: unknown QC metric '{key}' (known: {known})")
        if (not isinstance(value, (list, tuple)) or len(value) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           for v in value) or value[0] > value[1]):
            raise SettingsError(f"{where}: '{key}' must be [low, high] with low <= high, "
                                f"got {value!r}")
        out[name] = (float(value[0]), float(value[1]))
    return out


class Settings:
    """What a settings file says: parameter values for all arms and per arm,
    QC range overrides, and warnings about what it holds but soxs_mdark does
    not use.

    Attributes
    ----------
    values : dict
        Parameter name -> validated value, for every arm.
    arm_values : dict
        Arm -> {parameter name: value}; wins over ``values`` for that arm.
    ranges : dict
        Arm, or ``"*"`` for every arm -> {QC name: (low, high)}.
    warnings : list of str
        Keys of a soxspipe file that were ignored, each naming the key.
    path : Path or None
        The file read.
    """

    def __init__(self, values: dict | None = None, ranges: dict | None = None,
                 path: Path | None = None, arm_values: dict | None = None,
                 warnings: list | None = None):
        self.values = values or {}
        self.arm_values = arm_values or {}
        self.ranges = ranges or {}
        self.path = path
        self.warnings = warnings or []

    def values_for(self, arm: str) -> dict:
        """Parameter values that apply to ``arm`` (a layer for ``params.resolve``)."""
        return {**self.values, **self.arm_values.get(arm, {})}

    def _flat_ranges(self, arm: str):
        """(QC name, range, applies to ``arm``) of the ranges given for all arms."""
        for name, rng in self.ranges.get("*", {}).items():
            yield name, rng, arm in qc.fitting_arms(name, rng)

    def qc_ranges(self, arm: str) -> dict:
        """Acceptable ranges for ``arm``: defaults, then the ranges given for
        every arm (an arm-specific metric's only where it fits, see
        ``qc.fitting_arms``), then the arm's own."""
        out = qc.default_ranges(arm)
        out.update({name: rng for name, rng, applies in self._flat_ranges(arm) if applies})
        out.update(self.ranges.get(arm, {}))
        return out

    def notes(self, arm: str) -> list[str]:
        """Warnings for the report and the log of a run on ``arm``."""
        out = list(self.warnings)
        for name, rng, applies in self._flat_ranges(arm):
            if not applies and name not in self.ranges.get(arm, {}):
                q = qc.BY_NAME[name]
                fits = " and ".join(qc.fitting_arms(name, rng)) or "no arm"
                default = q.ranges.get(arm)
                kept = f"[{default[0]:g}, {default[1]:g}] {q.unit}" if default else "none"
                out.append(f"{self.path or 'settings'}: {q.settings_key} "
                           f"[{rng[0]:g}, {rng[1]:g}] {q.unit} fits {fits}, not {arm}; "
                           f"{arm} keeps its range {kept}")
        return out


def parse(doc, source: str) -> Settings:
    """Settings from a parsed YAML document.

    Parameters
    ----------
    doc : mapping or None
        The document: the project's own (top-level ``soxs_mdark``) or
        soxspipe's (``soxs-mdark`` among other recipes' sections).
    source : str
        What to name in messages (the file).

    Returns
    -------
    Settings

    Raises
    ------
    SettingsError
        A value out of range or of the wrong type; in the project's own
        format also any unknown key.  In a soxspipe file, keys soxs_mdark does
        not use become ``Settings.warnings``.
    """
    name, section, lenient = _section(doc, source)
    out = Settings()
    where = f"{source}, {name}"
    for key, value in section.items():
        if key in QC_BLOCK_KEYS:
            out.ranges["*"] = _parse_ranges(value, f"{where}.{key}", lenient, out.warnings)
        elif _norm(key).upper() in kw.ARMS:
            _arm_section(out, _norm(key).upper(), value, f"{where}.{key}", lenient)
        elif lenient and _norm(key) in ("acq", "uvb"):   # arms soxs_mdark never sees
            out.warnings.append(f"{where}.{key}: not a SOXS arm of soxs_mdark; ignored")
        else:
            _parameter(out, (key, value), out.values, where, lenient)
    return out


def _section(doc, source: str) -> tuple[str, dict, bool]:
    """(name, content, soxspipe's format) of the document's soxs_mdark section."""
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise SettingsError(f"{source}: expected a YAML mapping at the top level")
    soxspipe_style = SECTION_SOXSPIPE in doc or "instrument" in doc
    if not soxspipe_style:
        unknown = [k for k in doc if k not in OWN_TOP_KEYS]
        if unknown:
            raise SettingsError(f"{source}: unknown key(s) {', '.join(map(str, unknown))} "
                                f"(expected: {SECTION_OWN})")
    name = SECTION_SOXSPIPE if soxspipe_style else SECTION_OWN
    section = doc.get(name) or {}
    if not isinstance(section, dict):
        raise SettingsError(f"{source}: section {name} must be a mapping")
    return name, section, soxspipe_style


def _parameter(out: Settings, item: tuple, into: dict, at: str, lenient: bool) -> None:
    """One ``(key, value)`` into ``into``; an unknown key is a warning when
    ``lenient`` (soxspipe's file holds other recipes' keys), else an error."""
    key, value = item
    try:
        par = params.lookup(str(key), at)
    except SettingsError as exc:
        if not lenient:
            raise
        out.warnings.append(f"{exc}; ignored")
        return
    into[par.name] = par.coerce(value, at)


def _arm_section(out: Settings, arm: str, block, at: str, lenient: bool) -> None:
    """An arm's own parameters and QC ranges."""
    if not isinstance(block, dict):
        raise SettingsError(f"{at}: expected a mapping")
    for key, value in block.items():
        if key in QC_BLOCK_KEYS:
            out.ranges[arm] = _parse_ranges(value, f"{at}.{key}", lenient, out.warnings)
        else:
            _parameter(out, (key, value), out.arm_values.setdefault(arm, {}), at, lenient)


def load(path) -> Settings:
    """Read a settings file (``parse``).

    Raises
    ------
    SettingsError
        Missing, unreadable, not YAML, or invalid; names the file.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SettingsError(f"{path}: settings file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: settings file cannot be read ({exc})") from None
    try:
        doc = yaml.safe_load(text)   # never constructs arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SettingsError(f"{path}: YAML syntax error{where}: {problem}") from None
    s = parse(doc, str(path))
    s.path = path
    return s


def default_yaml() -> str:
    """A complete settings file with every parameter and QC range, commented."""
    lines = ["# soxs_mdark settings (defaults); every key is optional", f"{SECTION_OWN}:"]
    for p in params.PARAMETERS:
        lines.append(f"  # {p.description} [{p.type.__name__}, {p.allowed}]")
        lines.append(f"  {p.name}: {p.default}")
    for arm in kw.ARMS:
        lines.append(f"  {arm.lower()}:")
        lines.append("    qc-acceptable-ranges:")
        for name, (lo, hi) in qc.default_ranges(arm).items():
            lines.append(f"      {qc.BY_NAME[name].settings_key}: [{lo}, {hi}]")
    return "\n".join(lines) + "\n"
