"""The Lakehouse (data quality) monitor on the monitoring table, through the SDK's ``data_quality`` API.

``WorkspaceClient.data_quality`` replaces ``quality_monitors`` (which the SDK marks deprecated). It names the
table and the output schema by their Unity Catalog ids, so both are looked up first. The monitor is created
when missing (creating it computes the first metrics), updated when its inference-log settings differ from
the config, else refreshed. Only when the workspace answers that ``data_quality`` is unavailable (the API is
not there, or the feature is off) does this fall back to ``quality_monitors``; the result says which API ran.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound
from databricks.sdk.errors import NotImplemented as ApiNotImplemented
from databricks.sdk.service.catalog import MonitorInferenceLog, MonitorInferenceLogProblemType
from databricks.sdk.service.dataquality import (
    AggregationGranularity,
    DataProfilingConfig,
    InferenceLogConfig,
    InferenceProblemType,
    Monitor,
    Refresh,
)

from marvel.core.errors import MarvelError

log = logging.getLogger(__name__)

TABLE = "table"
# error codes with which a workspace says the data_quality API is not there for it
UNAVAILABLE_CODES = frozenset({"ENDPOINT_NOT_FOUND", "FEATURE_DISABLED", "NOT_IMPLEMENTED"})


def granularity(text: str) -> AggregationGranularity:
    """ "30 minutes" / "1 day" / "2 weeks" (quality_monitors' spelling) -> the data_quality enum."""
    amount, _, unit = str(text).strip().lower().partition(" ")
    unit = unit.strip().rstrip("s").upper()
    try:
        count = int(amount)
        return AggregationGranularity(f"AGGREGATION_GRANULARITY_{count}_{unit}{'' if count == 1 else 'S'}")
    except ValueError:
        options = [g.value.removeprefix("AGGREGATION_GRANULARITY_").lower() for g in AggregationGranularity]
        raise MarvelError(
            f"monitor granularity {text!r} is not one Databricks offers: use one of {', '.join(sorted(options))}"
        ) from None


def unavailable(exc: DatabricksError) -> bool:
    """The workspace answers that the data_quality API is not available to it (not: a monitor is missing)."""
    if isinstance(exc, ApiNotImplemented):
        return True
    return str(getattr(exc, "error_code", "") or "") in UNAVAILABLE_CODES


@dataclass
class LakehouseMonitor:
    """Settings of the inference-log monitor on `table` (same settings for either API)."""

    table: str  # catalog.schema.table
    output_schema: str  # catalog.schema
    assets_dir: str
    problem_type: str = "PROBLEM_TYPE_CLASSIFICATION"
    prediction_col: str = "prediction"
    timestamp_col: str = "timestamp"
    model_id_col: str = "model_id"
    label_col: str = "label"
    granularities: Sequence[str] = ("30 minutes",)
    baseline_table: str | None = None
    slicing_exprs: Sequence[str] = field(default_factory=list)

    # -- data_quality ---------------------------------------------------------------------------------------
    def inference_log(self) -> InferenceLogConfig:
        return InferenceLogConfig(
            problem_type=InferenceProblemType(f"INFERENCE_{self.problem_type}"),
            prediction_column=self.prediction_col,
            timestamp_column=self.timestamp_col,
            model_id_column=self.model_id_col,
            label_column=self.label_col,
            granularities=[granularity(g) for g in self.granularities],
        )

    def create_or_refresh(self, client: Any) -> dict[str, Any]:
        """Create, update or refresh the monitor; falls back to ``quality_monitors`` only when the workspace
        says ``data_quality`` is unavailable. Returns what was done and with which API."""
        try:
            result = self._data_quality(client)
        except DatabricksError as exc:
            if not unavailable(exc):
                raise
            log.warning("data_quality API unavailable (%s); using quality_monitors", exc.error_code or exc)
            result = self._quality_monitors(client)
        log.info("Lakehouse monitor on %s %s (API %s)", self.table, result["action"], result["api"])
        return result

    def _data_quality(self, client: Any) -> dict[str, Any]:
        dq = client.data_quality
        table_id = client.tables.get(self.table).table_id
        try:
            current = dq.get_monitor(TABLE, table_id)
        except NotFound as exc:
            if unavailable(exc):
                raise
            current = None
        wanted = self.inference_log()
        if current is None:
            config = DataProfilingConfig(
                output_schema_id=client.schemas.get(self.output_schema).schema_id,
                assets_dir=self.assets_dir,
                inference_log=wanted,
                baseline_table_name=self.baseline_table,
                slicing_exprs=list(self.slicing_exprs) or None,
            )
            info = dq.create_monitor(
                Monitor(object_type=TABLE, object_id=table_id, data_profiling_config=config)
            )
            status = info.data_profiling_config.status if info.data_profiling_config else None
            # creating a monitor computes its first metrics itself
            return {"action": "created", "api": "data_quality", "status": getattr(status, "value", "")}
        action = "refreshed"
        config = current.data_profiling_config
        if config is not None and config.inference_log != wanted:
            config.inference_log = wanted
            dq.update_monitor(
                TABLE,
                table_id,
                Monitor(object_type=TABLE, object_id=table_id, data_profiling_config=config),
                update_mask="data_profiling_config.inference_log",
            )
            action = "updated and refreshed"
        refresh = dq.create_refresh(TABLE, table_id, Refresh(object_type=TABLE, object_id=table_id))
        return {
            "action": action,
            "api": "data_quality",
            "refresh_id": refresh.refresh_id,
            "status": getattr(refresh.state, "value", ""),
        }

    # -- quality_monitors (deprecated; only where data_quality is unavailable) ----------------------------
    def _quality_monitors(self, client: Any) -> dict[str, Any]:
        qm = client.quality_monitors
        try:
            qm.get(self.table)
        except NotFound:
            info = qm.create(
                table_name=self.table,
                assets_dir=self.assets_dir,
                output_schema_name=self.output_schema,
                inference_log=MonitorInferenceLog(
                    problem_type=MonitorInferenceLogProblemType(self.problem_type),
                    prediction_col=self.prediction_col,
                    timestamp_col=self.timestamp_col,
                    model_id_col=self.model_id_col,
                    label_col=self.label_col,
                    granularities=[str(g) for g in self.granularities],
                ),
                baseline_table_name=self.baseline_table,
                slicing_exprs=list(self.slicing_exprs) or None,
            )
            return {
                "action": "created",
                "api": "quality_monitors",
                "status": getattr(info.status, "value", ""),
            }
        refresh = qm.run_refresh(table_name=self.table)
        return {
            "action": "refreshed",
            "api": "quality_monitors",
            "refresh_id": refresh.refresh_id,
            "status": getattr(refresh.state, "value", ""),
        }
