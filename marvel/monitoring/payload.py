"""Inference-table rows built directly, without a server: for tests and benchmarks of the monitor.

They have exactly the `InferenceLog` shape the serving layer writes (one row per request, MLflow scoring
JSON in, the custom pyfunc's answer out), so the monitor cannot tell them from served traffic.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import numpy as np
import pandas as pd

from marvel.core.labels import survival_answer
from marvel.core.schemas import RAW_TO_INPUT, InferenceLog
from marvel.data.synthetic.source import SyntheticSource


def raw_to_records(raw: pd.DataFrame) -> pd.DataFrame:
    """Generator/Kaggle rows -> model-input records (serving names; Id from PageID), NaN as None for JSON."""
    rec = raw.rename(columns=RAW_TO_INPUT)[list(RAW_TO_INPUT.values())]
    return rec.astype(object).where(rec.notna(), None)


def inference_rows(
    records: pd.DataFrame,
    probability: np.ndarray,
    timestamp_ms: np.ndarray,
    batch_size: int = 100,
    model_name: str = "marvel_character_model_custom",
    model_version: str = "1",
    variant: str = "A",
    threshold: float = 0.5,
) -> pd.DataFrame:
    """One InferenceLog row per batch of `batch_size` consecutive records; a batch takes its first record's time."""
    n = len(records)
    recs = records.to_dict(orient="records")
    proba = np.round(np.asarray(probability, dtype=float), 6)
    rows = []
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        p = proba[start:stop]
        answer = {"predictions": survival_answer(p, threshold, return_probabilities=True), "variant": variant}
        ts = int(timestamp_ms[start])
        rows.append(
            {
                "databricks_request_id": str(uuid.uuid4()),
                "client_request_id": None,
                "date": pd.Timestamp(ts, unit="ms").normalize(),
                "timestamp_ms": ts,
                "status_code": 200,
                "execution_duration_ms": 5,
                "request": json.dumps(
                    {"dataframe_records": recs[start:stop], "params": {"return_probabilities": True}}
                ),
                "response": json.dumps(answer),
                "served_model_name": model_name,
                "served_model_version": model_version,
                "variant": variant,
            }
        )
    return InferenceLog.validate(pd.DataFrame(rows))


def synthetic_train_set(n: int = 20000, seed: int = 42) -> pd.DataFrame:
    """A baseline shaped like the `process` stage's `train_set`: 80% of a synthetic draw, records + Alive."""
    raw = SyntheticSource(seed=seed).generate(n, seed)
    rec = raw_to_records(raw).astype({"Height": float, "Weight": float})
    rec["Alive"] = (raw["Alive"] == "Alive").astype(int)
    return rec.iloc[: int(n * 0.8)].reset_index(drop=True)


def synthetic_stream(
    windows: int,
    per_window: int,
    start: pd.Timestamp,
    step: pd.Timedelta,
    seed: int = 7,
    drift: dict | None = None,
    first_partition: int = 0,
    batch_size: int = 50,
    scorer: Callable[[pd.DataFrame], np.ndarray] | None = None,
    model_version: str = "1",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(inference rows, raw rows with labels) for `windows` consecutive windows of synthetic traffic.

    P(alive) comes from `scorer` (records -> P(alive), e.g. a registered model's `predict_proba`) or, without
    one, from the generator's own Alive draw blurred with noise: a stand-in model, calibrated enough for CBPE
    to be meaningful, for tests that need no trained model.
    """
    src = SyntheticSource(drift=drift)
    rng = np.random.default_rng(seed)
    payloads, raws = [], []
    for w in range(windows):
        raw = src.generate(per_window, seed, partition=first_partition + w)
        alive = (raw["Alive"] == "Alive").to_numpy()
        records = raw_to_records(raw)
        if scorer is not None:
            proba = np.asarray(scorer(records.astype({"Height": float, "Weight": float})), dtype=float)
        else:
            proba = np.clip(np.where(alive, 0.75, 0.45) + rng.normal(0, 0.1, len(raw)), 0.01, 0.99)
        at = (start + step * w).value // 1_000_000 + np.arange(len(raw)) * (
            step.value // 1_000_000 // len(raw)
        )
        payloads.append(
            inference_rows(records, proba, at, batch_size=batch_size, model_version=model_version)
        )
        raws.append(raw)
    return pd.concat(payloads, ignore_index=True), pd.concat(raws, ignore_index=True)
