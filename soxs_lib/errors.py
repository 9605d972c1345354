"""Error classes.  Each maps to one exit status of the command line and one
``cpl.core`` error class of the PyEsoRex recipe, so both front ends report a
failure the same way."""


class SoxsError(Exception):
    """Base class: a failure with a message meant for a person."""

    exit_status = 1
    cpl_error = "IllegalInputError"


class InputError(SoxsError):
    """A raw or calibration file, or the set of them, is not usable."""

    exit_status = 2
    cpl_error = "IllegalInputError"


class DataNotFound(InputError):
    """A file, or the frames a recipe needs, is missing."""

    cpl_error = "DataNotFoundError"


class SettingsError(SoxsError):
    """A parameter or settings file is invalid."""

    exit_status = 3
    cpl_error = "IllegalInputError"


class OutputError(SoxsError):
    """A product cannot be written (permissions, disk full, would clobber)."""

    exit_status = 4
    cpl_error = "FileIOError"
