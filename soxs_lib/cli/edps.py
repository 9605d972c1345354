"""What EDPS needs to run soxs_mdark: the lines of its configuration that
find the workflow and the recipe (``soxs edps-config``), and the workflow's
parameter file, generated from the parameter declarations so the two never
drift apart (``soxs edps-config --parameters`` writes
``workflows/soxs/soxs_parameters.yaml``)."""

from __future__ import annotations

import yaml

from soxs_lib.config import keywords as kw
from soxs_lib.config import params
from soxs_lib.config.shipped import recipe_dir, workflow_dir

WORKFLOW = "soxs.soxs_wkf"
PARAMETERS_FILE = "soxs/soxs_parameters.yaml"     # in the workflows folder
# PyEsoRex's recipe folder when no --recipe-dir is given (EDPS gives none)
RECIPE_DIR_VARIABLE = "PYESOREX_PLUGIN_DIR"


def parameters_yaml() -> str:
    """The workflow's parameter file in EDPS's format: for each task, every
    recipe parameter by its full name (``soxs.soxs_mdark.<name>``) with the
    recipe's default.

    Returns
    -------
    str
        The YAML text, with a header saying where it comes from.
    """
    defaults = {p.full_name: p.default for p in params.PARAMETERS}
    content = {"default_parameters": {
        "is_default": True,
        "workflow_parameters": {},
        "recipe_parameters": {kw.edps_task(arm): dict(defaults) for arm in kw.ARMS},
    }}
    header = ("# The recipe parameters of the SOXS workflow's tasks, with soxs_mdark's "
              "defaults.\n# Generated from soxs_lib/config/params.py by "
              "`soxs edps-config --parameters`: do not edit by hand.\n")
    return header + yaml.safe_dump(content, sort_keys=False, default_flow_style=False)


def config_text() -> str:
    """What a user pastes to run the workflow in EDPS, one item a line.

    Returns
    -------
    str
        The ``application.properties`` lines (``workflow_dir``,
        ``esorex_path``), the variable that shows PyEsoRex the recipe, and
        the commands that follow.
    """
    return "\n".join([
        "# ~/.edps/application.properties, section [application] "
        "(append to a workflow_dir that lists others, comma-separated):",
        f"workflow_dir={workflow_dir()}",
        "# ~/.edps/application.properties, section [executor]:",
        "esorex_path=pyesorex",
        "# PyEsoRex finds soxs_mdark here (set it where the EDPS server starts; "
        "pyesorex --recipe-dir takes the same folder):",
        f"export {RECIPE_DIR_VARIABLE}={recipe_dir()}",
        "# then (edps -shutdown first if a server already runs):",
        "edps -lw",
        f"edps -w {WORKFLOW} -i <raw folder> -c",
        f"edps -w {WORKFLOW} -i <raw folder> -lt",
        f"edps -w {WORKFLOW} -i <raw folder>",
    ]) + "\n"
