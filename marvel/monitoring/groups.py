"""Which rows a metric row describes: the whole window, one model version, or a slice.

Lakehouse Monitoring computes every metric for the whole table (``model_id = ":all"``, no slice), per model
id, and per slicing expression (``slice_key`` = the expression, ``slice_value`` = "true" / "false"). Here a
window gets per-model rows only when more than one model answered in it (A/B tests, a version change), and
slices are over all models. Decided window by window, so an incremental refresh and a full rebuild agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from marvel.core.errors import MarvelError
from marvel.monitoring.schemas import ALL_MODELS

_SQL = [
    (re.compile(r"(?<![<>!=])=(?!=)"), "=="),  # SQL's = is pandas' ==
    (re.compile(r"<>"), "!="),
    (re.compile(r"\bAND\b", re.IGNORECASE), "and"),
    (re.compile(r"\bOR\b", re.IGNORECASE), "or"),
    (re.compile(r"\bNOT\b", re.IGNORECASE), "not"),
]
_IN = re.compile(r"\bIN\s*\(([^)]*)\)", re.IGNORECASE)


@dataclass(frozen=True)
class Slice:
    """A slicing expression as Lakehouse Monitoring takes it, e.g. ``Universe = 'Earth-616'`` or
    ``Height > 2``; rows where it holds are slice value "true", the others "false"."""

    key: str

    @property
    def pandas(self) -> str:
        expr = _IN.sub(lambda m: f"in [{m.group(1)}]", self.key)
        for pattern, repl in _SQL:
            expr = pattern.sub(repl, expr)
        return expr

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        try:
            found = frame.eval(self.pandas, engine="python")
        except Exception as exc:  # pandas raises many kinds for a bad expression
            raise MarvelError(
                f"monitor.slicing_exprs: cannot evaluate {self.key!r} ({type(exc).__name__}: {exc}); "
                "write a predicate on monitoring columns, e.g. \"Universe = 'Earth-616'\" or 'Height > 2'"
            ) from None
        if not isinstance(found, pd.Series) or found.dtype != bool:
            raise MarvelError(
                f"monitor.slicing_exprs: {self.key!r} is not a predicate; compare a column with a value, "
                "e.g. \"Universe = 'Earth-616'\""
            )
        return found.to_numpy()


def slices(exprs: Sequence[str] | None) -> list[Slice]:
    return [Slice(str(e)) for e in exprs or []]


@dataclass
class Group:
    slice_key: str | None
    slice_value: str | None
    model_id: str
    rows: pd.DataFrame


def window_models(rows: pd.DataFrame) -> pd.Series:
    """Per window (`window_start`), the one model that answered in it, or None when several did."""
    per = rows.groupby("window_start", sort=True)["model_id"]
    first = per.first()
    return first.where(per.nunique() == 1, None)


def groups(rows: pd.DataFrame, cuts: Sequence[Slice]) -> Iterator[Group]:
    """Every group of `rows` that gets metric rows; `rows` carry `window_start` and `model_id`."""
    yield Group(None, None, ALL_MODELS, rows)
    single = window_models(rows)
    mixed = rows["window_start"].map(single).isna().to_numpy()
    if mixed.any():
        for model_id, sub in rows[mixed].groupby("model_id", sort=True):
            yield Group(None, None, str(model_id), sub)
    for cut in cuts:
        hit = cut.mask(rows)
        for value, part in (("true", hit), ("false", ~hit)):
            if part.any():
                yield Group(cut.key, value, ALL_MODELS, rows[part])
