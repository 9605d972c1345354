"""The SOXS consortium's QC monitor reads our database: its contract.

The monitor (``qc-monitor``, SalvatoreINAF/soxs-qc-monitor) reads one table
or view of the pipeline's SQLite database, by default
``quality_control_plus_lite``, and requires ``COLUMNS``.  It drops, and holds
the night open for, a row whose night, observing date, arm, value, recipe
or QC name is empty, and selects its plots by exact equality on the values
soxspipe writes for its dark recipe: recipe ``soxs-mdark``, ``qc_order``
``'-1'``, ``rospeed`` the text of ``ESO DET READ CURID``, units as words
(``electrons``).  The view below presents the project's own tables so:
they stay the one source of truth.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from soxs_lib.config import keywords as kw
from soxs_lib.config.errors import InputError
from soxs_lib.core.qcvalues import METRIC_FAIL
from soxs_lib.io import naming
from soxs_lib.night.outcome import ERROR

VIEW = "quality_control_plus_lite"
RECIPE = "soxs-mdark"            # soxspipe's name of its dark recipe
QC_ORDER = "-1"                  # a whole-detector metric, not one of an order
# our units (qc.QC_DEFS) as soxspipe writes them
UNITS = {"e-": "electrons", "e-/s": "electrons/s", "K": "kelvin"}
# metrics soxspipe leaves out of its lite view
LEFT_OUT = ("HOTPIX NUM",)

COLUMNS = ("night start date", "obs_date_utc", "eso seq arm", "soxspipe_recipe", "qc_name",
           "qc_value", "qc_order", "qc_unit", "qc_flag", "qc_value_min", "qc_value_max",
           "sof_name", "file", "status", "binning", "rospeed", "slit", "slitmask", "lamp",
           "exptime", "template", "object", "filepath")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _in(values) -> str:
    return "(" + ", ".join(_quote(v) for v in values) + ")"


def _case(column: str, mapping: dict) -> str:
    whens = " ".join(f"WHEN {_quote(k)} THEN {_quote(v)}" for k, v in mapping.items())
    return f"CASE {column} {whens} ELSE {column} END"


def view_sql() -> str:
    """``CREATE VIEW`` of the monitor's table over ``sets``, ``products`` and
    ``quality_control``: one row per QC value of a reduced set (values
    that could not be measured are left out, as the monitor would hold
    their night open)."""
    sof_len = len(naming.SOF_SUFFIX)
    values = {
        "night start date": "s.night",
        "obs_date_utc": "q.obs_date_utc",
        "eso seq arm": "s.arm",
        "soxspipe_recipe": _quote(RECIPE),
        "qc_name": "q.qc_name",
        "qc_value": "q.qc_value",
        "qc_order": _quote(QC_ORDER),
        "qc_unit": _case("q.qc_unit", UNITS),
        "qc_flag": f"CASE q.qc_status WHEN {_quote(METRIC_FAIL)} THEN 'fail' ELSE 'pass' END",
        "qc_value_min": "q.qc_min",
        "qc_value_max": "q.qc_max",
        "sof_name": "q.sof",
        # the product is the SOF's name with .fits (naming)
        "file": f"substr(q.sof, 1, length(q.sof) - {sof_len}) || "
                f"{_quote(naming.PRODUCT_SUFFIX)}",
        "status": f"CASE p.status WHEN {_quote(ERROR)} THEN 'fail' ELSE 'pass' END",
        "binning": f"CASE WHEN s.arm IN {_in(kw.BINNED_ARMS)} THEN s.binning END",
        "rospeed": "s.readout_id",
        "slit": "NULL", "slitmask": "NULL", "lamp": "NULL",     # no meaning for a dark
        "exptime": "s.exptime",
        "template": "s.template",
        "object": "s.object",
        "filepath": "q.product",
    }
    select = ",\n    ".join(f'{values[name]} AS "{name}"' for name in COLUMNS)
    return (f"CREATE VIEW {VIEW} AS SELECT\n    {select}\n"
            "FROM quality_control q JOIN sets s ON s.sof = q.sof "
            "LEFT JOIN products p ON p.sof = q.sof\n"
            f"WHERE q.qc_value IS NOT NULL AND s.night <> '' "
            f"AND q.obs_date_utc <> '' AND q.qc_name NOT IN {_in(LEFT_OUT)}")


# path parts the monitor takes for test data and refuses under its products root
SUSPICIOUS = ("test", "tmp", "temporary", "sandbox")


def default_output(workspace: Path) -> Path:
    """Where the monitor's database, plots and report go by default: beside
    the workspace, as the monitor publishes nothing inside what it reads."""
    return workspace.parent / f"{workspace.name}-qc-monitor"


def _yaml_path(path: Path) -> str:
    """``path`` as a YAML value: plain where YAML reads it back unchanged,
    else double-quoted (a ``#`` or ``: `` in a folder name)."""
    text = str(path)
    try:
        plain = yaml.safe_load(f"k: {text}") == {"k": text}
    except yaml.YAMLError:
        plain = False
    return text if plain else json.dumps(text)


def config_yaml(workspace: Path = Path("/data/soxs/ws"), output: Path | None = None) -> str:
    """The ``qc_monitor.yaml`` that points the monitor at a soxs workspace.

    Its plot definitions are the consortium's, unmodified.  Where the products'
    path holds a part the monitor takes for test data (``tmp``, ``test`` ...),
    the file allows it, saying so.

    Parameters
    ----------
    workspace : Path
        The workspace, absolute.
    output : Path or None
        The folder of the monitor's QC database, plots and HTML report
        (default ``default_output``).

    Returns
    -------
    str
        The YAML text.

    Raises
    ------
    InputError
        ``output`` is inside the workspace or holds it: the monitor refuses
        to publish over what it reads.
    """
    output = default_output(workspace) if output is None else output
    if output.is_relative_to(workspace) or workspace.is_relative_to(output):
        raise InputError(f"{output}: the QC monitor's output must be outside the workspace "
                         f"{workspace} (the monitor refuses to publish into, or above, the "
                         "folders it reads)")
    products = workspace / kw.WORKSPACE_PRODUCTS
    token = next((tok for part in products.parts for tok in SUSPICIOUS if tok in part.lower()),
                 None)
    allow = ("  # the path holds '{0}', which the monitor takes for test data\n"
             "  allow_suspicious_paths: true\n".format(token) if token else "")
    return f"""\
paths:
  upstream_root: {_yaml_path(workspace)}
  reduced_root: {_yaml_path(products)}
  qc_database: {_yaml_path(output / "qc.sqlite")}

acquisition:
  upstream_database_name: {kw.WORKSPACE_DB}
  upstream_table: {VIEW}
  upstream_database_search: direct
  reduced_products_search: recursive
{allow}
plots:
  output_dir: {_yaml_path(output / "plots")}
  html_output: {_yaml_path(output / "index.html")}
  show: false
  include:
    - plots/datapoint_queries.yaml
    - plots/nir_dark.yaml
    - plots/nir_dark_ron.yaml
"""
