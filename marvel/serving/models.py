"""Registered models, loaded once, behind one interface: validated character records in,
``{"Survival prediction": [...], ["Probability alive": [...]]}`` out.

The custom pyfunc (``marvel_character_model_custom``) answers that shape itself; the basic sklearn model
(``marvel_character_model_basic``) is wrapped to answer the same, with the threshold its version was tagged
with, so either can be served or A/B-tested against the other.

Both wrap the same kind of pipeline (processor + estimator). When it has a fast path (`marvel.serving.fast`),
requests of up to `fast_max_records` records skip pandas and MLflow's schema machinery and get exactly the
answer the frame path would give; bigger batches, and models without one, take the frame path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from marvel.core.labels import survival_answer
from marvel.core.registry import resolve_version
from marvel.core.tracking import load_pyfunc
from marvel.core.variants import Variant
from marvel.features.records import to_records
from marvel.serving.fast import FastScorer
from marvel.training.pyfunc import SurvivalModel

log = logging.getLogger(__name__)


def _as_lists(answer: Any) -> dict[str, list]:
    """Whatever a pyfunc returns, as a JSON-ready dict of equal-length lists."""
    if isinstance(answer, pd.DataFrame):
        answer = answer.to_dict(orient="list")
    elif isinstance(answer, pd.Series):
        answer = {answer.name or "predictions": answer.tolist()}
    elif isinstance(answer, np.ndarray | list):
        answer = {"predictions": list(answer)}
    return {
        str(k): [v.item() if isinstance(v, np.generic) else v for v in vals] for k, vals in answer.items()
    }


@dataclass(frozen=True)
class ModelRef:
    """A registered model version, resolved (an alias pinned to its version) but not loaded."""

    name: str
    version: str
    uri: str
    flavor: str  # "pyfunc" (custom model) or "sklearn" (basic model)
    threshold: float = 0.5


@dataclass
class ServedModel:
    """One registered model version, loaded."""

    name: str
    version: str
    uri: str
    flavor: str
    model: Any
    threshold: float = 0.5
    fast: FastScorer | None = None
    fast_max_records: int = 0

    def predict(self, frame: pd.DataFrame, return_probabilities: bool = False) -> dict[str, list]:
        """The frame path: character records as a frame, through the pyfunc or the sklearn pipeline."""
        if self.flavor == "sklearn":
            proba = self.model.predict_proba(frame)[:, 1]
            return survival_answer(proba, self.threshold, return_probabilities)
        params = {"return_probabilities": True} if return_probabilities else None
        return _as_lists(self.model.predict(frame, params=params))

    def predict_records(
        self, records: Sequence[Mapping[str, Any]], return_probabilities: bool = False
    ) -> dict[str, list]:
        """Validated records (serving names) -> the answer; the fast path when it has one and the batch is small."""
        if self.fast is not None and len(records) <= self.fast_max_records:
            return survival_answer(self.fast.predict_proba(records), self.threshold, return_probabilities)
        return self.predict(to_records(pd.DataFrame.from_records(list(records))), return_probabilities)


def resolve(variant: Variant) -> ModelRef:
    """The version a variant names now (its alias resolved), and how it is served."""
    mv = resolve_version(variant)
    uri = f"models:/{variant.model}/{mv.version}"
    flavors = mlflow.models.get_model_info(uri).flavors
    loader = flavors.get("python_function", {}).get("loader_module", "")
    if loader == "mlflow.sklearn" and "sklearn" in flavors:
        threshold = float((mv.tags or {}).get("threshold", 0.5))
        return ModelRef(variant.model, str(mv.version), uri, "sklearn", threshold)
    return ModelRef(variant.model, str(mv.version), uri, "pyfunc")


def _pipeline(ref: ModelRef, model: Any) -> tuple[Any, float] | None:
    """The sklearn pipeline inside a loaded model and its threshold, when the answer is that pipeline's."""
    if ref.flavor == "sklearn":
        return model, ref.threshold
    try:
        inner = model.unwrap_python_model()
    except Exception:
        return None
    # only our own pyfunc: its answer is `survival_answer` of the pipeline's P(alive), which the fast path repeats
    if type(inner).predict is not SurvivalModel.predict or not hasattr(inner, "pipeline"):
        return None
    return inner.pipeline, float(inner.threshold)


def load(
    ref: ModelRef, cache: dict[tuple[str, str], ServedModel] | None = None, fast_max_records: int = 100
) -> ServedModel:
    """Load a resolved version; versions shared by several variants are loaded once."""
    key = (ref.name, ref.version)
    if cache is not None and key in cache:
        return cache[key]
    model = mlflow.sklearn.load_model(ref.uri) if ref.flavor == "sklearn" else load_pyfunc(ref.uri)
    served = ServedModel(ref.name, ref.version, ref.uri, ref.flavor, model, threshold=ref.threshold)
    inner = _pipeline(ref, model) if fast_max_records > 0 else None
    if inner is not None:
        pipeline, served.threshold = inner
        served.fast = FastScorer.build(pipeline)
        served.fast_max_records = fast_max_records if served.fast is not None else 0
    log.info("loaded %s (flavour %s, fast path %s)", ref.uri, ref.flavor, "on" if served.fast else "off")
    if cache is not None:
        cache[key] = served
    return served
