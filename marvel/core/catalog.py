"""The catalog: every table marvel reads or writes, once, with its contract and the stage that owns it.

Stages and stores name tables through these specs, never by string literals. A config may rename a table
(``deploy.inference_table``, ``score.output``, ...); its default is the spec's name. The schema is named by
its import path, so this module stays free of the packages that define the monitoring contracts.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

import pandera.pandas as pa


@dataclass(frozen=True)
class TableSpec:
    name: str
    schema_path: str  # "module:Class" of the pandera DataFrameModel
    owner: str  # the stage (or party) that writes it
    description: str

    @property
    def schema(self) -> type[pa.DataFrameModel]:
        module, cls = self.schema_path.split(":")
        model: type[pa.DataFrameModel] = getattr(import_module(module), cls)
        return model

    def __str__(self) -> str:
        return self.name


_CORE = "marvel.core.schemas"
_MON = "marvel.monitoring.schemas"

RAW = TableSpec("raw", f"{_CORE}:RawCharacters", "process", "the Kaggle columns as read")
QUARANTINE = TableSpec(
    "quarantine", f"{_CORE}:Quarantine", "process", "rows that failed a schema: reason and the row as JSON"
)
TRAIN_SET = TableSpec("train_set", f"{_CORE}:SplitTable", "process", "character records + Alive (1/0)")
TEST_SET = TableSpec("test_set", f"{_CORE}:SplitTable", "process", "character records + Alive (1/0)")
PROCESS_STATS = TableSpec(
    "process_stats", f"{_CORE}:ProcessStats", "process", "rows and table versions of each processing"
)
PREDICTIONS = TableSpec("predictions", f"{_CORE}:Predictions", "score", "batch scores of a table by a model")
INFERENCE_LOG = TableSpec(
    "custom_model_payload", f"{_CORE}:InferenceLog", "deploy", "one row per scoring request"
)
LABELS = TableSpec("labels", f"{_CORE}:Labels", "you (or simulate)", "ground truth by Id, arriving later")
MODEL_MONITORING = TableSpec(
    "model_monitoring", f"{_MON}:ModelMonitoring", "monitor", "one row per scored record"
)
PROFILE_METRICS = TableSpec(
    "model_monitoring_profile_metrics", f"{_MON}:ProfileMetrics", "monitor", "per window, column and model"
)
DRIFT_METRICS = TableSpec(
    "model_monitoring_drift_metrics", f"{_MON}:DriftMetrics", "monitor", "drift against baseline and previous"
)
MONITOR_ALERTS = TableSpec(
    "model_monitoring_alerts", f"{_MON}:Alerts", "monitor", "each alert once: first/last seen, open/resolved"
)
MONITOR_BASELINES = TableSpec(
    "model_monitoring_baselines", f"{_MON}:Baselines", "monitor", "each serving model version's baseline"
)
MONITOR_STATE = TableSpec(
    "model_monitoring_state", f"{_MON}:MonitorState", "monitor", "refresh log: plan, then commit marker"
)

TABLES: tuple[TableSpec, ...] = (
    RAW,
    QUARANTINE,
    TRAIN_SET,
    TEST_SET,
    PROCESS_STATS,
    PREDICTIONS,
    INFERENCE_LOG,
    LABELS,
    MODEL_MONITORING,
    PROFILE_METRICS,
    DRIFT_METRICS,
    MONITOR_ALERTS,
    MONITOR_BASELINES,
    MONITOR_STATE,
)
BY_NAME: dict[str, TableSpec] = {t.name: t for t in TABLES}
# what the training lifecycle (process -> train) writes; a dry run lists these
LIFECYCLE: tuple[TableSpec, ...] = (RAW, QUARANTINE, TRAIN_SET, TEST_SET, PROCESS_STATS)
