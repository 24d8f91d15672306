"""Validate a frame against its schema and set failing rows aside, with the reason, instead of dropping them.

Row-level failures (a value out of range, an unknown label, a number that does not parse) quarantine that
row. Table-level failures (a missing column, an empty file) are the user's to fix and raise `MarvelError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pandera.errors as pe
import pandera.pandas as pa

from marvel.errors import MarvelError
from marvel.schemas import Quarantine


def _describe(check: object, value: object) -> str:
    return f"{value!r} fails {check}"


def parse_numbers(df: pd.DataFrame, columns: Iterable[str]) -> tuple[pd.DataFrame, dict[int, list[str]]]:
    """Coerce number columns to float; cells that are present but do not parse become row failures."""
    df = df.copy()
    problems: dict[int, list[str]] = {}
    for col in columns:
        if col not in df.columns:
            continue
        original = df[col]
        parsed = pd.to_numeric(original, errors="coerce").astype("float64")
        present = original.notna() & original.astype(str).str.strip().ne("")
        bad = present & parsed.isna()
        for pos in np.flatnonzero(bad.to_numpy()):
            problems.setdefault(int(pos), []).append(f"{col}: {original.iloc[pos]!r} is not a number")
        df[col] = parsed
    return df, problems


def _record_json(row: pd.Series) -> str:
    return json.dumps({k: (None if pd.isna(v) else v) for k, v in row.items()}, default=str)


def split_valid(
    df: pd.DataFrame,
    schema: type[pa.DataFrameModel],
    *,
    table: str,
    stage: str,
    run_id: str,
    numeric: Iterable[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (rows that pass `schema`, quarantine rows in the `Quarantine` schema)."""
    if df.empty:
        raise MarvelError(f"{table}: no rows to validate; check the input file or data source")
    df = df.reset_index(drop=True)
    df, problems = parse_numbers(df, numeric)
    try:
        schema.validate(df, lazy=True)
    except pe.SchemaErrors as err:
        cases = err.failure_cases
        table_level = cases[cases["index"].isna()]
        if not table_level.empty:
            first = table_level.iloc[0]
            what = first["check"]
            if what == "column_in_dataframe":
                missing = sorted(set(table_level.loc[table_level["check"] == what, "failure_case"]))
                raise MarvelError(
                    f"{table}: missing column(s) {missing}; expected the Kaggle columns "
                    f"{list(schema.to_schema().columns)} (see data/README.md)"
                ) from None
            raise MarvelError(
                f"{table}: column {first['column']!r} fails {what}: {first['failure_case']}"
            ) from None
        for _, case in cases.iterrows():
            idx = int(case["index"])
            problems.setdefault(idx, []).append(
                f"{case['column']}: {_describe(case['check'], case['failure_case'])}"
            )
    bad_idx = sorted(problems)
    good = df.drop(index=bad_idx)
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    quarantine = pd.DataFrame(
        {
            "run_id": run_id,
            "stage": stage,
            "table": table,
            "row_index": bad_idx,
            "reason": ["; ".join(dict.fromkeys(problems[i])) for i in bad_idx],
            "record": [_record_json(df.loc[i]) for i in bad_idx],
            "quarantined_at": now,
        },
        columns=list(Quarantine.to_schema().columns),
    )
    return good, Quarantine.validate(quarantine)
