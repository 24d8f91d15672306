"""`monitor=databricks`: the monitoring table from the endpoint's inference table, and a Lakehouse monitor on it.

1. The inference table the AI gateway writes (``<catalog>.<schema>.custom_model_payload``) is turned into
   ``model_monitoring`` (one row per scored record) with `marvel.monitoring.parse.payload_to_monitoring`, the
   very function the local monitor uses, applied per Arrow batch with ``mapInPandas``. The gateway's columns
   are first renamed to the `InferenceLog` contract (`gateway_to_inference_log`).
2. Labels (``labels`` table, by Id) are joined in and written in the prediction's vocabulary ("alive"/"dead"):
   Lakehouse Monitoring needs the label and prediction columns to have the same type.
3. The quality monitor (inference-log profile, classification) is created when missing, else refreshed.
   Drift metrics and dashboards are then Databricks' own; alerts are set up there, so this returns none.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound
from databricks.sdk.service.catalog import MonitorInferenceLog, MonitorInferenceLogProblemType
from pyspark.sql import Window
from pyspark.sql import functions as F

from marvel.core.errors import MarvelError
from marvel.core.labels import ALIVE, DEAD
from marvel.monitoring.parse import payload_to_monitoring
from marvel.spark.compute import ddl, plain
from marvel.spark.store import SparkTableStore

log = logging.getLogger(__name__)


def gateway_to_inference_log(
    payload: pd.DataFrame, entities: Mapping[str, Mapping[str, str]]
) -> pd.DataFrame:
    """Rows of a Databricks inference table -> the `InferenceLog` columns `payload_to_monitoring` reads.

    Handles the AI gateway table (``request_time``, ``served_entity_id``) and the legacy auto-capture table
    (``timestamp_ms``, ``request_metadata``); rows already in the `InferenceLog` shape pass through.
    `entities` maps a served entity id or name to ``{"name", "version", "variant"}``.
    """
    out = pd.DataFrame(index=payload.index)
    out["databricks_request_id"] = payload["databricks_request_id"].astype(str)
    if "timestamp_ms" in payload:
        out["timestamp_ms"] = payload["timestamp_ms"].astype("int64")
    else:
        ts = pd.to_datetime(payload["request_time"], utc=True).dt.tz_localize(None)
        out["timestamp_ms"] = (ts.astype("datetime64[ns]").astype("int64") // 1_000_000).astype("int64")
    out["status_code"] = payload["status_code"].astype("int64")
    out["request"] = payload["request"].astype(object)
    out["response"] = payload["response"].astype(object)
    if "served_model_name" in payload:
        out["served_model_name"] = payload["served_model_name"]
        out["served_model_version"] = payload["served_model_version"]
        out["variant"] = payload.get("variant", None)
        return out
    versions = pd.Series(None, index=payload.index, dtype=object)
    if "served_entity_id" in payload:
        keys = payload["served_entity_id"].astype(object)
    elif "request_metadata" in payload:  # legacy auto-capture: a map with model_name / model_version
        meta = payload["request_metadata"].map(lambda m: dict(m) if m is not None else {})
        keys = meta.map(lambda m: m.get("served_entity_name") or m.get("model_name"))
        versions = meta.map(lambda m: m.get("model_version"))
    else:
        keys = pd.Series(None, index=payload.index, dtype=object)
    found = keys.map(lambda k: entities.get(str(k), {}) if k is not None else {})
    known = found.map(bool)
    out["served_model_name"] = found.map(lambda e: e.get("name")).where(known, keys)
    out["served_model_version"] = found.map(lambda e: e.get("version")).where(known, versions)
    out["variant"] = found.map(lambda e: e.get("variant"))
    return out


def monitoring_rows(payload: pd.DataFrame, entities: Mapping[str, Mapping[str, str]]) -> pd.DataFrame:
    """One batch of the inference table -> monitoring rows (the local monitor's parsing, unchanged)."""
    return payload_to_monitoring(gateway_to_inference_log(payload, entities))


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
    def entities(self, client: Any) -> dict[str, dict[str, str]]:
        """Served entity name -> model, version and variant (the endpoint's current config)."""
        if not self.endpoint_name:
            return {}
        try:
            endpoint = client.serving_endpoints.get(self.endpoint_name)
        except Exception as exc:  # a deleted endpoint must not stop monitoring of what it logged
            log.warning(
                "cannot read endpoint %s (%s); model ids from the table only", self.endpoint_name, exc
            )
            return {}
        served = (endpoint.config.served_entities if endpoint.config else None) or []
        return {
            str(e.name): {
                "name": str(e.entity_name),
                "version": str(e.entity_version),
                "variant": str(e.name),
            }
            for e in served
        }

    def build_monitoring(self, store: SparkTableStore, entities: Mapping[str, Mapping[str, str]]) -> Any:
        """The monitoring table as a Spark DataFrame (inference table parsed per batch, labels joined)."""
        payload = store.frame(self.inference_table)
        sample = monitoring_rows(payload.limit(20).toPandas(), entities)
        schema = ddl(sample.astype({self.label_col: "object"}))
        ents = {k: dict(v) for k, v in entities.items()}

        def parse(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                rows = plain(monitoring_rows(batch, ents))
                rows[self.label_col] = None  # joined below
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
    def inference_log(self) -> Any:
        return MonitorInferenceLog(
            problem_type=MonitorInferenceLogProblemType(self.problem_type),
            prediction_col=self.prediction_col,
            timestamp_col=self.timestamp_col,
            model_id_col=self.model_id_col,
            label_col=self.label_col,
            granularities=self.granularities,
        )

    def create_or_refresh(self, client: Any) -> dict[str, Any]:
        table = self.full(self.monitoring_table)
        qm = client.quality_monitors
        try:
            qm.get(table)
        except NotFound:
            log.info("creating the Lakehouse monitor on %s", table)
            info = qm.create(
                table_name=table,
                assets_dir=self.assets_dir,
                output_schema_name=f"{self.catalog}.{self.schema}",
                inference_log=self.inference_log(),
                baseline_table_name=self.full(self.baseline_table) if self.baseline_table else None,
                slicing_exprs=self.slicing_exprs or None,
            )
            # creating a monitor computes its first metrics itself
            return {"action": "created", "status": getattr(info.status, "value", str(info.status))}
        refresh = qm.run_refresh(table_name=table)
        return {
            "action": "refreshed",
            "refresh_id": refresh.refresh_id,
            "status": getattr(refresh.state, "value", ""),
        }

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
        rows = self.build_monitoring(store, self.entities(w))
        before = store.version(self.monitoring_table)
        version = store.write(self.monitoring_table, rows, mode="overwrite")
        n = int(store.frame(self.monitoring_table).count())
        result = self.create_or_refresh(w)
        table = self.full(self.monitoring_table)
        return {
            "alerts": [],  # drift alerts live in Databricks (SQL alerts on the metric tables)
            "summary": f"{table} v{version} ({n} records, was v{before}); Lakehouse monitor {result['action']}",
            "rows_added": n,
            "windows_refreshed": 0,
            "tables": [table, f"{table}_profile_metrics", f"{table}_drift_metrics"],
            "monitor": result,
            "dashboard": f"{w.config.host.rstrip('/')}/sql/dashboards (assets in {self.assets_dir})",
        }
