"""The few exception types t2i raises; the CLI turns each into one line and an exit code."""


class T2IError(Exception):
    """A problem the user can act on; the message says what went wrong and what to do."""

    exit_code = 1


class UsageError(T2IError):
    """A bad command-line value (exit code 2)."""

    exit_code = 2


class WeightsError(T2IError):
    """A weights file or folder that is missing, corrupt or does not match its model."""


class DataError(T2IError):
    """A data source with nothing usable in it, or a file that cannot be read."""


class OutputError(T2IError):
    """An output path that cannot be written."""
