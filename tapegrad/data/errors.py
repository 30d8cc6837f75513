"""The one base class for a user's data problems (bad file, bad layout, missing dataset).

The CLI catches it at its top level and prints one `tapegrad: error: ...` line; library users
catch it like any ValueError.
"""
from __future__ import annotations


class DataError(ValueError):
    """A dataset or data file cannot be used as given; the message says what to do."""
