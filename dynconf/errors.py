"""Exceptions that carry a message meant for the user (the CLI prints it as one line)."""


class DynconfError(Exception):
    """Base class: any error whose message is fit to show a user as is."""


class RunFormatError(DynconfError):
    """A run directory or an outputs file is missing, damaged or inconsistent."""


class DataError(DynconfError):
    """A dataset or checkpoint is absent or unusable."""
