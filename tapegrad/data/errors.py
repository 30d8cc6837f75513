"""The one base class for a user's data problems (bad file, bad layout, missing dataset).

The CLI catches it at its top level and prints one `tapegrad: error: ...` line; library users
catch it like any ValueError. Every error that a user's data (a file, a folder, the arrays in
it) can cause in ``tapegrad.data`` is a DataError subclass; a wrong *argument* (a negative
batch size, an unknown hash algorithm) stays a plain ValueError/TypeError.
"""
from __future__ import annotations


class DataError(ValueError):
    """A dataset or data file cannot be used as given; the message says what to do."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """A dataset or data file is neither on disk nor downloadable; the message says where it goes."""


class DataFileError(DataError):
    """A data file exists but cannot be read: a folder, truncated, corrupt, or not that format."""


class DataLayoutError(DataError):
    """The arrays are readable but not in a layout tapegrad accepts (keys, axes, shapes)."""


class DataValueError(DataError):
    """The arrays have the right layout but impossible values (NaN pixels, negative labels...)."""


class DataTypeError(DataError, TypeError):
    """An array has a dtype tapegrad cannot use (also a TypeError, as it was before DataError)."""
