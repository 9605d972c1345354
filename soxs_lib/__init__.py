"""soxs_lib: the SOXS instrument library behind the soxs_mdark recipe.

All science and I/O live here; nothing in this package imports ESO's ``cpl``.
Its sub-packages are layers, each importing only those before it:
``config`` (facts declared once), ``core`` (science on arrays), ``io``
(files), ``runtime`` (processes), ``pipeline`` (one set end to end),
``night`` (a night's workspace), ``cli`` (the ``soxs`` command).
"""

import time

STARTED = time.perf_counter()   # the first of soxs_lib to run: the run's timeline starts here
__version__ = "0.1.0"
PIPELINE = "soxs"
PIPE_ID = f"{PIPELINE}/{__version__}"
