"""Turning whatever a caller sends into character records (the `CharacterRecord` columns).

The served model and the training pipeline share this, so a record scores the same whether it comes with the
Kaggle names (``Height (m)``, ``Marital Status``), the serving names (``Height``, ``Marital_Status``) or as
strings from JSON ("1.88").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from marvel.schemas import INPUT_COLUMNS, RAW_TO_INPUT

NUMERIC_INPUTS = ("Height", "Weight")


def to_records(X: pd.DataFrame) -> pd.DataFrame:
    """Rename Kaggle columns to serving names, add missing optional columns, coerce types.

    Text becomes ``str`` or None (``""`` counts as missing, as an empty CSV cell does); numbers become float
    with NaN. Unknown extra columns (the seed's precomputed ``Magic``/``Mutant``) are ignored.
    """
    if not isinstance(X, pd.DataFrame):
        X = pd.DataFrame(X)
    X = X.rename(columns={k: v for k, v in RAW_TO_INPUT.items() if k in X.columns and v not in X.columns})
    out = pd.DataFrame(index=X.index)
    for col in INPUT_COLUMNS:
        if col not in X.columns:
            out[col] = np.nan if col in NUMERIC_INPUTS else None
            continue
        s = X[col]
        if col in NUMERIC_INPUTS:
            out[col] = pd.to_numeric(s, errors="coerce").astype("float64")
        else:
            text = s.astype(object).where(s.notna(), None)
            text = text.map(lambda v: None if v is None else (str(v).strip() or None))
            out[col] = text
    return out


def split_list(values: pd.Series) -> pd.Series:
    """Teams/Creators as lists: "a; b" -> ["a", "b"]; missing -> []."""
    return values.map(lambda v: [p.strip() for p in str(v).split(";") if p.strip()] if v is not None else [])


def team_count(values: pd.Series) -> pd.Series:
    """How many teams: a "; "-list counts its names; the source platform's "1"/"0" flag is taken as a count."""

    def count(v: object) -> int:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return 0
        text = str(v).strip()
        if text.isdigit():
            return int(text)
        return len([p for p in text.split(";") if p.strip()])

    return values.map(count).astype("int64")
