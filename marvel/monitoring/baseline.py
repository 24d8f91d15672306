"""The baseline of the model that served a window: its own training data, resolved through its lineage.

model id "<name>/<version>" -> the registry's model version -> its training run (tag `run_id`) -> the
`train_set` and `test_set` versions that run read (its MLflow dataset inputs, tagged {"table", "version"})
-> those exact Delta versions (time travel). Features and the label are compared with the `train_set` rows;
`prediction` and `probability` with the model's own answers on its `test_set` rows (out of sample, as served
traffic is: a boosted model's answers on its training rows are more confident than anything it serves).

A baseline is built once per model version and kept in `model_monitoring_baselines`, so a new `process` run,
a new model version or a vacuumed table version never changes what old windows were compared with. A model
whose lineage cannot be followed gets no baseline: its windows' BASELINE rows are skipped, not invented, and
the refresh says which model and why.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from mlflow import MlflowClient

from marvel.core import metrics
from marvel.core.labels import PREDICTION_KEY, PROBABILITY_KEY, labels
from marvel.core.schemas import INPUT_COLUMNS, TARGET
from marvel.core.tracking import load_pyfunc
from marvel.monitoring.drift import Baseline, BaselineKey, Reference, build_baseline
from marvel.monitoring.groups import Slice
from marvel.monitoring.lake import Lake
from marvel.monitoring.schemas import TABLE_COLUMN, Baselines, flat, nest
from marvel.monitoring.stats import MISSING, OTHER

log = logging.getLogger(__name__)
ANSWERS = ("prediction", "probability")  # compared with the model's answers on its test rows
KEY_COLUMNS = ["model_id", "baseline_hash", "slice_key", "slice_value", "column_name"]


class Missing(Exception):
    """A model's baseline cannot be built; the message says which model and why."""


@dataclass
class ModelBaseline:
    """A model version's baselines: the whole table and each slice."""

    model_id: str
    slices: dict[tuple[str | None, str | None], Baseline] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        whole = self.slices.get((None, None))
        return whole.accuracy if whole is not None else np.nan


@dataclass
class Lineage:
    run_id: str
    versions: dict[str, int]  # table -> version the training run read


def lineage(model_id: str, tables: list[str]) -> Lineage:
    """Which table versions the run that trained `model_id` read (`tables[0]` must be among them)."""
    name, _, version = model_id.rpartition("/")
    if not name or version in ("", "unknown"):
        raise Missing(f"{model_id}: the inference table does not say which model version answered")
    client = MlflowClient()
    try:
        mv = client.get_model_version(name, version)
        run_id = str((mv.tags or {}).get("run_id") or mv.run_id)
        run = client.get_run(run_id)
    except Exception as exc:  # MlflowException, or no tracking server at all
        raise Missing(f"{model_id}: not found in the model registry ({str(exc).splitlines()[0]})") from None
    found: dict[str, int] = {}
    for inp in run.inputs.dataset_inputs if run.inputs is not None else []:
        tags = {t.key: t.value for t in inp.tags}
        table, at = tags.get("table"), tags.get("version")
        if table is not None and table in tables and at is not None:
            found[table] = int(at)
    if tables[0] not in found:
        raise Missing(f"{model_id}: its training run {run_id} logged no '{tables[0]}' dataset input")
    return Lineage(run_id=run_id, versions=found)


def answers(model_id: str, records: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(prediction words, P(alive)) of the registered model version on `records`."""
    name, _, version = model_id.rpartition("/")
    uri = f"models:/{name}/{version}"
    flavors = mlflow.models.get_model_info(uri).flavors
    inputs = records[[c for c in INPUT_COLUMNS if c in records.columns]]
    if flavors.get("python_function", {}).get("loader_module") == "mlflow.sklearn":
        mv = MlflowClient().get_model_version(name, version)
        proba = mlflow.sklearn.load_model(uri).predict_proba(inputs)[:, 1]
        words = labels(proba, float((mv.tags or {}).get("threshold", 0.5)))
        return np.asarray(words, dtype=object), np.asarray(proba, dtype=float)
    answer = load_pyfunc(uri).predict(inputs, params={"return_probabilities": True})
    return (
        np.asarray(answer[PREDICTION_KEY], dtype=object),
        np.asarray(answer.get(PROBABILITY_KEY, [np.nan] * len(inputs)), dtype=float),
    )


class BaselineBuilder:
    """Builds, caches and loads model baselines for the monitor's columns, bins and slices."""

    def __init__(
        self,
        lake: Lake,
        table: str,
        train_table: str,
        test_table: str,
        numeric: list[str],
        categorical: list[str],
        bins: int,
        max_categories: int,
        cuts: list[Slice],
        revision: int,
    ) -> None:
        self.lake, self.table = lake, table
        self.train_table, self.test_table = train_table, test_table
        self.numeric, self.categorical = numeric, categorical
        self.bins, self.max_categories, self.cuts = bins, max_categories, cuts
        shape = [revision, train_table, test_table, numeric, categorical, bins, max_categories]
        shape.append([c.key for c in cuts])
        self.hash = hashlib.sha1(json.dumps(shape).encode()).hexdigest()[:12]

    def build(self, model_id: str) -> ModelBaseline:
        """From the model's lineage; raises `Missing` with the reason when it cannot be followed."""
        found = lineage(model_id, [self.train_table, self.test_table])
        frames: dict[str, pd.DataFrame] = {}
        for table, version in found.versions.items():
            try:
                frames[table] = self.lake.read(table, version).to_pandas()
            except Exception as exc:
                raise Missing(
                    f"{model_id}: {table} v{version}, which it was trained on, no longer exists "
                    f"({str(exc).splitlines()[0][:120]})"
                ) from None
        train = frames[self.train_table]
        train_src = f"{self.train_table}@v{found.versions[self.train_table]}"
        test = frames.get(self.test_table)
        features = [c for c in self.numeric if c not in ANSWERS]
        cats = [c for c in self.categorical if c not in ANSWERS]
        whole = build_baseline(train, features, cats, self.bins, self.max_categories, train_src)
        out = ModelBaseline(model_id)
        out.slices[(None, None)] = whole
        scored: pd.DataFrame | None = None
        if test is not None and len(test):
            try:
                words, proba = answers(model_id, test)
            except Exception as exc:  # a model that no longer loads (its code changed, artifacts gone)
                raise Missing(
                    f"{model_id}: its answers on its {self.test_table} rows cannot be computed "
                    f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})"
                ) from None
            scored = test.assign(prediction=words, probability=proba)
            test_src = f"{self.test_table}@v{found.versions[self.test_table]} model answers"
            ans = build_baseline(
                scored,
                [c for c in self.numeric if c in ANSWERS],
                [c for c in self.categorical if c in ANSWERS],
                self.bins,
                self.max_categories,
                test_src,
            )
            _merge(whole, ans)
            y = scored[TARGET].to_numpy(dtype=int)
            whole.accuracy = metrics.classification(y, (words == "alive").astype(int))["accuracy"]
        for cut in self.cuts:
            for value, keep in (("true", True), ("false", False)):
                part = build_baseline(
                    train[cut.mask(train.assign(label=None)) == keep],
                    features,
                    cats,
                    self.bins,
                    self.max_categories,
                    train_src,
                    bins_from=whole,
                )
                if scored is not None:
                    _merge(
                        part,
                        build_baseline(
                            scored[cut.mask(scored) == keep],
                            [c for c in self.numeric if c in ANSWERS],
                            [c for c in self.categorical if c in ANSWERS],
                            self.bins,
                            self.max_categories,
                            whole.source.get("probability", ""),
                            bins_from=whole,
                        ),
                    )
                out.slices[(cut.key, value)] = part
        return out

    # -- the cache table ---------------------------------------------------------------------------------
    def cached(self, model_ids: Iterable[str]) -> dict[str, ModelBaseline]:
        wanted = sorted(set(model_ids))
        if not wanted or not self.lake.exists(self.table):
            return {}
        found = self.lake.read(self.table, match=("model_id", wanted))
        found = found.filter(pc.equal(pc.cast(found["baseline_hash"], pa.string()), self.hash))
        rows = flat(found)
        return from_rows(rows)

    def rows(self, model: ModelBaseline, now: pd.Timestamp) -> pd.DataFrame:
        records: list[dict[str, Any]] = []
        for (skey, sval), base in model.slices.items():
            where = {"model_id": model.model_id, "baseline_hash": self.hash, "slice_key": skey}
            where["slice_value"] = sval
            records.append(
                {**where, "column_name": TABLE_COLUMN, "source": "", "count": 0, "num_nulls": 0}
                | {"num_zeros": 0, "distinct_count": 0, "accuracy_score": base.accuracy}
            )
            for col, ref in base.refs.items():
                records.append(
                    {
                        **where,
                        "column_name": col,
                        "source": base.source.get(col, ""),
                        "count": ref.count,
                        "num_nulls": ref.nulls,
                        "num_zeros": ref.zeros,
                        "distinct_count": ref.distinct,
                        "values": ref.values.tolist() if col in base.edges else None,
                        "edges": base.edges[col].tolist() if col in base.edges else None,
                        "categories": base.categories.get(col),
                        "counts": ref.counts.tolist() if col in base.categories else None,
                    }
                )
        return pd.DataFrame.from_records(records).assign(created_at=now)

    def save(self, models: list[ModelBaseline], now: pd.Timestamp, refresh: int) -> None:
        if models:
            frame = pd.concat([self.rows(m, now) for m in models], ignore_index=True)
            self.lake.upsert(self.table, nest(frame, Baselines), KEY_COLUMNS, refresh)


def _merge(into: Baseline, more: Baseline) -> None:
    for attr in ("source", "refs", "edges", "categories"):
        getattr(into, attr).update(getattr(more, attr))


def from_rows(rows: pd.DataFrame) -> dict[str, ModelBaseline]:
    out: dict[str, ModelBaseline] = {}
    for r in rows.itertuples(index=False):
        model = out.setdefault(str(r.model_id), ModelBaseline(str(r.model_id)))
        skey = None if pd.isna(r.slice_key) else str(r.slice_key)
        sval = None if pd.isna(r.slice_value) else str(r.slice_value)
        base = model.slices.setdefault((skey, sval), Baseline())
        col = str(r.column_name)
        if col == TABLE_COLUMN:
            base.accuracy = float(r.accuracy_score) if pd.notna(r.accuracy_score) else np.nan
            continue
        ref = Reference(int(r.count), int(r.num_nulls), int(r.num_zeros), int(r.distinct_count))
        if r.edges is not None:
            ref.values = np.asarray(r.values if r.values is not None else [], dtype=float)
            base.edges[col] = np.asarray(r.edges, dtype=float)
        else:
            cats = [str(c) for c in (r.categories if r.categories is not None else [])]
            base.categories[col] = cats
            counts = r.counts if r.counts is not None else []
            ref.counts = pd.Series(np.asarray(counts, dtype=float), index=[*cats, OTHER, MISSING])
        base.refs[col], base.source[col] = ref, str(r.source)
    return out


def by_key(models: dict[str, ModelBaseline]) -> dict[BaselineKey, Baseline]:
    """(model id, slice key, slice value) -> Baseline: what `drift` looks windows' baselines up by."""
    return {(m, k, v): b for m, mb in models.items() for (k, v), b in mb.slices.items()}
