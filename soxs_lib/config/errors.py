"""Error classes.  Each maps to one exit status of the command line and, in
the PyEsoRex recipe (``CPL_ERRORS``), to one ``cpl.core`` error class, so
both front ends report a failure the same way."""

# not an error: the products are written, but a QC metric is outside its range
EXIT_QC_FAILED = 5


class SoxsError(Exception):
    """Base class: a failure with a message meant for a person."""

    exit_status = 1


class InputError(SoxsError):
    """A raw or calibration file, or the set of them, is not usable."""

    exit_status = 2


class Truncated(InputError):
    """A file ends before its header (or archive) says it does: damaged, or
    still being written (``soxs prep`` waits for it)."""


class DataNotFound(InputError):
    """A file, or the frames a recipe needs, is missing."""


class SettingsError(SoxsError):
    """A parameter or settings file is invalid."""

    exit_status = 3


class OutputError(SoxsError):
    """A product cannot be written (permissions, disk full, would clobber)."""

    exit_status = 4


# failures only a change of the inputs (frames, SOF, settings) can cure; others
# (a full disk, a killed worker, an unexpected error) may pass by themselves
INPUT_EXIT_STATUSES = (InputError.exit_status, SettingsError.exit_status)
