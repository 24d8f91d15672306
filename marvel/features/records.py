"""Turning whatever a caller sends into character records (the `CharacterRecord` columns).

The served model and the training pipeline share this, so a record scores the same whether it comes with the
Kaggle names (``Height (m)``, ``Marital Status``), the serving names (``Height``, ``Marital_Status``) or as
strings from JSON ("1.88").

The processors work on plain Python lists built once per call: a served request is one or a few rows, where
pandas' per-column overhead (not the arithmetic) is what costs, and on large frames list code is as fast.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from marvel.core.schemas import INPUT_COLUMNS, RAW_TO_INPUT

NUMERIC_INPUTS = ("Height", "Weight")
# character records as plain columns: text columns as lists of str | None, numeric ones as float64 arrays (NaN
# when missing). The processors compute features from these, so a frame and a handful of dicts (the serving
# fast path) go through the same code.
Columns = dict[str, Any]


def _text(v: object) -> str | None:
    """A cell as text, or None when missing (None, NaN, pd.NA or blank)."""
    if v is None or v is pd.NA:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    text = str(v).strip()
    return text or None


def to_records(X: pd.DataFrame) -> pd.DataFrame:
    """Rename Kaggle columns to serving names, add missing optional columns, coerce types.

    Text becomes ``str`` or None (``""`` counts as missing, as an empty CSV cell does); numbers become float
    with NaN. Unknown extra columns (the seed's precomputed ``Magic``/``Mutant``) are ignored.
    """
    if not isinstance(X, pd.DataFrame):
        X = pd.DataFrame(X)
    X = X.rename(columns={k: v for k, v in RAW_TO_INPUT.items() if k in X.columns and v not in X.columns})
    n = len(X)
    data: dict[str, object] = {}
    for col in INPUT_COLUMNS:
        if col in NUMERIC_INPUTS:
            data[col] = (
                pd.to_numeric(X[col], errors="coerce").to_numpy(dtype="float64")
                if col in X.columns
                else np.full(n, np.nan)
            )
        else:
            values = [_text(v) for v in X[col].tolist()] if col in X.columns else [None] * n
            data[col] = np.array(values, dtype=object)
    return pd.DataFrame(data, index=X.index)


def columns(records: pd.DataFrame) -> Columns:
    """A `to_records` frame as plain columns."""
    return {
        col: records[col].to_numpy(dtype="float64") if col in NUMERIC_INPUTS else records[col].tolist()
        for col in INPUT_COLUMNS
    }


def _number(v: object) -> float:
    """One cell as `pd.to_numeric(errors="coerce")` makes it, without building a Series for plain numbers."""
    if v is None:
        return math.nan
    if isinstance(v, float | int) and not isinstance(v, bool):
        return float(v)
    value = pd.to_numeric(pd.Series([v], dtype=object), errors="coerce").to_numpy(dtype="float64")[0]
    return float(value)


def record_columns(records: Sequence[Mapping[str, Any]]) -> Columns:
    """`columns(to_records(pd.DataFrame(records)))` for plain dict records, without pandas (a served request is
    one or a few records, where building frames costs more than the features). Records of one request share
    their keys, as rows of a frame do."""
    out: Columns = {}
    for col in INPUT_COLUMNS:
        kaggle = _INPUT_TO_RAW.get(col)
        values = [r[col] if col in r else r.get(kaggle) if kaggle else None for r in records]
        if col in NUMERIC_INPUTS:
            out[col] = np.array([_number(v) for v in values], dtype="float64")
        else:
            out[col] = [_text(v) for v in values]
    return out


_INPUT_TO_RAW = {v: k for k, v in RAW_TO_INPUT.items() if k != v}


def split_list(values: pd.Series) -> pd.Series:
    """Teams/Creators as lists: "a; b" -> ["a", "b"]; missing -> []."""
    return pd.Series(list_items(values.tolist()), index=values.index, dtype=object)


def list_items(values: list) -> list[list[str]]:
    return [[p.strip() for p in str(v).split(";") if p.strip()] if _text(v) else [] for v in values]


def team_counts(values: list) -> list[int]:
    """How many teams: a "; "-list counts its names; the source platform's "1"/"0" flag is taken as a count."""
    out = []
    for v in values:
        text = _text(v)
        if text is None:
            out.append(0)
        elif text.isascii() and text.isdigit() and len(text) <= 9:  # not "²" (a digit int() refuses)
            out.append(int(text))
        else:
            out.append(len([p for p in text.split(";") if p.strip()]))
    return out


def team_count(values: pd.Series) -> pd.Series:
    return pd.Series(team_counts(values.tolist()), index=values.index, dtype="int64")
