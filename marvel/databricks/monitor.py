"""`monitor=databricks`: the monitoring table from the endpoint's inference table, and a Lakehouse monitor on it.

1. The inference table the AI gateway writes (``<catalog>.<schema>.custom_model_payload``) is turned into
   ``model_monitoring`` (one row per scored record) with `marvel.monitoring.parse.payload_to_monitoring`, the
   very function the local monitor uses, applied per Arrow batch with ``mapInPandas``. The gateway's columns
   are first renamed to the `InferenceLog` contract (`marvel.databricks.gateway`).
2. Labels (``labels`` table, by Id) are joined in and written in the prediction's vocabulary ("alive"/"dead"):
   Lakehouse Monitoring needs the label and prediction columns to have the same type.
3. The data quality monitor (inference-log profile, classification) is created when missing, updated when
   its settings changed, else refreshed (`marvel.databricks.lakehouse`: the ``data_quality`` API).
   Drift metrics and dashboards are then Databricks' own; alerts are set up there, so this returns none.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
from databricks.sdk import WorkspaceClient
from pyspark.sql import Window
from pyspark.sql import functions as F

from marvel.core.errors import MarvelError
from marvel.core.labels import ALIVE, DEAD
from marvel.databricks.gateway import monitoring_rows
from marvel.databricks.lakehouse import LakehouseMonitor
from marvel.spark.compute import ddl, plain
from marvel.spark.store import SparkTableStore

log = logging.getLogger(__name__)


class DatabricksMonitor:
    """Refresh ``model_monitoring`` and its Lakehouse monitor (``WorkspaceClient.quality_monitors``)."""

    def __init__(
        self,
        catalog: str,
        schema: str,
        inference_table: str = "custom_model_payload",
        monitoring_table: str = "model_monitoring",
        labels_table: str = "labels",
        endpoint_name: str | None = None,
        granularities: Sequence[str] = ("30 minutes",),
        problem_type: str = "PROBLEM_TYPE_CLASSIFICATION",
        prediction_col: str = "prediction",
        timestamp_col: str = "timestamp",
        model_id_col: str = "model_id",
        label_col: str = "label",
        assets_dir: str | None = None,
        baseline_table: str | None = None,
        slicing_exprs: Sequence[str] = (),
    ) -> None:
        self.catalog, self.schema = catalog, schema
        self.inference_table = inference_table
        self.monitoring_table = monitoring_table
        self.labels_table = labels_table
        self.endpoint_name = endpoint_name
        self.granularities = [str(g) for g in granularities]
        self.problem_type = problem_type
        self.prediction_col, self.timestamp_col = prediction_col, timestamp_col
        self.model_id_col, self.label_col = model_id_col, label_col
        self.assets_dir = assets_dir or f"/Workspace/Shared/lakehouse_monitoring/{monitoring_table}"
        self.baseline_table = baseline_table
        self.slicing_exprs = list(slicing_exprs)

    def full(self, table: str) -> str:
        return f"{self.catalog}.{self.schema}.{table}"

    # -- the monitoring table -----------------------------------------------------------------------------
    def build_monitoring(self, store: SparkTableStore) -> Any:
        """The monitoring table as a Spark DataFrame (inference table parsed per batch, labels joined)."""
        payload = store.frame(self.inference_table)
        sample = monitoring_rows(payload.limit(20).toPandas())
        schema = ddl(sample.astype({self.label_col: "object"}))

        # what `parse` refers to is pickled to the executors: the label's name, not `self` (its class's module
        # imports the Databricks SDK, which every Python worker would then import, ~2 s each)
        label_col = self.label_col

        def parse(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                rows = plain(monitoring_rows(batch))
                rows[label_col] = None  # joined below
                yield rows

        rows = payload.mapInPandas(parse, schema).drop(self.label_col)
        if store.exists(self.labels_table):
            latest = Window.partitionBy("Id").orderBy(F.col("labelled_at").desc())
            labels = (
                store.frame(self.labels_table)
                .withColumn("_n", F.row_number().over(latest))
                .filter("_n = 1")
                .select("Id", F.when(F.col("label") == 1, ALIVE).otherwise(DEAD).alias(self.label_col))
            )
            rows = rows.join(labels, "Id", "left")
        else:
            rows = rows.withColumn(self.label_col, F.lit(None).cast("string"))
        return rows

    # -- the Lakehouse monitor ------------------------------------------------------------------------------
    def lakehouse(self) -> LakehouseMonitor:
        return LakehouseMonitor(
            table=self.full(self.monitoring_table),
            output_schema=f"{self.catalog}.{self.schema}",
            assets_dir=self.assets_dir,
            problem_type=self.problem_type,
            prediction_col=self.prediction_col,
            timestamp_col=self.timestamp_col,
            model_id_col=self.model_id_col,
            label_col=self.label_col,
            granularities=self.granularities,
            baseline_table=self.full(self.baseline_table) if self.baseline_table else None,
            slicing_exprs=self.slicing_exprs,
        )

    def create_or_refresh(self, client: Any) -> dict[str, Any]:
        return self.lakehouse().create_or_refresh(client)

    def refresh(self, ctx: Any, client: Any | None = None) -> dict[str, Any]:
        store = ctx.store
        if not isinstance(store, SparkTableStore):
            raise MarvelError("monitor=databricks needs the Spark table store: run it with +env=dev|acc|prd")
        w = client or WorkspaceClient()
        if not store.exists(self.inference_table):
            return {
                "alerts": [],
                "summary": f"nothing to monitor: {self.full(self.inference_table)} does not exist yet "
                "(deploy with deploy=databricks and send requests)",
                "rows_added": 0,
            }
        rows = self.build_monitoring(store)
        before = store.version(self.monitoring_table)
        version = store.write(self.monitoring_table, rows, mode="overwrite")
        n = int(store.frame(self.monitoring_table).count())
        result = self.create_or_refresh(w)
        table = self.full(self.monitoring_table)
        return {
            "alerts": [],  # drift alerts live in Databricks (SQL alerts on the metric tables)
            "summary": f"{table} v{version} ({n} records, was v{before}); Lakehouse monitor {result['action']} "
            f"({result['api']} API)",
            "rows_added": n,
            "windows_refreshed": 0,
            "tables": [table, f"{table}_profile_metrics", f"{table}_drift_metrics"],
            "monitor": result,
            "dashboard": f"{w.config.host.rstrip('/')}/sql/dashboards (assets in {self.assets_dir})",
        }
