"""The AI gateway's inference table, row by row: what a Databricks endpoint logged, read as marvel's `InferenceLog`.

Plain pandas, no Databricks SDK: `DatabricksMonitor` ships `monitoring_rows` to Spark's Python workers
(``mapInPandas``), which then import this module, not the SDK (~2 s per worker process).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from marvel.core.labels import SERVED_MODEL_KEY
from marvel.monitoring.parse import payload_to_monitoring


def served_model(response: Any) -> tuple[str | None, str | None]:
    """(name, version) the served model reported in its answer (``"Served model": ["<name>/<version>", ...]``,
    set by `deploy=databricks` on every served entity); (None, None) when it did not."""
    try:
        answer = json.loads(response) if isinstance(response, str) else None
        served = answer["predictions"][SERVED_MODEL_KEY] if isinstance(answer, dict) else None
        first = served[0] if isinstance(served, list) and served else served
    except (ValueError, KeyError, TypeError):
        return None, None
    if not isinstance(first, str) or "/" not in first:
        return None, None
    name, _, version = first.rpartition("/")
    return name, version


def gateway_to_inference_log(payload: pd.DataFrame) -> pd.DataFrame:
    """Rows of a Databricks inference table -> the `InferenceLog` columns `payload_to_monitoring` reads.

    Handles the AI gateway table (``request_time``, ``served_entity_id``) and the legacy auto-capture table
    (``timestamp_ms``, ``request_metadata``); rows already in the `InferenceLog` shape pass through. The
    gateway names a served entity only by ``served_entity_id``, an id the endpoint's config does not show
    (and that outlives it: an A/B update replaces the entities), so the model and version come from the
    answer itself, where every served marvel model reports them (see `marvel.training.pyfunc`).
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
    reported = [served_model(r) for r in payload["response"].tolist()]
    names = pd.Series([n for n, _ in reported], index=payload.index, dtype=object)
    versions = pd.Series([v for _, v in reported], index=payload.index, dtype=object)
    if "request_metadata" in payload:  # legacy auto-capture: a map with model_name / model_version
        meta = payload["request_metadata"].map(lambda m: dict(m) if m is not None else {})
        names = names.where(names.notna(), meta.map(lambda m: m.get("model_name")))
        versions = versions.where(versions.notna(), meta.map(lambda m: m.get("model_version")))
    out["served_model_name"] = names
    out["served_model_version"] = versions
    out["variant"] = None
    return out


def monitoring_rows(payload: pd.DataFrame) -> pd.DataFrame:
    """One batch of the inference table -> monitoring rows (the local monitor's parsing, unchanged)."""
    return payload_to_monitoring(gateway_to_inference_log(payload))
