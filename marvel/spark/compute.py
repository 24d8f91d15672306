"""`SparkCompute`: the stages' row-wise work on Spark, by running marvel's pandas code per partition.

- load: a partition-aware source (`SyntheticSource.generate(n, seed, partition)`) generates its partitions in
  parallel on the executors; any other source is loaded on the driver and distributed.
- validate: the pandas pandera models are applied per Arrow batch with ``mapInPandas`` (the same
  `split_valid` that quarantines locally), plus one global check the batches cannot make alone (PageID
  uniqueness across batches). Why not ``pandera.pyspark``: it needs a second copy of every schema in Spark
  types, supports only a subset of checks, and reports errors per column, not per row, so it could not
  quarantine rows with their reason. One definition of each table, one implementation of the checks.
- transform: a fitted processor (sklearn transformer) applied per batch, same code as ``processor.transform``.
- score: batch scoring of a registered model with ``mlflow.pyfunc.spark_udf``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import functions as F

from marvel.core.labels import labels
from marvel.core.quarantine import validate_rows
from marvel.core.schemas import (
    INPUT_COLUMNS,
    RAW_COLUMNS,
    RAW_NUMERIC,
    TARGET,
    Quarantine,
)
from marvel.core.sources import DataSource, PartitionedSource
from marvel.spark.session import get_spark

# Columns the validation batches add to carry quarantine rows beside valid ones in one result.
_Q = ["_q_row", "_q_table", "_q_reason", "_q_record"]
# A row's place: monotonically_increasing_id() is (partition << 33) + position in the partition.
_MID = "_q_mid"
_POSITION_BITS = 33


def spark_type(dtype: Any) -> str:
    """A Spark DDL type for a pandas dtype (categories travel as strings)."""
    kind = str(dtype)
    if kind in ("int64", "int32", "Int64"):
        return "bigint"
    if kind.startswith("float"):
        return "double"
    if kind == "bool":
        return "boolean"
    if kind.startswith("datetime64"):
        return "timestamp"
    return "string"


def ddl(frame: pd.DataFrame) -> str:
    return ", ".join(f"`{c}` {spark_type(t)}" for c, t in frame.dtypes.items())


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as plain strings, so Arrow sends them as Spark strings."""
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out


RAW_DDL = ", ".join(f"`{c}` {'double' if c in RAW_NUMERIC else 'string'}" for c in RAW_COLUMNS)
SPLIT_COLUMNS = [*INPUT_COLUMNS, TARGET]
SPLIT_DDL = ", ".join(
    f"`{c}` {'double' if c in ('Height', 'Weight') else 'bigint' if c == TARGET else 'string'}"
    for c in SPLIT_COLUMNS
)


def validate_batch(
    batch: pd.DataFrame, rows_at: np.ndarray, run_id: str, duplicated_ids: frozenset[str]
) -> pd.DataFrame:
    """One batch of raw rows -> valid split rows and quarantine rows, in one frame (`_q_*` set on the latter):
    `validate_rows` itself, with each row's global index (`rows_at`) and the cross-batch uniqueness verdict."""
    rows, quarantined = validate_rows(batch, run_id, duplicated_ids=duplicated_ids)
    valid_out = rows[SPLIT_COLUMNS].reset_index(drop=True).assign(**{c: None for c in _Q})
    q_out = pd.DataFrame({c: [None] * len(quarantined) for c in SPLIT_COLUMNS}).assign(
        _q_row=rows_at[quarantined["row_index"].to_numpy(dtype="int64")],
        _q_table=quarantined["table"].to_numpy(),
        _q_reason=quarantined["reason"].to_numpy(),
        _q_record=quarantined["record"].to_numpy(),
    )
    out = pd.concat([valid_out, q_out], ignore_index=True)
    out[TARGET] = out[TARGET].astype("Int64")
    out["_q_row"] = out["_q_row"].astype("Int64")
    return out


class SparkCompute:
    """Stages' work on Spark; ``rows_per_partition`` fixes how a generated source is split, so the generated
    rows depend on the config, never on the cluster's size."""

    name = "spark"

    def __init__(self, spark: Mapping[str, Any] | None = None, rows_per_partition: int = 100_000) -> None:
        self.spark_settings = dict(spark or {})
        self.rows_per_partition = int(rows_per_partition)

    @property
    def spark(self) -> Any:
        return get_spark(self.spark_settings)

    # -- load -----------------------------------------------------------------------------------------
    def load(self, source: DataSource) -> Any:
        if isinstance(source, PartitionedSource):
            frame = self.generate(source, source.n_rows, source.seed)
        else:
            frame = self.spark.createDataFrame(source.load())
        # Not persisted (serverless refuses persist/cache): every action recomputes the frame, which is
        # deterministic (seeded partitions, or the driver's rows), so it is the same rows each time.
        return frame

    def generate(self, source: PartitionedSource, n_rows: int, seed: int) -> Any:
        """`n_rows` rows of a partition-aware source, one generator partition per Spark partition."""
        parts = max(1, math.ceil(n_rows / self.rows_per_partition))
        size = self.rows_per_partition

        def gen(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                for part in batch["id"].tolist():
                    n = min(size, n_rows - part * size)
                    yield source.generate(n, seed, partition=int(part))

        # range(parts, numPartitions=parts) puts partition i's id in Spark partition i, so rows keep order
        return self.spark.range(parts, numPartitions=parts).mapInPandas(gen, RAW_DDL)

    def count(self, frame: Any) -> int:
        return int(frame.count())

    # -- validate -------------------------------------------------------------------------------------
    def validate(self, raw: Any, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(valid train/test rows, quarantined rows) as pandas, as `PandasCompute.validate` returns them.

        The valid rows are collected because the model trains on the driver (LightGBM's sklearn API) and the
        split must be the same stratified, seeded split as locally.
        """
        dup_rows = (
            raw.filter(F.col("PageID").isNotNull())
            .groupBy("PageID")
            .count()
            .filter(F.col("count") > 1)
            .select("PageID")
            .collect()
        )
        duplicated = frozenset(str(r["PageID"]) for r in dup_rows)
        # global row numbers without the RDD API: each partition's offset, from the partition number that
        # monotonically_increasing_id() carries in its high bits
        indexed = raw.withColumn(_MID, F.monotonically_increasing_id())
        part = F.shiftright(F.col(_MID), _POSITION_BITS)
        counts = {
            int(r["p"]): int(r["n"])
            for r in indexed.groupBy(part.alias("p")).agg(F.count("*").alias("n")).collect()
        }
        offsets, total = {}, 0
        for i in sorted(counts):
            offsets[i], total = total, total + counts[i]
        mask = (1 << _POSITION_BITS) - 1

        def check(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                if len(batch):
                    mid = batch.pop(_MID).to_numpy(dtype="int64")
                    rows_at = np.array([offsets[int(p)] for p in mid >> _POSITION_BITS]) + (mid & mask)
                    yield validate_batch(batch, rows_at, run_id, duplicated)

        schema = SPLIT_DDL + ", _q_row bigint, _q_table string, _q_reason string, _q_record string"
        out = indexed.mapInPandas(check, schema).toPandas()
        is_q = out["_q_row"].notna()
        rows = out.loc[~is_q, SPLIT_COLUMNS].reset_index(drop=True)
        rows[TARGET] = rows[TARGET].astype("int64")
        q = out.loc[is_q].sort_values("_q_row")
        quarantined = pd.DataFrame(
            {
                "run_id": run_id,
                "stage": "process",
                "table": q["_q_table"].to_numpy(),
                "row_index": q["_q_row"].astype("int64").to_numpy(),
                "reason": q["_q_reason"].to_numpy(),
                "record": q["_q_record"].to_numpy(),
                "quarantined_at": pd.Timestamp.now(tz="UTC").tz_localize(None),
            },
            columns=list(Quarantine.to_schema().columns),
        )
        return rows, Quarantine.validate(quarantined)

    # -- features and scoring -------------------------------------------------------------------------
    def transform(self, processor: Any, frame: Any) -> Any:
        """``processor.transform`` per batch; the output schema comes from transforming a few rows."""
        sample = plain(processor.transform(frame.limit(5).toPandas()))

        def apply(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                yield plain(processor.transform(batch))

        return frame.mapInPandas(apply, ddl(sample))

    def score(
        self, model_uri: str, frame: Any, column: str = "prediction", result_type: str = "double"
    ) -> Any:
        """Add `column` with the model's output for every row (``mlflow.pyfunc.spark_udf``, this env's
        Python: nothing is installed on the executors)."""
        # imported here: executors import this module to run the batch functions above, and only the driver
        # needs MLflow (~2 s of imports in every Python worker otherwise)
        import mlflow.pyfunc

        udf = mlflow.pyfunc.spark_udf(self.spark, model_uri, result_type=result_type, env_manager="local")
        inputs = [c for c in INPUT_COLUMNS if c in frame.columns]
        return frame.withColumn(column, udf(F.struct(*[F.col(c) for c in inputs])))

    def read(self, store: Any, name: str, version: int | None = None) -> Any:
        """A table as a Spark DataFrame (the store's own frame), so scoring never collects it."""
        return store.frame(name, version)

    def predictions(self, model_uri: str, frame: Any, threshold: float, constants: Mapping[str, Any]) -> Any:
        """As `PandasCompute.predictions`, on the executors through ``spark_udf``."""
        scored = self.score(model_uri, frame, column="_proba", result_type="array<double>")
        proba = F.col("_proba").getItem(1)
        out = scored.select(
            F.col("Id").cast("string").alias("Id"),
            proba.alias("probability_alive"),
        )

        def label(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                yield batch.assign(prediction=labels(batch["probability_alive"].to_numpy(), threshold))

        out = out.mapInPandas(label, "Id string, probability_alive double, prediction string")
        for key, value in constants.items():
            out = out.withColumn(key, F.lit(value))
        return out

    def rename(self, frame: Any, columns: Mapping[str, str]) -> Any:
        for old, new in columns.items():
            frame = frame.withColumnRenamed(old, new)  # a no-op where `old` is absent
        return frame

    def head(self, frame: Any, n: int) -> pd.DataFrame:
        return frame.limit(n).toPandas()
