"""Drift metrics: each window against the previous window (CONSECUTIVE) and the baseline (BASELINE).

Reference bins (numeric quantile edges, categorical top values) come from the baseline when the column has
one, so every window of a column is measured on the same yardstick; columns the baseline lacks (prediction,
probability) only get CONSECUTIVE drift, binned on the previous window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from marvel.core.labels import words
from marvel.monitoring.profile import analysis_frame, model_groups
from marvel.monitoring.schemas import DriftMetrics
from marvel.monitoring.stats import (
    MISSING,
    OTHER,
    bucket_counts,
    categorical_drift,
    numeric_drift,
    quantile_edges,
    top_categories,
)

DRIFT_COLUMNS: list[str] = list(DriftMetrics.to_schema().columns)
# Missing is a value worth tracking for features (a form field left empty), but not for the label:
# a missing label only means the ground truth has not arrived yet.
UNLABELLED_IS_NOT_A_VALUE = {"label"}


@dataclass
class Reference:
    """One column's reference sample: non-null values (numeric) or value counts with NaN (categorical)."""

    count: int
    nulls: int
    values: np.ndarray = field(default_factory=lambda: np.empty(0))  # numeric columns
    counts: pd.Series = field(default_factory=lambda: pd.Series(dtype="int64"))  # categorical columns

    @property
    def avg(self) -> float:
        return float(self.values.mean()) if len(self.values) else np.nan

    @property
    def percent_null(self) -> float:
        return 100.0 * self.nulls / self.count if self.count else np.nan


def reference(s: pd.Series, numeric: bool) -> Reference:
    if s.name in UNLABELLED_IS_NOT_A_VALUE:
        s = s.dropna()
    if numeric:
        v = s.to_numpy(dtype=float)
        ok = ~np.isnan(v)
        return Reference(count=len(v), nulls=int((~ok).sum()), values=v[ok])
    return Reference(count=len(s), nulls=int(s.isna().sum()), counts=s.value_counts(dropna=False))


@dataclass
class Baseline:
    """The training table as the reference distribution, with the bins every window is measured on."""

    version: int | None
    refs: dict[str, Reference] = field(default_factory=dict)
    edges: dict[str, np.ndarray] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)


def build_baseline(
    train: pd.DataFrame | None,
    version: int | None,
    numeric: list[str],
    categorical: list[str],
    bins: int,
    max_categories: int,
) -> Baseline:
    """`train_set` -> references per column; its `Alive` label is the baseline of the `label` column."""
    base = Baseline(version=version)
    if train is None or train.empty:
        return base
    frame = train.copy()
    if "Alive" in frame.columns:
        frame["label"] = words(frame["Alive"].to_numpy())
    for col in numeric:
        if col in frame.columns:
            base.refs[col] = reference(frame[col], numeric=True)
            base.edges[col] = quantile_edges(base.refs[col].values, bins)
    for col in categorical:
        if col in frame.columns:
            base.refs[col] = reference(frame[col], numeric=False)
            base.categories[col] = top_categories(base.refs[col].counts, max_categories)
            # kept bucketed: every window is compared with it, and thousands of raw values are slow to regroup
            base.refs[col].counts = bucket_counts(base.refs[col].counts, base.categories[col])
    return base


def compare(
    cur: Reference, ref: Reference, numeric: bool, edges: np.ndarray | None, categories: list[str] | None
) -> dict[str, float]:
    """Every drift figure of one column between two references."""
    out: dict[str, float] = {
        "count": cur.count,
        "count_cmp": ref.count,
        "count_delta": float(cur.count - ref.count),
        "percent_null_delta": cur.percent_null - ref.percent_null,
        "avg_delta": cur.avg - ref.avg if numeric else np.nan,
    }
    if numeric:
        e = edges if edges is not None else quantile_edges(ref.values)
        out.update(numeric_drift(cur.values, ref.values, e))
    else:
        cats = categories if categories is not None else top_categories(ref.counts, 20)
        out.update(categorical_drift(cur.counts, ref.counts, cats))
    return out


class _Columns:
    """One model group's rows, split by window once per column (arrays, not per-window DataFrames)."""

    def __init__(self, sub: pd.DataFrame, baseline: Baseline) -> None:
        codes, self.windows = pd.factorize(sub["window_start"], sort=True)
        self.index = {w: i for i, w in enumerate(self.windows)}
        self.order = np.argsort(codes, kind="stable")
        self.bounds = np.searchsorted(codes[self.order], np.arange(len(self.windows) + 1))
        self.sub, self.baseline = sub, baseline
        self._cache: dict[str, np.ndarray] = {}

    def _sorted(self, col: str, numeric: bool) -> np.ndarray:
        if col not in self._cache:
            s = self.sub[col]
            if numeric:
                self._cache[col] = s.to_numpy(dtype=float)[self.order]
            elif col in self.baseline.categories:
                # bucket codes once per column: top baseline values, then OTHER (k), MISSING (k + 1)
                cats = self.baseline.categories[col]
                codes = pd.Index(cats, dtype=object).get_indexer(s.astype(object))
                codes[codes < 0] = len(cats)
                codes[s.isna().to_numpy()] = len(cats) + 1
                self._cache[col] = codes[self.order]
            else:
                self._cache[col] = s.to_numpy(dtype=object)[self.order]
        return self._cache[col]

    def reference(self, col: str, w: pd.Timestamp, numeric: bool) -> Reference | None:
        i = self.index.get(w)
        if i is None:
            return None
        part = self._sorted(col, numeric)[self.bounds[i] : self.bounds[i + 1]]
        if numeric or col not in self.baseline.categories:
            return reference(pd.Series(part, name=col), numeric)
        cats = self.baseline.categories[col]
        counts = pd.Series(
            np.bincount(part, minlength=len(cats) + 2).astype(float), index=[*cats, OTHER, MISSING]
        )
        if col in UNLABELLED_IS_NOT_A_VALUE:
            counts.iloc[-1] = 0.0
        total = int(counts.sum())
        return Reference(count=total, nulls=int(counts.iloc[-1]), counts=counts)


def drift(
    rows: pd.DataFrame,
    windows: list[pd.Timestamp],
    baseline: Baseline,
    numeric: list[str],
    categorical: list[str],
    granularity: str,
    step: pd.Timedelta,
    max_categories: int = 20,
) -> pd.DataFrame:
    """Drift rows for `windows`; `rows` must also hold each window's previous window, where there is one."""
    records: list[dict] = []
    columns = [*numeric, *categorical]
    data = analysis_frame(rows[["window_start", "model_id", *columns]])
    targets = set(windows)
    for model_id, sub in model_groups(data):
        split = _Columns(sub, baseline)
        for w in sorted(targets & set(split.index)):
            for col in columns:
                is_num = col in numeric
                cur = split.reference(col, w, is_num)
                if cur is None:  # w is one of this model's windows, so it has a reference
                    continue
                prev = split.reference(col, w - step, is_num)
                key = {"window_start": w, "model_id": model_id, "column_name": col}
                key["data_type"] = "numeric" if is_num else "categorical"
                edges, cats = baseline.edges.get(col), baseline.categories.get(col)
                if prev is not None:
                    # the same bins as the baseline comparison where there is a baseline
                    stats = compare(cur, prev, is_num, edges, cats)
                    records.append(
                        {**key, **stats, "drift_type": "CONSECUTIVE", "window_cmp_start": w - step}
                    )
                if col in baseline.refs:
                    stats = compare(cur, baseline.refs[col], is_num, edges, cats)
                    records.append({**key, **stats, "drift_type": "BASELINE", "window_cmp_start": pd.NaT})
    if not records:
        return DriftMetrics.to_schema().coerce_dtype(pd.DataFrame(columns=DRIFT_COLUMNS))
    out = pd.DataFrame.from_records(records)
    out["window_end"] = out["window_start"] + step
    out["granularity"] = granularity
    out["baseline_version"] = pd.array(
        [baseline.version if t == "BASELINE" else None for t in out["drift_type"]], dtype="Int64"
    )
    out = out[DRIFT_COLUMNS].sort_values(
        ["window_start", "model_id", "column_name", "drift_type"], kind="stable"
    )
    return out.reset_index(drop=True)
