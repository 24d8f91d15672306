"""Drift metrics: each window against the previous window (CONSECUTIVE) and the serving model's baseline
(BASELINE), per group (whole window, model version, slice).

Reference bins (numeric quantile edges, categorical top values) come from the baseline of the model that
served the window, so every window of a model is measured on the same yardstick. A test whose sample has
fewer than `min_count` values is not computed (its statistics are null and `marvel_not_computed` says why),
so a window with three known heights reports "not enough data" instead of alerting on noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from marvel.core.labels import words
from marvel.monitoring.groups import Slice, groups, window_models
from marvel.monitoring.schemas import ALL_MODELS
from marvel.monitoring.stats import (
    MISSING,
    NAN_CATEGORICAL,
    NAN_DISTANCES,
    NAN_NUMERIC,
    OTHER,
    SMOOTHING,
    bucket_counts,
    categorical_drift,
    numeric_drift,
    quantile_edges,
    top_categories,
)

# Missing is a value worth tracking for features (a form field left empty), but not for the label:
# a missing label only means the ground truth has not arrived yet.
UNLABELLED_IS_NOT_A_VALUE = {"label"}
BaselineKey = tuple[str, str | None, str | None]  # (model id, slice key, slice value)


@dataclass
class Reference:
    """One column's sample: non-null values (numeric) or bucketed value counts with missing (categorical)."""

    count: int
    nulls: int
    zeros: int = 0
    distinct: int = 0
    values: np.ndarray = field(default_factory=lambda: np.empty(0))  # numeric columns
    counts: pd.Series = field(default_factory=lambda: pd.Series(dtype="float64"))  # categorical columns

    @property
    def avg(self) -> float:
        return float(self.values.mean()) if len(self.values) else np.nan

    def percent(self, n: int) -> float:
        return 100.0 * n / self.count if self.count else np.nan

    @property
    def percent_distinct(self) -> float:
        """Distinct values per 100 non-null values, as the profile table's `percent_distinct`."""
        known = self.count - self.nulls
        return 100.0 * self.distinct / known if known else np.nan

    @property
    def tested(self) -> int:
        """The sample size the test sees: non-null values (numeric) or every bucketed value (categorical)."""
        return len(self.values) if len(self.values) or not len(self.counts) else int(self.counts.sum())


def reference(s: pd.Series, numeric: bool, categories: list[str] | None = None) -> Reference:
    if s.name in UNLABELLED_IS_NOT_A_VALUE:
        s = s.dropna()
    nulls = int(s.isna().sum())
    if numeric:
        v = s.to_numpy(dtype=float)
        v = v[~np.isnan(v)]
        return Reference(
            count=len(s), nulls=nulls, zeros=int((v == 0).sum()), distinct=len(np.unique(v)), values=v
        )
    counts = s.value_counts(dropna=False)
    distinct = int(counts.index.notna().sum())
    if categories is not None:
        counts = bucket_counts(counts, categories)
        if s.name in UNLABELLED_IS_NOT_A_VALUE:
            counts.iloc[-1] = 0.0
    return Reference(count=len(s), nulls=nulls, distinct=distinct, counts=counts)


@dataclass
class Baseline:
    """A model version's reference distributions (one slice of them), with the bins windows are measured on."""

    source: dict[str, str] = field(default_factory=dict)  # column -> e.g. "train_set@v0"
    refs: dict[str, Reference] = field(default_factory=dict)
    edges: dict[str, np.ndarray] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)
    accuracy: float = np.nan  # the model's accuracy on its test rows


def build_baseline(
    frame: pd.DataFrame | None,
    numeric: list[str],
    categorical: list[str],
    bins: int,
    max_categories: int,
    source: str = "",
    bins_from: Baseline | None = None,
) -> Baseline:
    """Reference distributions of `frame`'s columns (`Alive` 1/0 becomes `label` "alive"/"dead").

    `bins_from` gives the bins to use (a slice is measured on its whole baseline's bins).
    """
    base = Baseline()
    if frame is None or frame.empty:
        return base
    frame = frame.copy()
    if "Alive" in frame.columns and "label" not in frame.columns:
        frame["label"] = words(frame["Alive"].to_numpy())
    for col in numeric:
        if col in frame.columns:
            ref = reference(frame[col], numeric=True)
            base.edges[col] = bins_from.edges[col] if bins_from else quantile_edges(ref.values, bins)
            base.refs[col], base.source[col] = ref, source
    for col in categorical:
        if col in frame.columns:
            raw = frame[col].value_counts(dropna=False)
            cats = bins_from.categories[col] if bins_from else top_categories(raw, max_categories)
            base.categories[col] = cats
            base.refs[col], base.source[col] = reference(frame[col], False, cats), source
    return base


def compare(
    cur: Reference,
    ref: Reference,
    numeric: bool,
    edges: np.ndarray | None,
    categories: list[str] | None,
    min_count: int,
    smoothing: float,
) -> dict[str, Any]:
    """Every drift figure of one column between two samples, in the drift table's (dotted) names."""
    out: dict[str, Any] = {
        "marvel_count": cur.tested,
        "marvel_count_cmp": ref.tested,
        "count_delta": int(cur.count - ref.count),
        "percent_null_delta": cur.percent(cur.nulls) - ref.percent(ref.nulls),
        "percent_zeros_delta": (cur.percent(cur.zeros) - ref.percent(ref.zeros)) if numeric else np.nan,
        "percent_distinct_delta": cur.percent_distinct - ref.percent_distinct,
        "avg_delta": cur.avg - ref.avg if numeric else np.nan,
        "marvel_not_computed": None,
    }
    small = min(cur.tested, ref.tested)
    if small < min_count:
        side = "window" if cur.tested < ref.tested else "reference"
        out["marvel_not_computed"] = f"{small} value(s) in the {side} < min_count {min_count}"
        out.update({**(NAN_NUMERIC if numeric else NAN_CATEGORICAL), **NAN_DISTANCES})
        return out
    if numeric:
        e = edges if edges is not None else quantile_edges(ref.values)
        out.update(numeric_drift(cur.values, ref.values, e, smoothing))
    else:
        cats = categories if categories is not None else top_categories(ref.counts, 20)
        out.update(categorical_drift(cur.counts, ref.counts, cats, smoothing))
    return out


class _Windows:
    """One group's rows, split by window once per column: arrays and codes, not per-window DataFrames."""

    def __init__(self, sub: pd.DataFrame) -> None:
        codes, self.windows = pd.factorize(sub["window_start"], sort=True)
        self.index = {w: i for i, w in enumerate(self.windows)}
        self.order = np.argsort(codes, kind="stable")
        self.bounds = np.searchsorted(codes[self.order], np.arange(len(self.windows) + 1))
        self.sub = sub
        self._num: dict[str, np.ndarray] = {}
        self._raw: dict[str, tuple[np.ndarray, pd.Index]] = {}
        self._buckets: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}

    def _values(self, col: str) -> np.ndarray:
        if col not in self._num:
            self._num[col] = self.sub[col].to_numpy(dtype=float)[self.order]
        return self._num[col]

    def _codes(self, col: str) -> tuple[np.ndarray, pd.Index]:
        """Codes of the column's values over all windows (-1 = missing) and the values they stand for."""
        if col not in self._raw:
            codes, uniques = pd.factorize(self.sub[col].astype(object), use_na_sentinel=True)
            self._raw[col] = (codes[self.order], pd.Index(uniques.astype(str), dtype=object))
        return self._raw[col]

    def _bucketed(self, col: str, categories: list[str]) -> np.ndarray:
        key = (col, tuple(categories))
        if key not in self._buckets:
            codes, uniques = self._codes(col)
            k = len(categories)
            lookup = pd.Index(categories, dtype=object).get_indexer(uniques)
            lookup[lookup < 0] = k  # OTHER
            lookup = np.append(lookup, k)  # a last entry, so an all-missing column indexes something
            self._buckets[key] = np.where(codes < 0, k + 1, lookup[np.maximum(codes, 0)])
        return self._buckets[key]

    def reference(
        self, col: str, w: pd.Timestamp, numeric: bool, categories: list[str] | None
    ) -> Reference | None:
        i = self.index.get(w)
        if i is None:
            return None
        lo, hi = self.bounds[i], self.bounds[i + 1]
        if numeric:
            v = self._values(col)[lo:hi]
            known = v[~np.isnan(v)]
            return Reference(
                count=hi - lo,
                nulls=int(hi - lo - len(known)),
                zeros=int((known == 0).sum()),
                distinct=len(np.unique(known)),
                values=known,
            )
        codes, uniques = self._codes(col)
        part = codes[lo:hi]
        present = part[part >= 0]
        unlabelled = col in UNLABELLED_IS_NOT_A_VALUE
        count = len(present) if unlabelled else hi - lo
        nulls = 0 if unlabelled else int((part < 0).sum())
        distinct = len(np.unique(present))
        if categories is None:
            counts = pd.Series(np.bincount(present, minlength=len(uniques)).astype(float), index=uniques)
            counts = counts[counts > 0]
            if nulls:
                counts = pd.concat(
                    [counts, pd.Series([float(nulls)], index=pd.Index([np.nan], dtype=object))]
                )
            return Reference(count=count, nulls=nulls, distinct=distinct, counts=counts)
        k = len(categories)
        bucket = np.bincount(self._bucketed(col, categories)[lo:hi], minlength=k + 2).astype(float)
        if unlabelled:
            bucket[-1] = 0.0
        counts = pd.Series(bucket, index=[*categories, OTHER, MISSING])
        return Reference(count=count, nulls=nulls, distinct=distinct, counts=counts)


def drift(
    rows: pd.DataFrame,
    windows: list[pd.Timestamp],
    baselines: Mapping[BaselineKey, Baseline],
    numeric: list[str],
    categorical: list[str],
    step: pd.Timedelta,
    cuts: list[Slice] | None = None,
    min_count: int = 5,
    smoothing: float = SMOOTHING,
    max_categories: int = 20,
) -> pd.DataFrame:
    """Flat drift rows for `windows`; `rows` (with `window_start`) must also hold each one's previous window."""
    records: list[dict[str, Any]] = []
    columns = [*numeric, *categorical]
    data = analysis_frame(rows[["window_start", "model_id", *columns]])
    single = window_models(data)
    targets = set(windows)
    for g in groups(data, cuts or []):
        split = _Windows(g.rows)
        for w in sorted(targets & set(split.index)):
            model = g.model_id if g.model_id != ALL_MODELS else single.get(w)
            base = baselines.get((str(model), g.slice_key, g.slice_value)) if model is not None else None
            for col in columns:
                is_num = col in numeric
                has_base = base is not None and col in base.refs
                cats = base.categories.get(col) if has_base and base is not None else None
                edges = base.edges.get(col) if has_base and base is not None else None
                if not is_num and cats is None:  # no baseline: the previous window's top values
                    prev_raw = split.reference(col, w - step, False, None)
                    cats = top_categories(prev_raw.counts, max_categories) if prev_raw is not None else []
                cur = split.reference(col, w, is_num, cats)
                if cur is None:
                    continue
                key = {
                    "window.start": w,
                    "model_id": g.model_id,
                    "slice_key": g.slice_key,
                    "slice_value": g.slice_value,
                    "column_name": col,
                    "data_type": "double" if is_num else "string",
                }
                prev = split.reference(col, w - step, is_num, cats)
                if prev is not None:
                    stats = compare(cur, prev, is_num, edges, cats, min_count, smoothing)
                    records.append(
                        {
                            **key,
                            **stats,
                            "drift_type": "CONSECUTIVE",
                            "window_cmp.start": w - step,
                            "window_cmp.end": w,
                        }
                    )
                if has_base and base is not None:
                    stats = compare(cur, base.refs[col], is_num, edges, cats, min_count, smoothing)
                    records.append(
                        {**key, **stats, "drift_type": "BASELINE", "marvel_baseline": base.source[col]}
                    )
    if not records:
        return pd.DataFrame(columns=["window.start", "model_id", "column_name", "drift_type"])
    out = pd.DataFrame.from_records(records)
    out["window.end"] = out["window.start"] + step
    return out


def analysis_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """Monitoring rows as analysed: the 1/0 label becomes "alive"/"dead", comparable with `prediction`."""
    out = rows.copy()
    if "label" not in rows.columns or rows["label"].dtype == object:
        return out
    out["label"] = words(rows["label"].to_numpy())
    return out


def bucketed(counts: pd.Series, categories: list[str]) -> pd.Series:
    """Counts regrouped onto the baseline's buckets (for plots)."""
    return bucket_counts(counts, categories)


__all__ = ["MISSING", "OTHER", "Baseline", "Reference", "analysis_frame", "build_baseline", "drift"]
