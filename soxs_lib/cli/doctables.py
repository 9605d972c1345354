"""The documentation's tables, written from the declarations the code runs
on (reStructuredText, for the Sphinx directive in ``docs/_ext``): the
recipe's parameters, inputs, outputs and QC metrics, and the command-line
reference from the argparse parser.  A parameter or metric declared once
appears on the recipe page with no edit to ``docs/``."""

from __future__ import annotations

from soxs_lib.config import flags, params, qc
from soxs_lib.config import keywords as kw


def _cell(value) -> str:
    text = str(value).replace("\n", " ").strip()
    return text if text else "-"


def list_table(head: list[str], rows: list[list], title: str = "") -> str:
    """A reStructuredText ``list-table`` of ``rows`` under ``head``.

    Parameters
    ----------
    head : list of str
    rows : list of list
        Cells, turned into text.
    title : str
        The table's caption.

    Returns
    -------
    str
    """
    lines = [f".. list-table:: {title}".rstrip(), "   :header-rows: 1", ""]
    for row in [head, *rows]:
        lines.append(f"   * - {_cell(row[0])}")
        lines += [f"     - {_cell(c)}" for c in row[1:]]
    return "\n".join(lines) + "\n"


def parameters() -> str:
    """The recipe's parameters: name (the command-line alias), description,
    type, default, allowed values, full name."""
    rows = [[f"``{p.name}``", p.description, p.type.__name__, f"``{p.default}``",
             " | ".join(f"``{c}``" for c in p.choices) if p.choices
             else f"[{p.min}, {p.max}]", f"``{p.full_name}``"] for p in params.PARAMETERS]
    return list_table(["Parameter", "Description", "Type", "Default", "Allowed",
                       "Full name (PyEsoRex, EDPS)"], rows,
                      "The soxs_mdark recipe parameters (command line ``--name=value``, "
                      "settings file, PyEsoRex, EDPS).")


def inputs() -> str:
    """The input frames: tag, group, content, the least number."""
    rows = [[f"``{tag}``", group.upper(), content, least or "0 or 1"]
            for tag, group, content, least in kw.INPUTS]
    return list_table(["Tag", "Group", "Content", "Min. frame count"], rows,
                      "Input files for the soxs_mdark recipe, listed in a set-of-files "
                      "(SOF), one per line.")


def outputs() -> str:
    """The products: label, content, data type and the ESO PRO keywords."""
    catgs = " or ".join(f"``{kw.product_tag('<ARM>', c)}``" for c in kw.PRODUCT_CATGS)
    qual = "; ".join(f"{bit} {meaning}" for bit, meaning in flags.MEANINGS.items())
    rows = [["MDARK", "Master dark: the typical dark signal over the exposure time of the "
             f"inputs, in electrons ({kw.EXT_FLUX}), its uncertainty ({kw.EXT_ERR}) and "
             f"quality flags ({kw.EXT_QUAL}: {qual})", "FITS image",
             catgs + " (``product_catg``)", kw.PRO_TYPE_VALUE, kw.PRO_TECH_VALUE],
            ["LOG", "The reduction's log, ending with the command that reruns it", "text",
             "-", "-", "-"],
            ["QC", "QC plot: the master, its histogram, hot pixels", "PNG", "-", "-", "-"]]
    return list_table(["Label", "Content", "Data type", "PRO CATG", "PRO TYPE", "PRO TECH"],
                      rows, "Output files for the soxs_mdark recipe and their ESO PRO "
                            "keywords.")


def qc_metrics() -> str:
    """The QC metrics: label, description, unit and range per arm."""
    rows = [[q.name, q.description, q.unit or "-",
             "; ".join(f"{arm}: [{lo:g}, {hi:g}]" for arm, (lo, hi) in q.ranges.items())
             or "-"] for q in qc.QC_DEFS]
    return list_table(["Label", "Description", "Unit", "Acceptable range"], rows,
                      "Quality Control metrics calculated by the soxs_mdark recipe "
                      "(``ESO QC <label>``).")


def cli_reference() -> str:
    """One section per ``soxs`` sub-command: what it does and its options,
    as ``soxs <command> --help`` prints them."""
    import argparse
    import os
    from soxs_lib.cli.main import HANDLERS
    from soxs_lib.cli.parser import build_parser
    top = build_parser(HANDLERS)
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub._choices_actions}
    out = []
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "96"          # the same page whatever terminal builds it
    try:
        for name, parser in sub.choices.items():
            title = f"soxs {name}"
            out += [title, "-" * len(title), "", f"{helps.get(name, '')}.", "", "::", ""]
            out += [f"   {line}".rstrip() for line in parser.format_help().splitlines()]
            out.append("")
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    return "\n".join(out) + "\n"


def settings_file() -> str:
    """The project's complete default settings file, as ``soxs settings`` prints it."""
    from soxs_lib.config.settings import default_yaml
    return "::\n\n" + "".join(f"   {line}\n" for line in default_yaml().splitlines())


RENDERERS = {"parameters": parameters, "inputs": inputs, "outputs": outputs,
             "qc": qc_metrics, "cli": cli_reference, "settings": settings_file}
