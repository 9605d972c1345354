"""Sphinx configuration of the soxs_mdark documentation (MyST pages; the
recipe page's tables and the command-line reference come from the code's
declarations through ``_ext/soxs_docs.py``)."""

from pathlib import Path
import sys

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

import soxs_lib  # noqa: E402

project = "soxs_mdark"
author = "the soxs_mdark team"
copyright = "2026, the soxs_mdark team"  # noqa: A001
release = soxs_lib.__version__
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "soxs_docs"]
source_suffix = {".md": "markdown"}
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_member_order = "bysource"
autodoc_typehints = "none"
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = f"soxs_mdark {release}"
html_static_path = ["_static"]
suppress_warnings = ["myst.header"]
highlight_language = "none"     # help texts and settings files are not Python
