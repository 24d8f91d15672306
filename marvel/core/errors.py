"""User-facing errors.

A `MarvelError` is something the user can fix (a missing file, a bad override, no credentials). The entry
point prints its message as one line and exits non-zero, without a traceback. Everything else is a bug and
keeps its traceback.
"""


class MarvelError(Exception):
    """An error the user can act on; its message says what to do."""

    exit_code = 2
