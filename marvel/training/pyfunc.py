"""The custom pyfunc: character records in, ``{"Survival prediction": ["alive" | "dead", ...]}`` out."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from marvel.core.labels import SERVED_MODEL_KEY, survival_answer

# Set by `deploy=databricks` on each served entity: the AI gateway's inference table names a served entity
# only by an id the endpoint's config does not show, so the model reports its own name and version
SERVED_MODEL_ENV = "MARVEL_SERVED_MODEL"


class SurvivalModel(PythonModel):
    """Wraps the fitted sklearn pipeline (processor + classifier) and the decision threshold.

    ``params={"return_probabilities": true}`` adds ``"Probability alive"`` to the answer; where the endpoint
    sets ``MARVEL_SERVED_MODEL`` (``<name>/<version>``), every record also says which model answered it.
    """

    def __init__(self, pipeline: Any, threshold: float = 0.5) -> None:
        self.pipeline = pipeline
        self.threshold = threshold

    def predict_proba(self, records: pd.DataFrame) -> np.ndarray:
        return self.pipeline.predict_proba(records)[:, 1]

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> dict:
        proba = self.predict_proba(pd.DataFrame(model_input))
        answer = survival_answer(proba, self.threshold, bool(params and params.get("return_probabilities")))
        served = os.environ.get(SERVED_MODEL_ENV)
        if served:
            answer[SERVED_MODEL_KEY] = [served] * len(proba)
        return answer
