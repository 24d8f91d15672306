"""pandera contracts of the monitoring tables.

Names follow Databricks Lakehouse Monitoring's metric tables where they exist (`column_name`, `granularity`,
`model_id`, `drift_type`, `count`, `num_nulls`, `avg`, `stddev`, `ks_test`, `js_distance`, ...). Two local
simplifications, so the tables stay flat Delta/pandas columns: the `window` struct is `window_start` /
`window_end`, and struct metrics are flattened (`ks_test.statistic` -> `ks_test_statistic`). Lists
(`quantiles`, `frequent_items`) are JSON strings.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

# The names Lakehouse Monitoring uses for "the whole table" rows and "all models" rows.
TABLE_COLUMN = ":table"
ALL_MODELS = ":all"
DRIFT_TYPES = ["CONSECUTIVE", "BASELINE"]


class ModelMonitoring(pa.DataFrameModel):
    """`model_monitoring`: one row per scored record (a request with 100 records gives 100 rows)."""

    timestamp: Series[pd.Timestamp]  # UTC, naive: the request's time
    databricks_request_id: Series[str]
    record_index: Series[int] = pa.Field(ge=0)  # position of the record in its request
    Id: Series[str] = pa.Field(nullable=True)
    Name: Series[str] = pa.Field(nullable=True)
    Universe: Series[str] = pa.Field(nullable=True)
    Identity: Series[str] = pa.Field(nullable=True)
    Gender: Series[str] = pa.Field(nullable=True)
    Marital_Status: Series[str] = pa.Field(nullable=True)
    Teams: Series[str] = pa.Field(nullable=True)
    Height: Series[float] = pa.Field(nullable=True)
    Weight: Series[float] = pa.Field(nullable=True)
    Origin: Series[str] = pa.Field(nullable=True)
    Creators: Series[str] = pa.Field(nullable=True)
    prediction: Series[str] = pa.Field(isin=["alive", "dead"])
    probability: Series[float] = pa.Field(ge=0, le=1, nullable=True)  # P(alive), when the caller asked for it
    model_name: Series[str] = pa.Field(nullable=True)
    model_version: Series[str] = pa.Field(nullable=True)
    variant: Series[str] = pa.Field(nullable=True)
    model_id: Series[str]  # "<name>/<version>", the grouping key of the metric tables
    label: Series[float] = pa.Field(isin=[0.0, 1.0], nullable=True)  # 1 = alive; NaN until the label arrives

    class Config:
        strict = True
        coerce = True


class _Window(pa.DataFrameModel):
    window_start: Series[pd.Timestamp]
    window_end: Series[pd.Timestamp]
    granularity: Series[str]
    model_id: Series[str]
    column_name: Series[str]
    data_type: Series[str] = pa.Field(isin=["numeric", "categorical", "table"])


class ProfileMetrics(_Window):
    """`model_monitoring_profile_metrics`: per window, model and column; quality on the `:table` rows."""

    count: Series[int] = pa.Field(ge=0)
    num_nulls: Series[int] = pa.Field(ge=0)
    percent_null: Series[float] = pa.Field(ge=0, le=100, nullable=True)
    avg: Series[float] = pa.Field(nullable=True)
    stddev: Series[float] = pa.Field(nullable=True)
    min: Series[float] = pa.Field(nullable=True)
    max: Series[float] = pa.Field(nullable=True)
    median: Series[float] = pa.Field(nullable=True)
    quantiles: Series[str] = pa.Field(nullable=True)  # JSON list at QUANTILES
    distinct_count: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    frequent_items: Series[str] = pa.Field(nullable=True)  # JSON [{"item": .., "count": ..}]
    # model quality (":table" rows only); NaN where there are no labels
    labelled_count: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    prediction_rate: Series[float] = pa.Field(ge=0, le=1, nullable=True)  # share predicted alive
    label_rate: Series[float] = pa.Field(ge=0, le=1, nullable=True)  # share labelled alive
    accuracy_score: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    precision: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    recall: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    f1_score: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    roc_auc: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    log_loss: Series[float] = pa.Field(ge=0, nullable=True)
    # confidence-based performance estimation: no labels needed
    estimated_accuracy_score: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    estimated_f1_score: Series[float] = pa.Field(ge=0, le=1, nullable=True)

    class Config:
        strict = True
        coerce = True


class DriftMetrics(_Window):
    """`model_monitoring_drift_metrics`: a window against the previous window or the baseline (`train_set`)."""

    drift_type: Series[str] = pa.Field(isin=DRIFT_TYPES)
    window_cmp_start: Series[pd.Timestamp] = pa.Field(nullable=True)  # null for BASELINE
    baseline_version: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    count: Series[int] = pa.Field(ge=0)
    count_cmp: Series[int] = pa.Field(ge=0)
    count_delta: Series[float]
    avg_delta: Series[float] = pa.Field(nullable=True)
    percent_null_delta: Series[float] = pa.Field(nullable=True)
    ks_test_statistic: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    ks_test_pvalue: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    chi_squared_test_statistic: Series[float] = pa.Field(ge=0, nullable=True)
    chi_squared_test_pvalue: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    population_stability_index: Series[float] = pa.Field(ge=0, nullable=True)
    js_distance: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    tv_distance: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    l_infinity_distance: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    wasserstein_distance: Series[float] = pa.Field(ge=0, nullable=True)

    class Config:
        strict = True
        coerce = True


class MonitorState(pa.DataFrameModel):
    """`model_monitoring_state`: one row per refresh that changed something (the incremental bookkeeping)."""

    refreshed_at: Series[pd.Timestamp]
    payload_version: Series[int]
    labels_version: Series[int]  # -1: no labels table yet
    baseline_version: Series[int]  # -1: no baseline
    config_hash: Series[str]
    rows_added: Series[int] = pa.Field(ge=0)
    windows_refreshed: Series[int] = pa.Field(ge=0)

    class Config:
        strict = True
        coerce = True
