"""The fast path: a served pipeline (feature processor + LightGBM) scored from plain records, without pandas.

One record through the pyfunc costs milliseconds, nearly all of it pandas and MLflow's schema machinery around
a LightGBM call that takes well under 0.1 ms on a numpy row. Here the processor's per-record path
(`transform_records`) gives the features as plain columns, categoricals are coded as LightGBM coded them in
training (its `pandas_categorical`), and the booster predicts from a float64 array with one thread (a request
is one or a few rows; threads cost more than they save, and the cores belong to the worker processes).

Exactly the pipeline's answer or nothing: `FastScorer.build` compares its probabilities with the pipeline's
own `predict_proba` on probe records, bit for bit, and gives no fast path (the frame path serves) when they
differ or when the pipeline is not one it knows (another estimator, a processor without a per-record path).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from marvel.features.records import to_records
from marvel.serving.examples import RAW_EXAMPLE, SOURCE_EXAMPLE

log = logging.getLogger(__name__)

# probe records: the examples, missing values everywhere, unseen categories, Kaggle-style lists
PROBES: list[dict[str, Any]] = [
    RAW_EXAMPLE,
    SOURCE_EXAMPLE,
    {"Height": None, "Weight": None, "Universe": None, "Identity": None, "Gender": None},
    {
        "Height": 250.0,
        "Weight": 0.5,
        "Universe": "Earth-TRN999999",
        "Identity": "No Dual Identity",
        "Gender": "Genderfluid",
        "Marital_Status": "Widow",
        "Teams": "12",
        "Origin": "Cosmic Being; robot",
        "Creators": "Stan Lee; Jack Kirby",
        "Id": "probe-3",
    },
]


class FastScorer:
    """P(alive) of plain records by a fitted processor + LightGBM binary classifier."""

    def __init__(
        self,
        processor: Any,
        booster: Any,
        columns: list[str],
        codes: dict[str, dict[Any, int]],
        dtype: np.dtype,
    ) -> None:
        self.processor = processor
        self.booster = booster
        self.columns = columns
        self.codes = codes  # categorical column -> {category: code}, as LightGBM coded training
        self.dtype = dtype

    @classmethod
    def build(cls, pipeline: Any) -> FastScorer | None:
        """The fast path of `pipeline`, or None when it has none (or it would not answer exactly the same)."""
        try:
            steps = list(pipeline.named_steps.values())
        except AttributeError:
            return None
        processor, estimator = steps[0] if len(steps) == 2 else None, steps[-1]
        booster = getattr(estimator, "booster_", None) if hasattr(estimator, "fitted_") else None
        if (
            processor is None
            or not hasattr(processor, "transform_records")
            or booster is None
            or type(estimator).__name__ != "LGBMClassifier"
            or getattr(estimator, "n_classes_", 0) != 2
        ):
            return None
        try:
            frame = processor.transform(to_records(pd.DataFrame(PROBES)))
            categorical = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
            known = booster.pandas_categorical or []
            if len(known) != len(categorical) or len(frame.columns) != booster.num_feature():
                return None
            codes = {
                col: {v: i for i, v in enumerate(cats)} for col, cats in zip(categorical, known, strict=True)
            }
            # the dtype LightGBM converts a frame to: categoricals become small integer codes
            kinds = [np.dtype("int8") if c in codes else frame[c].dtype for c in frame.columns]
            dtype = np.result_type(*kinds, np.float32)
            scorer = cls(processor, booster, list(frame.columns), codes, dtype)
            expected = np.asarray(pipeline.predict_proba(to_records(pd.DataFrame(PROBES)))[:, 1])
            got = scorer.predict_proba(PROBES)
        except Exception:  # a pipeline this path does not understand: the frame path serves it
            log.warning("no fast path for this model; the frame path serves it", exc_info=True)
            return None
        if not np.array_equal(got, expected):
            log.warning(
                "fast path disagrees with the pipeline (%s vs %s); the frame path serves", got, expected
            )
            return None
        return scorer

    def matrix(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        features = self.processor.transform_records(records)
        out = np.empty((len(records), len(self.columns)), dtype=self.dtype)
        nan = float("nan")
        for j, col in enumerate(self.columns):
            values = features[col]
            codes = self.codes.get(col)
            if codes is not None:
                out[:, j] = [codes.get(v, nan) for v in values]
            else:
                out[:, j] = values
        return out

    def predict_proba(self, records: Sequence[Mapping[str, Any]], threads: int = 1) -> np.ndarray:
        return np.asarray(self.booster.predict(self.matrix(records), num_threads=threads))
