"""The custom pyfunc: character records in, ``{"Survival prediction": ["alive" | "dead", ...]}`` out."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from marvel.core.labels import survival_answer


class SurvivalModel(PythonModel):
    """Wraps the fitted sklearn pipeline (processor + classifier) and the decision threshold.

    ``params={"return_probabilities": true}`` adds ``"Probability alive"`` to the answer.
    """

    def __init__(self, pipeline: Any, threshold: float = 0.5) -> None:
        self.pipeline = pipeline
        self.threshold = threshold

    def predict_proba(self, records: pd.DataFrame) -> np.ndarray:
        return self.pipeline.predict_proba(records)[:, 1]

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> dict:
        proba = self.predict_proba(pd.DataFrame(model_input))
        return survival_answer(proba, self.threshold, bool(params and params.get("return_probabilities")))
