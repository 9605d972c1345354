"""The science, on arrays: frame statistics, the clipping kernel, hot pixels,
QC values, the master-dark steps.  No files, no processes: a frame set comes
in as an object with row reads (``soxs_lib.io``), the thread count as a
number.  Imports only ``config``."""
