"""pandera contracts of the monitoring tables, in Databricks Lakehouse Monitoring's names and shapes.

The profile and drift metric tables carry the columns and types of Lakehouse Monitoring's metric tables
(`window` and `window_cmp` structs, `log_type`, `slice_key`/`slice_value`, `ks_test` and `chi_squared_test`
structs, `frequent_items` as an array of structs, ...), so SQL written against a Databricks monitor's tables
runs on ours. Nested columns are pyarrow types (``pd.ArrowDtype``); the monitor computes on flat frames whose
columns are the dotted paths (``window.start``, ``ks_test.pvalue``) and `nest` / `flat` convert. Columns of
our own start with ``marvel_`` so they cannot collide with one Databricks adds later.
`tests/data/lakehouse_metric_columns.yaml` lists the documented columns; a test holds these models to it.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pyarrow
from pandera.typing import Series

# The names Lakehouse Monitoring uses for "the whole table" rows and "all models" rows.
TABLE_COLUMN = ":table"
ALL_MODELS = ":all"
DRIFT_TYPES = ["CONSECUTIVE", "BASELINE"]
LOG_TYPES = ["INPUT", "BASELINE"]
OURS = "marvel_"  # prefix of every column Lakehouse Monitoring does not have

WINDOW = pyarrow.struct([("start", pyarrow.timestamp("us")), ("end", pyarrow.timestamp("us"))])
TEST = pyarrow.struct([("statistic", pyarrow.float64()), ("pvalue", pyarrow.float64())])
ITEMS = pyarrow.list_(pyarrow.struct([("item", pyarrow.string()), ("count", pyarrow.int64())]))
CONFUSION = pyarrow.list_(
    pyarrow.struct(
        [("prediction", pyarrow.string()), ("label", pyarrow.string()), ("count", pyarrow.int64())]
    )
)
# precision, recall, f1, rates: per class (one vs all), macro and weighted averages
AVERAGED = pyarrow.struct(
    [
        ("one_vs_all", pyarrow.map_(pyarrow.string(), pyarrow.float64())),
        ("macro", pyarrow.float64()),
        ("weighted", pyarrow.float64()),
    ]
)
DOUBLES = pyarrow.list_(pyarrow.float64())
STRINGS = pyarrow.list_(pyarrow.string())
NON_NULL_DELTA = pyarrow.struct([("added", pyarrow.int32()), ("missing", pyarrow.int32())])


def arrow(t: pyarrow.DataType, nullable: bool = True, **checks: Any) -> Any:
    """A pandera field of a pyarrow type (structs, lists, maps)."""
    return pa.Field(dtype_kwargs={"pyarrow_dtype": t}, nullable=nullable, **checks)


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


class _Keys(pa.DataFrameModel):
    """What identifies a metric row, as Lakehouse Monitoring names it."""

    window: Series[pd.ArrowDtype] = arrow(WINDOW, nullable=False)
    granularity: Series[str]
    monitor_version: Series[np.int64]  # marvel's metrics revision: rows of another revision are rebuilt
    slice_key: Series[str] = pa.Field(nullable=True)  # null: the whole table
    slice_value: Series[str] = pa.Field(nullable=True)
    column_name: Series[str]  # ":table" for table-level rows
    data_type: Series[str] = pa.Field(nullable=True)  # the column's Spark type ("double", "string")
    model_id: Series[str]  # ":all" or "<model name>/<version>"


class ProfileMetrics(_Keys):
    """`model_monitoring_profile_metrics`: per window, slice, model and column; model quality on `:table`."""

    log_type: Series[str] = pa.Field(isin=LOG_TYPES)
    logging_table_commit_version: Series[np.int32]  # the monitoring table's version the row was computed at
    count: Series[np.int64] = pa.Field(ge=0)
    num_nulls: Series[np.int64] = pa.Field(ge=0)
    avg: Series[float] = pa.Field(nullable=True)
    quantiles: Series[pd.ArrowDtype] = arrow(DOUBLES)  # at QUANTILES
    min: Series[float] = pa.Field(nullable=True)
    max: Series[float] = pa.Field(nullable=True)
    stddev: Series[float] = pa.Field(nullable=True)
    num_zeros: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    num_nan: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    min_length: Series[float] = pa.Field(nullable=True)
    max_length: Series[float] = pa.Field(nullable=True)
    avg_length: Series[float] = pa.Field(nullable=True)
    non_null_columns: Series[pd.ArrowDtype] = arrow(STRINGS)  # `:table` rows
    frequent_items: Series[pd.ArrowDtype] = arrow(ITEMS)
    median: Series[float] = pa.Field(nullable=True)
    distinct_count: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    percent_nan: Series[float] = pa.Field(ge=0, le=100, nullable=True)
    percent_null: Series[float] = pa.Field(ge=0, le=100, nullable=True)
    percent_zeros: Series[float] = pa.Field(ge=0, le=100, nullable=True)
    percent_distinct: Series[float] = pa.Field(ge=0, le=100, nullable=True)
    # model quality (`:table` rows of windows with labels)
    accuracy_score: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    confusion_matrix: Series[pd.ArrowDtype] = arrow(CONFUSION)
    precision: Series[pd.ArrowDtype] = arrow(AVERAGED)
    recall: Series[pd.ArrowDtype] = arrow(AVERAGED)
    f1_score: Series[pd.ArrowDtype] = arrow(AVERAGED)
    true_positive_rate: Series[pd.ArrowDtype] = arrow(AVERAGED)
    false_positive_rate: Series[pd.ArrowDtype] = arrow(AVERAGED)
    roc_auc_score: Series[pd.ArrowDtype] = arrow(AVERAGED)
    # ours: label counts, rates, log loss and CBPE (estimates without labels) on `:table` rows
    marvel_labelled_count: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    marvel_prediction_rate: Series[float] = pa.Field(ge=0, le=1, nullable=True)  # share predicted alive
    marvel_label_rate: Series[float] = pa.Field(ge=0, le=1, nullable=True)  # share labelled alive
    marvel_log_loss: Series[float] = pa.Field(ge=0, nullable=True)
    marvel_estimated_accuracy_score: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    marvel_estimated_f1_score: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    # the serving model's accuracy on its test rows, and how far CBPE's estimate is below it
    marvel_baseline_accuracy_score: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    marvel_estimated_accuracy_drop: Series[float] = pa.Field(nullable=True)

    class Config:
        strict = True
        coerce = True


class DriftMetrics(_Keys):
    """`model_monitoring_drift_metrics`: a window against the previous window or the serving model's baseline."""

    window_cmp: Series[pd.ArrowDtype] = arrow(WINDOW)  # null for BASELINE
    drift_type: Series[str] = pa.Field(isin=DRIFT_TYPES)
    count_delta: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    avg_delta: Series[float] = pa.Field(nullable=True)
    percent_null_delta: Series[float] = pa.Field(nullable=True)
    percent_zeros_delta: Series[float] = pa.Field(nullable=True)
    percent_distinct_delta: Series[float] = pa.Field(nullable=True)
    non_null_columns_delta: Series[pd.ArrowDtype] = arrow(NON_NULL_DELTA)
    js_distance: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    ks_test: Series[pd.ArrowDtype] = arrow(TEST)
    wasserstein_distance: Series[float] = pa.Field(ge=0, nullable=True)
    population_stability_index: Series[float] = pa.Field(ge=0, nullable=True)
    chi_squared_test: Series[pd.ArrowDtype] = arrow(TEST)
    tv_distance: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    l_infinity_distance: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    # ours: the sample sizes compared, which baseline, and why a test was not computed
    marvel_count: Series[np.int64] = pa.Field(ge=0)  # non-null values in the window (the test's n)
    marvel_count_cmp: Series[np.int64] = pa.Field(ge=0)  # ... in the window or baseline compared with
    marvel_baseline: Series[str] = pa.Field(nullable=True)  # e.g. "train_set@v0" (BASELINE rows)
    marvel_not_computed: Series[str] = pa.Field(nullable=True)  # e.g. "3 non-null values < min_count 5"

    class Config:
        strict = True
        coerce = True


class MonitorState(pa.DataFrameModel):
    """`model_monitoring_state`: the refresh log. A refresh appends a `planned` row pinning the table versions
    it reads, writes every table, then appends its `committed` row last: the progress marker."""

    refresh: Series[np.int64] = pa.Field(ge=1)
    status: Series[str] = pa.Field(isin=["planned", "committed"])
    planned_at: Series[pd.Timestamp]  # the refresh's clock (alerts' first/last seen)
    full: Series[bool]  # a rebuild of every table (first refresh, changed config, a table recreated)
    payload_from: Series[np.int64]  # inference table versions (from, to]; -1: from the start
    payload_to: Series[np.int64]
    labels_from: Series[np.int64]
    labels_to: Series[np.int64]  # -1: no labels table
    config_hash: Series[str]
    rules_hash: Series[str]
    rows_added: Series[np.int64] = pa.Field(ge=0)
    rows_quarantined: Series[np.int64] = pa.Field(ge=0)
    labels_applied: Series[np.int64] = pa.Field(ge=0)
    windows_refreshed: Series[np.int64] = pa.Field(ge=0)
    alerts_new: Series[np.int64] = pa.Field(ge=0)
    alerts_resolved: Series[np.int64] = pa.Field(ge=0)

    class Config:
        strict = True
        coerce = True


class Alerts(pa.DataFrameModel):
    """`model_monitoring_alerts`: each alert once, keyed by window, slice, model, column and rule."""

    window: Series[pd.ArrowDtype] = arrow(WINDOW, nullable=False)
    slice_key: Series[str] = pa.Field(nullable=True)
    slice_value: Series[str] = pa.Field(nullable=True)
    model_id: Series[str]
    column_name: Series[str]
    rule: Series[str]  # "drift:BASELINE" / "drift:CONSECUTIVE" / "quality"
    status: Series[str] = pa.Field(isin=["open", "resolved"])
    detail: Series[str]  # the conditions that fired, with the measured values (at the last evaluation)
    first_seen: Series[pd.Timestamp]
    last_seen: Series[pd.Timestamp]
    resolved_at: Series[pd.Timestamp] = pa.Field(nullable=True)
    first_refresh: Series[np.int64]  # the refresh that first opened it
    opened_refresh: Series[np.int64]  # the refresh that (re)opened it: "new" in that refresh
    resolved_refresh: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    last_refresh: Series[np.int64]  # the last refresh that evaluated its window

    class Config:
        strict = True
        coerce = True


class Baselines(pa.DataFrameModel):
    """`model_monitoring_baselines`: per model version and column, the reference a window is compared with.

    Built once from the exact table versions the model's training run read (features and labels from its
    `train_set` version, prediction and probability from the model's own answers on its `test_set` rows) and
    kept, so a later `process` run or a vacuumed table version never changes old windows' results.
    """

    model_id: Series[str]
    baseline_hash: Series[str]  # the monitor settings that shape a baseline (bins, categories, slices)
    slice_key: Series[str] = pa.Field(nullable=True)
    slice_value: Series[str] = pa.Field(nullable=True)
    column_name: Series[str]
    source: Series[str]  # e.g. "train_set@v0", "test_set@v0 predictions"
    count: Series[np.int64] = pa.Field(ge=0)
    num_nulls: Series[np.int64] = pa.Field(ge=0)
    num_zeros: Series[np.int64] = pa.Field(ge=0)
    distinct_count: Series[np.int64] = pa.Field(ge=0)
    values: Series[pd.ArrowDtype] = arrow(DOUBLES)  # numeric: the non-null values
    edges: Series[pd.ArrowDtype] = arrow(DOUBLES)  # numeric: inner bin edges
    categories: Series[pd.ArrowDtype] = arrow(STRINGS)  # categorical: the top values
    counts: Series[pd.ArrowDtype] = arrow(DOUBLES)  # categorical: counts of categories + (other) + (missing)
    accuracy_score: Series[float] = pa.Field(nullable=True)  # `:table`: the model's accuracy on its test rows
    created_at: Series[pd.Timestamp]

    class Config:
        strict = True
        coerce = True


# --------------------------------------------------------------------------------------------------------
def arrow_schema(model: type[pa.DataFrameModel]) -> pyarrow.Schema:
    """The Delta/Arrow schema of a table, from its pandera model."""
    fields = []
    for name, col in model.to_schema().columns.items():
        dtype = col.dtype.type
        if isinstance(dtype, pd.ArrowDtype):
            t = dtype.pyarrow_dtype
        elif str(col.dtype) in ("str", "object", "string"):
            t = pyarrow.string()
        elif str(col.dtype).startswith("datetime64"):
            t = pyarrow.timestamp("us")
        elif str(col.dtype) == "int32":
            t = pyarrow.int32()
        elif str(col.dtype).lower() == "int64":
            t = pyarrow.int64()
        elif str(col.dtype) == "bool":
            t = pyarrow.bool_()
        else:
            t = pyarrow.float64()
        fields.append(pyarrow.field(name, t))
    return pyarrow.schema(fields)


def spark_type(t: pyarrow.DataType) -> str:
    """An Arrow type as Spark SQL writes it (what Lakehouse Monitoring's reference and `data_type` use)."""
    if pyarrow.types.is_struct(t):
        return "struct<" + ", ".join(f"{f.name}: {spark_type(f.type)}" for f in t) + ">"
    if pyarrow.types.is_map(t):
        return f"map<{spark_type(t.key_type)}, {spark_type(t.item_type)}>"
    if pyarrow.types.is_list(t):
        return f"array<{spark_type(t.value_type)}>"
    simple = {
        pyarrow.int64(): "bigint",
        pyarrow.int32(): "int",
        pyarrow.float64(): "double",
        pyarrow.string(): "string",
        pyarrow.bool_(): "boolean",
    }
    if pyarrow.types.is_timestamp(t):
        return "timestamp"
    return simple.get(t, str(t))


def nest(flat: pd.DataFrame, model: type[pa.DataFrameModel]) -> pyarrow.Table:
    """A flat frame (struct fields as dotted columns, lists as Python lists) -> the table's Arrow shape.

    Missing columns are null; every value is checked by the pandera model on the way.
    """
    schema = arrow_schema(model)
    n = len(flat)
    arrays = []
    for field in schema:
        if pyarrow.types.is_struct(field.type):
            parts = [f"{field.name}.{sub.name}" for sub in field.type]
            if any(p in flat.columns for p in parts):
                children = [_array(flat, p, sub.type, n) for p, sub in zip(parts, field.type, strict=True)]
                present = np.zeros(n, dtype=bool)
                for p in parts:
                    if p in flat.columns:
                        present |= flat[p].notna().to_numpy()
                mask = pyarrow.array(~present)
                arrays.append(pyarrow.StructArray.from_arrays(children, fields=list(field.type), mask=mask))
            else:
                arrays.append(pyarrow.nulls(n, field.type))
        else:
            arrays.append(_array(flat, field.name, field.type, n))
    table = pyarrow.Table.from_arrays(arrays, schema=schema)
    # the contract's value checks (ranges, allowed values); nested types are already enforced by Arrow
    scalar, nested = _scalar_schema(model)
    scalar.validate(table.drop_columns(nested).to_pandas())
    return table


@functools.cache
def _scalar_schema(model: type[pa.DataFrameModel]) -> tuple[pa.DataFrameSchema, list[str]]:
    schema = model.to_schema()
    nested = [n for n, c in schema.columns.items() if isinstance(c.dtype.type, pd.ArrowDtype)]
    return schema.remove_columns(nested), nested


def _array(flat: pd.DataFrame, name: str, t: pyarrow.DataType, n: int) -> pyarrow.Array:
    if name not in flat.columns:
        return pyarrow.nulls(n, t)
    s = flat[name]
    if pyarrow.types.is_nested(t):
        return pyarrow.array([v if _present(v) else None for v in s], type=t)
    if pyarrow.types.is_timestamp(t):
        return pyarrow.array(pd.to_datetime(s).astype("datetime64[us]"), type=t, from_pandas=True)
    if pyarrow.types.is_string(t):
        return pyarrow.array(s.astype(object).where(s.notna(), None), type=t, from_pandas=True)
    return pyarrow.array(s, type=t, from_pandas=True)


def _present(v: Any) -> bool:
    if v is None:
        return False
    return not (isinstance(v, float) and np.isnan(v))


def to_pandas(table: pyarrow.Table) -> pd.DataFrame:
    """An Arrow table as pandas, nested columns as ``pd.ArrowDtype`` (what the pandera models describe)."""
    return table.to_pandas(
        types_mapper=lambda t: pd.ArrowDtype(t) if pyarrow.types.is_nested(t) else None,
        timestamp_as_object=False,
    )


def flat(table: pyarrow.Table) -> pd.DataFrame:
    """A metric table as a flat frame: struct fields become dotted columns (`window.start`, `ks_test.pvalue`);
    lists and maps stay Python objects. What the alert rules and the report read."""
    out = table.flatten().to_pandas()
    for c in out.columns:
        if str(out[c].dtype).startswith("datetime64") and str(out[c].dtype) != "datetime64[ns]":
            out[c] = out[c].astype("datetime64[ns]")
    return out


def empty_flat(model: type[pa.DataFrameModel]) -> pd.DataFrame:
    return flat(arrow_schema(model).empty_table())


def flat_columns(model: type[pa.DataFrameModel]) -> list[str]:
    """The table's columns as `flat` names them (struct fields dotted)."""
    return list(empty_flat(model).columns)
