"""Registered models, loaded once, behind one interface: a frame of character records in,
``{"Survival prediction": [...], ["Probability alive": [...]]}`` out.

The custom pyfunc (``marvel_character_model_custom``) answers that shape itself; the basic sklearn model
(``marvel_character_model_basic``) is wrapped to answer the same, with the threshold its version was tagged
with, so either can be served or A/B-tested against the other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from marvel.core.labels import survival_answer
from marvel.core.registry import resolve_version
from marvel.core.variants import Variant

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


@dataclass
class ServedModel:
    """One registered model version, loaded."""

    name: str
    version: str
    uri: str
    flavor: str  # "pyfunc" (custom model) or "sklearn" (basic model)
    model: Any
    threshold: float = 0.5

    def predict(self, frame: pd.DataFrame, return_probabilities: bool = False) -> dict[str, list]:
        if self.flavor == "sklearn":
            proba = self.model.predict_proba(frame)[:, 1]
            return survival_answer(proba, self.threshold, return_probabilities)
        params = {"return_probabilities": True} if return_probabilities else None
        return _as_lists(self.model.predict(frame, params=params))


def load(variant: Variant, cache: dict[tuple[str, str], ServedModel] | None = None) -> ServedModel:
    """Load the variant's model version; versions shared by several variants are loaded once."""
    mv = resolve_version(variant)
    key = (variant.model, str(mv.version))
    if cache is not None and key in cache:
        return cache[key]
    uri = f"models:/{variant.model}/{mv.version}"
    flavors = mlflow.models.get_model_info(uri).flavors
    loader = flavors.get("python_function", {}).get("loader_module", "")
    if loader == "mlflow.sklearn" and "sklearn" in flavors:
        served = ServedModel(
            variant.model,
            str(mv.version),
            uri,
            "sklearn",
            mlflow.sklearn.load_model(uri),
            threshold=float((mv.tags or {}).get("threshold", 0.5)),
        )
    else:
        served = ServedModel(variant.model, str(mv.version), uri, "pyfunc", mlflow.pyfunc.load_model(uri))
    log.info("loaded %s (variant %s, flavour %s)", uri, variant.name, served.flavor)
    if cache is not None:
        cache[key] = served
    return served
