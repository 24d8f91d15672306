"""Shared pieces of the monitoring tests: the monitor from its YAML, a context, the trained model's answers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from deltalake import DeltaTable
from omegaconf import OmegaConf

from marvel.monitoring.monitor import LocalMonitor
from marvel.monitoring.schemas import flat

CONF = Path(__file__).resolve().parents[1] / "conf" / "monitor" / "local.yaml"
T0 = pd.Timestamp("2025-03-01 00:00")
STEP = pd.Timedelta(minutes=30)
TABLES = [
    "model_monitoring",
    "model_monitoring_profile_metrics",
    "model_monitoring_drift_metrics",
    "model_monitoring_alerts",
    "model_monitoring_baselines",
]


def config() -> dict[str, Any]:
    cfg: dict[str, Any] = OmegaConf.to_container(OmegaConf.load(CONF))  # type: ignore[assignment]
    cfg.pop("_target_")
    return cfg


def monitor(**kw: Any) -> LocalMonitor:
    return LocalMonitor(**{**config(), **kw})


def ctx(store: Any, out: Path | None = None) -> SimpleNamespace:
    return SimpleNamespace(store=store, out_dir=out, run_id="test-run")


def use_registry(home: Path) -> None:
    """Point MLflow at a MARVEL_HOME's registry, as a run's tracker does."""
    mlflow.set_tracking_uri(f"sqlite:///{home}/mlflow.db")
    mlflow.set_registry_uri(f"sqlite:///{home}/mlflow.db")


def scorer(version: str = "1") -> Callable[[pd.DataFrame], np.ndarray]:
    """P(alive) of the registered basic model (the custom model of the same run answers the same)."""
    model = mlflow.sklearn.load_model(f"models:/marvel_character_model_basic/{version}")
    return lambda records: model.predict_proba(records)[:, 1]


def table(store: Any, name: str) -> pd.DataFrame:
    """A metric table, flat (struct fields dotted), in a stable order for comparisons."""
    out = flat(DeltaTable(store.uri(name)).to_pyarrow_table())
    keys = [c for c in ("window.start", "drift_type", "slice_key", "slice_value", "model_id", "column_name")]
    keys = [k for k in keys if k in out.columns]
    if "databricks_request_id" in out.columns:
        keys = ["databricks_request_id", "record_index"]
    return out.sort_values(keys, na_position="first").reset_index(drop=True)
