"""User-facing errors.

A `MarvelError` is something the user can fix (a missing file, a bad override, no credentials). The entry
point prints its message as one line and exits non-zero, without a traceback. Everything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import sys
from typing import NoReturn


class MarvelError(Exception):
    """An error the user can act on; its message says what to do."""

    exit_code = 2


def one_line(exc: BaseException) -> str:
    """`exc`'s message as one line. A message over several lines (Hydra's "Error in call to target 'x':" and
    the cause below it) has them joined with "; ": the reason is often on a later line."""
    lines = [line.strip().rstrip(":") for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) if lines else type(exc).__name__


def exit_with(message: str, code: int = 2) -> NoReturn:
    """Print a user error as the one line marvel prints and exit with `code` (no traceback)."""
    print(f"marvel: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)
