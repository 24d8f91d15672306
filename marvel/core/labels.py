"""The one rule from P(alive) to the answer's words, and the answer's keys.

The pyfunc, the served sklearn model, batch scoring (pandas and Spark), the monitor and the test payloads all
call `survival_answer` / `labels`, so a threshold means the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

ALIVE = "alive"
DEAD = "dead"
WORDS: tuple[str, str] = (DEAD, ALIVE)  # by label: 0 dead, 1 alive
PREDICTION_KEY = "Survival prediction"
PROBABILITY_KEY = "Probability alive"
# "<model name>/<version>" per record, where the serving endpoint tells the model who it is (Databricks)
SERVED_MODEL_KEY = "Served model"
PROBABILITY_DECIMALS = 6


def labels(proba: Sequence[float] | np.ndarray, threshold: float) -> list[str]:
    """ "alive" where P(alive) >= threshold, else "dead"."""
    return np.where(np.asarray(proba, dtype=float) >= threshold, ALIVE, DEAD).tolist()


def words(label: Sequence[Any] | np.ndarray) -> np.ndarray:
    """1/0 labels (NaN/None for unknown) -> "alive"/"dead" (None for unknown), comparable with predictions."""
    values = np.asarray(label, dtype=object)
    out = np.full(len(values), None, dtype=object)
    for i, v in enumerate(values):
        if v is not None and v == v:  # not None, not NaN
            out[i] = ALIVE if float(v) == 1.0 else DEAD
    return out


def survival_answer(
    proba: Sequence[float] | np.ndarray, threshold: float, return_probabilities: bool = False
) -> dict[str, list[Any]]:
    """The custom model's answer: ``{"Survival prediction": [...]}`` (+ ``"Probability alive"``)."""
    answer: dict[str, list[Any]] = {PREDICTION_KEY: labels(proba, threshold)}
    if return_probabilities:
        answer[PROBABILITY_KEY] = [round(float(p), PROBABILITY_DECIMALS) for p in proba]
    return answer
