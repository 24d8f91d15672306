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

from marvel.core.errors import MarvelError
from marvel.core.schemas import (
    LABELS,
    RAW_NUMERIC,
    RAW_TO_INPUT,
    TARGET,
    Quarantine,
    RawCharacters,
    SplitTable,
)

UNIQUE_CHECK = "field_uniqueness"


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


def record_json(row: pd.Series) -> str:
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
            "record": [record_json(df.loc[i]) for i in bad_idx],
            "quarantined_at": now,
        },
        columns=list(Quarantine.to_schema().columns),
    )
    return good, Quarantine.validate(quarantine)


def to_split_rows(raw: pd.DataFrame) -> pd.DataFrame:
    """Valid raw rows -> train/test rows: serving names, label as 1/0 (the index is kept)."""
    rows = raw.rename(columns=RAW_TO_INPUT)[list(RAW_TO_INPUT.values())].copy()
    rows[TARGET] = raw[TARGET].map(LABELS).astype("int64")
    return rows


def validate_rows(
    raw: pd.DataFrame,
    run_id: str,
    *,
    first_row: int = 0,
    duplicated_ids: frozenset[str] = frozenset(),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Raw rows -> (valid train/test rows, quarantined rows): the one implementation every engine runs.

    ``row_index`` is the raw row's position, plus ``first_row`` when `raw` is one batch of a larger table (a
    Spark partition). ``duplicated_ids`` are PageIDs repeated elsewhere in that larger table: they fail
    uniqueness here as they would in one frame.
    """
    raw = raw.reset_index(drop=True)
    valid, quarantined = split_valid(
        raw, RawCharacters, table="raw", stage="process", run_id=run_id, numeric=RAW_NUMERIC
    )
    rows = to_split_rows(valid)
    if len(rows):
        # the split rows must satisfy the train/test contract too; whatever does not is quarantined as well,
        # reported at its raw row
        positions = rows.index.to_numpy()
        rows, more = split_valid(rows, SplitTable, table="split", stage="process", run_id=run_id)
        rows.index = np.delete(positions, more["row_index"].to_numpy())
        more = more.assign(row_index=positions[more["row_index"].to_numpy()])
        quarantined = pd.concat([quarantined, more], ignore_index=True)
    if duplicated_ids:
        quarantined, rows = _quarantine_duplicates(raw, rows, quarantined, run_id, duplicated_ids)
    quarantined = quarantined.assign(row_index=quarantined["row_index"].astype("int64") + first_row)
    return rows.reset_index(drop=True), Quarantine.validate(quarantined)


def _quarantine_duplicates(
    raw: pd.DataFrame,
    rows: pd.DataFrame,
    quarantined: pd.DataFrame,
    run_id: str,
    duplicated_ids: frozenset[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PageIDs repeated in another batch: add the uniqueness failure to rows already quarantined, and
    quarantine the valid rows that carry one."""
    reason = {pid: f"PageID: {pid!r} fails {UNIQUE_CHECK}" for pid in duplicated_ids}
    page_ids = raw["PageID"].to_numpy()
    quarantined = quarantined.copy()
    for i in quarantined.index:
        pid = page_ids[int(quarantined.at[i, "row_index"])]
        if pid in reason and reason[pid] not in quarantined.at[i, "reason"]:
            quarantined.at[i, "reason"] += "; " + reason[pid]
    dup = rows["Id"].isin(duplicated_ids).to_numpy()
    if not dup.any():
        return quarantined, rows
    at = rows.index.to_numpy()[dup]
    extra = pd.DataFrame(
        {
            "run_id": run_id,
            "stage": "process",
            "table": "raw",
            "row_index": at,
            "reason": [reason[pid] for pid in rows.loc[dup, "Id"]],
            "record": [record_json(raw.iloc[p]) for p in at],
            "quarantined_at": pd.Timestamp.now(tz="UTC").tz_localize(None),
        },
        columns=list(Quarantine.to_schema().columns),
    )
    return pd.concat([quarantined, extra], ignore_index=True), rows.loc[~dup]
