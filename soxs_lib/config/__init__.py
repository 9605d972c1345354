"""Facts declared once: parameters, header keywords and tags, QUAL flags,
QC declarations, detector tables (``static_calib/``), settings files, errors
and exit statuses, and where the shipped folders are.  Imports nothing else
of soxs_lib."""
