"""A stand-in for EDPS's workflow API, to read the SOXS workflow as EDPS reads
it where EDPS itself cannot be installed (it is on ESO's own package index).

It holds what ESO documents of EDPS (the EDPS tutorials, ESO's and
METIS_Pipeline's workflows): a file's keywords reach a rule lower case,
without ``ESO``, dotted, and a keyword the file lacks reads as None; a dict
rule matches when every keyword equals its value, a function rule when it
returns true; a data source groups its files by the values of its grouping
keywords and drops groups smaller than its minimum; an associated input is
taken at the lowest level that has a candidate with the job's values of the
match keywords inside that level's time range, the nearest in time (to the
job's first exposure).  Nothing here is imported from the workflow or from
soxs_lib, so it checks them instead of repeating them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from pathlib import Path
import sys
import types

from astropy.io import fits


# -- time ranges (days around the job's time) ---------------------------------------

@dataclass(frozen=True)
class RelativeTimeRange:
    left: float
    right: float

    def holds(self, days: float) -> bool:
        return self.left <= days <= self.right


TIME_RANGES = {"SAME_NIGHT": RelativeTimeRange(-0.5, 0.5), "ONE_DAY": RelativeTimeRange(-1, 1),
               "ONE_WEEK": RelativeTimeRange(-7, 7), "ONE_MONTH": RelativeTimeRange(-31, 31),
               "QUARTERLY": RelativeTimeRange(-92, 92),
               "UNLIMITED": RelativeTimeRange(-math.inf, math.inf)}


# -- the declarations -------------------------------------------------------------

@dataclass
class Rule:
    tag: str
    test: object

    def matches(self, f: "EdpsFile") -> bool:
        if callable(self.test):
            return bool(self.test(f))
        return all(f[k] == v for k, v in self.test.items())


@dataclass
class DataSource:
    name: str | None = None
    rules: list = field(default_factory=list)
    grouping: list = field(default_factory=list)
    min_group: int = 1
    levels: list = field(default_factory=list)      # (level, keywords, time range)

    def with_classification_rule(self, rule):
        self.rules.append(rule)
        return self

    def with_grouping_keywords(self, keywords):
        self.grouping = list(keywords)
        return self

    def with_min_group_size(self, n):
        self.min_group = n
        return self

    def with_match_keywords(self, keywords, time_range=TIME_RANGES["UNLIMITED"], level=0):
        self.levels.append((level, list(keywords), time_range))
        return self

    def build(self):
        return self

    def takes(self, f) -> bool:
        return any(r.matches(f) for r in self.rules)


@dataclass
class Task:
    name: str
    recipe: str = ""
    main: DataSource | None = None
    associated: list = field(default_factory=list)  # (data source, categories, min, max)
    meta: list = field(default_factory=list)

    def with_recipe(self, recipe):
        self.recipe = recipe
        return self

    def with_main_input(self, source):
        self.main = source
        return self

    def with_associated_input(self, source, categories=None, min_ret=1, max_ret=1):
        self.associated.append((source, categories, min_ret, max_ret))
        return self

    def with_meta_targets(self, targets):
        self.meta = list(targets)
        return self

    def build(self):
        return self


def install(monkeypatch) -> None:
    """Put the stand-in where ``import edps`` finds it, for one test."""
    edps = types.ModuleType("edps")
    edps.classification_rule = Rule
    edps.data_source = DataSource
    edps.task = Task
    edps.RelativeTimeRange = RelativeTimeRange
    edps.QC1_CALIB, edps.SCIENCE, edps.QC0 = "qc1calib", "science", "qc0"
    generator = types.ModuleType("edps.generator")
    time_range = types.ModuleType("edps.generator.time_range")
    for name, value in TIME_RANGES.items():
        setattr(time_range, name, value)
    edps.generator, generator.time_range = generator, time_range
    for name, module in (("edps", edps), ("edps.generator", generator),
                         ("edps.generator.time_range", time_range)):
        monkeypatch.setitem(sys.modules, name, module)
    for name in [m for m in sys.modules if m == "soxs" or m.startswith("soxs.")]:
        monkeypatch.delitem(sys.modules, name)


# -- reading files and forming jobs --------------------------------------------------

class EdpsFile:
    """A file's keywords as EDPS gives them to a rule."""

    def __init__(self, path: Path, keywords: dict):
        self.path, self.keywords = path, keywords

    def __getitem__(self, name: str):
        return self.keywords.get(name)


def read(path: Path) -> EdpsFile | None:
    """The primary header's keywords by EDPS name; None for what is not FITS."""
    try:
        header = fits.getheader(path)
    except (OSError, ValueError):
        return None
    keywords = {}
    for key, value in header.items():
        name = key[4:] if key.startswith("ESO ") else key
        keywords[name.lower().replace(" ", ".")] = value
    return EdpsFile(Path(path), keywords)


@dataclass
class Job:
    task: str
    files: list
    associated: dict          # data source index -> the file taken, or None


def _associate(source: DataSource, ref: EdpsFile, candidates: list) -> EdpsFile | None:
    for _, keywords, span in sorted(source.levels, key=lambda lv: lv[0]):
        fits_ = [c for c in candidates if all(c[k] == ref[k] for k in keywords)
                 and span.holds(c["mjd-obs"] - ref["mjd-obs"])]
        if fits_:
            return min(fits_, key=lambda c: abs(c["mjd-obs"] - ref["mjd-obs"]))
    return None


def jobs(tasks: list, files: list) -> list[Job]:
    """The jobs EDPS forms for ``tasks`` from ``files``."""
    out = []
    for t in tasks:
        groups: dict[tuple, list] = {}
        for f in files:
            if t.main.takes(f):
                groups.setdefault(tuple(f[k] for k in t.main.grouping), []).append(f)
        for members in groups.values():
            if len(members) < t.main.min_group:
                continue
            members.sort(key=lambda f: f["mjd-obs"])
            taken = {}
            for i, (source, _, min_ret, max_ret) in enumerate(t.associated):
                assert max_ret == 1, "the stand-in takes one file an input"
                found = _associate(source, members[0], [f for f in files if source.takes(f)])
                assert found is not None or min_ret == 0, f"{t.name}: no associated input"
                taken[i] = found
            out.append(Job(t.name, members, taken))
    return out
