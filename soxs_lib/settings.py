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

from . import keywords as kw
from . import params, qc
from .errors import SettingsError

SECTION_OWN = params.RECIPE
SECTION_SOXSPIPE = params.RECIPE.replace("_", "-")
OWN_TOP_KEYS = {SECTION_OWN, "version"}
QC_BLOCK_KEYS = {"qc-acceptable-ranges", "qc_acceptable_ranges"}


def _norm(key) -> str:
    return str(key).strip().lower().replace("-", "_")


def _parse_ranges(block, where: str) -> dict:
    if not isinstance(block, dict):
        raise SettingsError(f"{where}: expected a mapping of QC name to [low, high]")
    out = {}
    for key, value in block.items():
        name = qc.normalise_name(key)
        if name not in qc.BY_NAME:
            known = ", ".join(q.settings_key for q in qc.QC_DEFS)
            raise SettingsError(f"{where}: unknown QC metric '{key}' (known: {known})")
        if (not isinstance(value, (list, tuple)) or len(value) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           for v in value) or value[0] > value[1]):
            raise SettingsError(f"{where}: '{key}' must be [low, high] with low <= high, "
                                f"got {value!r}")
        out[name] = (float(value[0]), float(value[1]))
    return out


class Settings:
    """Parameter values (a layer for params.resolve) and QC range overrides."""

    def __init__(self, values: dict | None = None, ranges: dict | None = None,
                 path: Path | None = None):
        self.values = values or {}
        self.ranges = ranges or {}     # arm or "*" -> {QC name: (lo, hi)}
        self.path = path

    def qc_ranges(self, arm: str) -> dict:
        out = qc.default_ranges(arm)
        out.update(self.ranges.get("*", {}))
        out.update(self.ranges.get(arm, {}))
        return out


def parse(doc, source: str) -> Settings:
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
    section = doc.get(SECTION_SOXSPIPE, doc.get(SECTION_OWN)) or {}
    if not isinstance(section, dict):
        raise SettingsError(f"{source}: section {SECTION_OWN} must be a mapping")
    values, ranges = {}, {}
    for key, value in section.items():
        where = f"{source}, {SECTION_OWN}"
        if key in QC_BLOCK_KEYS:
            ranges["*"] = _parse_ranges(value, f"{where}.{key}")
        elif _norm(key).upper() in kw.ARMS or _norm(key) == "acq":
            arm = _norm(key).upper()
            if not isinstance(value, dict):
                raise SettingsError(f"{where}.{key}: expected a mapping")
            for sub, block in value.items():
                if sub not in QC_BLOCK_KEYS:
                    raise SettingsError(f"{where}.{key}: unknown key '{sub}' "
                                        "(expected qc-acceptable-ranges)")
                ranges[arm] = _parse_ranges(block, f"{where}.{key}.{sub}")
        else:
            par = params.lookup(str(key), f"{source}: {SECTION_OWN}")
            values[par.name] = par.coerce(value, f"{source}: {SECTION_OWN}")
    return Settings(values, ranges)


def load(path) -> Settings:
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
    lines = [f"# soxs_mdark settings (defaults); every key is optional", f"{SECTION_OWN}:"]
    for p in params.PARAMETERS:
        lines.append(f"  # {p.description} [{p.type.__name__}, {p.min}..{p.max}]")
        lines.append(f"  {p.name}: {p.default}")
    for arm in kw.ARMS:
        lines.append(f"  {arm.lower()}:")
        lines.append("    qc-acceptable-ranges:")
        for name, (lo, hi) in qc.default_ranges(arm).items():
            lines.append(f"      {qc.BY_NAME[name].settings_key}: [{lo}, {hi}]")
    return "\n".join(lines) + "\n"
