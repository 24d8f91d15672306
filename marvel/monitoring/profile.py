"""Profile metrics: per window, group (whole window, model version, slice) and column, Lakehouse Monitoring's
summary statistics; model quality on the `:table` rows.

Columns are profiled with one groupby per column over all windows at once (no per-window Python loop for
the statistics), which keeps a million rows in seconds. Rows come out flat: struct fields as dotted names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from marvel.monitoring.drift import analysis_frame
from marvel.monitoring.groups import Slice, groups, window_models
from marvel.monitoring.quality import window_quality
from marvel.monitoring.schemas import ALL_MODELS, TABLE_COLUMN

QUANTILES: list[float] = [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0]
FREQUENT_ITEMS = 5


def _numeric(values: pd.Series, keys: pd.Series) -> pd.DataFrame:
    gb = values.groupby(keys, sort=True)
    size, known = gb.size(), gb.count()
    out = pd.DataFrame(
        {
            "count": size,
            "num_nulls": size - known,
            "avg": gb.mean(),
            "stddev": gb.std(),
            "min": gb.min(),
            "max": gb.max(),
            "median": gb.median(),
            "distinct_count": gb.nunique(),
            "num_zeros": (values == 0).groupby(keys, sort=True).sum(),
            "num_nan": 0,  # pandas keeps one missing value; Spark's NaN-but-not-null never occurs here
        }
    )
    q = gb.quantile(QUANTILES).unstack()
    out["quantiles"] = [
        [round(float(v), 6) for v in row] if n else None
        for row, n in zip(q.reindex(out.index).to_numpy(), known, strict=True)
    ]
    out["data_type"] = "double"
    return out


def _categorical(values: pd.Series, keys: pd.Series) -> pd.DataFrame:
    """String columns, on integer codes (a million rows of text are factorized once)."""
    codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=True)
    known = codes >= 0
    frame = pd.DataFrame({"w": keys.to_numpy(), "c": np.where(known, codes, np.nan)})
    gb = frame.groupby("w", sort=True)["c"]
    size = gb.size()
    lengths = pd.Series(np.asarray(uniques.astype(str).str.len(), dtype=float))
    per_row = np.where(known, lengths.to_numpy()[np.maximum(codes, 0)] if len(lengths) else 0.0, np.nan)
    by_len = pd.Series(per_row).groupby(frame["w"].to_numpy(), sort=True)
    out = pd.DataFrame(
        {
            "count": size,
            "num_nulls": size - gb.count(),
            "distinct_count": gb.nunique(),
            "min_length": by_len.min(),
            "max_length": by_len.max(),
            "avg_length": by_len.mean(),
        }
    )
    counts = frame[known].value_counts().rename("n").reset_index()  # (window, code) -> n
    counts["item"] = np.asarray(uniques.astype(str), dtype=object)[counts["c"].astype(int).to_numpy()]
    # most frequent first, ties by value: the same items whatever order the rows came in
    counts = counts.sort_values(["w", "n", "item"], ascending=[True, False, True], kind="stable")
    top = counts.groupby("w", sort=True).head(FREQUENT_ITEMS)
    items: dict[Any, list[dict[str, Any]]] = {}
    for w, item, n in zip(top["w"], top["item"], top["n"], strict=True):
        items.setdefault(w, []).append({"item": str(item), "count": int(n)})
    out["frequent_items"] = [items.get(w) for w in out.index]
    out["data_type"] = "string"
    return out


def _table(sub: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    keys = sub["window_start"]
    quality = {w: window_quality(g) for w, g in sub.groupby("window_start", sort=True)}
    out = pd.DataFrame.from_records(list(quality.values()), index=list(quality))
    out["count"] = keys.groupby(keys).size()
    out["num_nulls"] = 0
    has = sub[columns].notna().groupby(keys, sort=True).any()
    out["non_null_columns"] = [[c for c in columns if row[c]] for _, row in has.iterrows()]
    out["data_type"] = None
    return out


def profile(
    rows: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    step: pd.Timedelta,
    cuts: list[Slice] | None = None,
    baseline_accuracy: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Flat profile rows of every window present in `rows` (which carry a `window_start` column).

    `baseline_accuracy` (model id -> accuracy on its test rows) fills `marvel_baseline_accuracy_score` and
    `marvel_estimated_accuracy_drop` on the `:table` rows of windows one model served.
    """
    frames: list[pd.DataFrame] = []
    if rows.empty:
        return pd.DataFrame(columns=["window.start", "model_id", "column_name"])
    quality_cols = ["prediction", "probability", "label"]
    columns = list(dict.fromkeys([*numeric, *categorical]))
    used = list(dict.fromkeys(["window_start", "model_id", *columns, *quality_cols]))
    data = analysis_frame(rows[used])
    single = window_models(data)
    for g in groups(data, cuts or []):
        sub, keys = g.rows, g.rows["window_start"]
        where = {"model_id": g.model_id, "slice_key": g.slice_key, "slice_value": g.slice_value}
        for col in numeric:
            frames.append(_numeric(sub[col].astype(float), keys).assign(column_name=col, **where))
        for col in categorical:
            frames.append(_categorical(sub[col], keys).assign(column_name=col, **where))
        table = _table(sub, columns).assign(column_name=TABLE_COLUMN, **where)
        served = pd.Series(
            [g.model_id if g.model_id != ALL_MODELS else single.get(w) for w in table.index],
            index=table.index,
            dtype=object,
        )
        acc = served.map(lambda m: (baseline_accuracy or {}).get(str(m), np.nan) if m else np.nan)
        table["marvel_baseline_accuracy_score"] = acc.astype(float)
        table["marvel_estimated_accuracy_drop"] = acc.astype(float) - table[
            "marvel_estimated_accuracy_score"
        ].astype(float)
        frames.append(table)
    if not frames:
        return pd.DataFrame(columns=["window.start", "model_id", "column_name"])
    out = pd.concat(frames).rename_axis("window.start").reset_index()
    out["window.end"] = out["window.start"] + step
    known = out["count"] - out["num_nulls"]
    out["percent_null"] = 100.0 * out["num_nulls"] / out["count"].where(out["count"] > 0)
    out["percent_zeros"] = 100.0 * out.get("num_zeros", np.nan) / out["count"].where(out["count"] > 0)
    out["percent_distinct"] = 100.0 * out.get("distinct_count", np.nan) / known.where(known > 0)
    out["percent_nan"] = np.where(out["data_type"] == "double", 0.0, np.nan)
    out["log_type"] = "INPUT"
    return out.reset_index(drop=True)
