"""soxs_lib: the SOXS instrument library behind the soxs_mdark recipe.

All science and I/O live here; nothing in this package imports ESO's ``cpl``.
"""

__version__ = "0.1.0"
PIPELINE = "soxs"
PIPE_ID = f"{PIPELINE}/{__version__}"
