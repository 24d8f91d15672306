"""Model quality per window: real metrics where labels arrived, and CBPE estimates where they have not.

CBPE (confidence-based performance estimation): if P(alive) is calibrated, a record predicted "alive" with
probability p is a true positive with probability p and a false positive with 1 - p. Summing these gives the
expected confusion matrix, hence expected accuracy and F1, without a single label. It is only as good as
the calibration and it cannot see concept drift (P(y|x) changing); shown beside the real figures, a gap
between the two is itself a signal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from marvel.core import metrics
from marvel.core.labels import ALIVE, DEAD

QUALITY_COLUMNS: list[str] = [
    "labelled_count",
    "prediction_rate",
    "label_rate",
    "accuracy_score",
    "precision",
    "recall",
    "f1_score",
    "roc_auc",
    "log_loss",
    "estimated_accuracy_score",
    "estimated_f1_score",
]


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else np.nan


# core metric name -> Lakehouse Monitoring's column name
_NAMES = {
    "accuracy": "accuracy_score",
    "precision": "precision",
    "recall": "recall",
    "f1": "f1_score",
    "roc_auc": "roc_auc",
    "log_loss": "log_loss",
}


def classification(y: np.ndarray, pred: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """`marvel.core.metrics` under Lakehouse Monitoring's names; undefined ratios are NaN, not 0."""
    found = metrics.classification(y, pred, proba, zero_division=np.nan)
    return {_NAMES[k]: v for k, v in found.items()}


def cbpe(pred: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Expected accuracy and F1 from calibrated probabilities of the positive class (no labels)."""
    ok = ~np.isnan(proba)
    if not ok.any():
        return {"estimated_accuracy_score": np.nan, "estimated_f1_score": np.nan}
    p, pos = proba[ok], pred[ok] == 1
    tp, fp = p[pos].sum(), (1 - p[pos]).sum()
    fn, tn = p[~pos].sum(), (1 - p[~pos]).sum()
    return {
        "estimated_accuracy_score": _ratio(tp + tn, len(p)),
        "estimated_f1_score": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def window_quality(rows: pd.DataFrame) -> dict[str, float]:
    """All quality figures of one window's rows (`prediction` "alive"/"dead", `label` 1/0/NaN, `probability`)."""
    pred = (rows["prediction"].to_numpy() == ALIVE).astype(int)
    proba = rows["probability"].to_numpy(dtype=float)
    label = rows["label"]
    if label.dtype == object:  # the analysed form: "alive" / "dead" / None
        label = label.map({ALIVE: 1.0, DEAD: 0.0})
    label = label.to_numpy(dtype=float)
    known = ~np.isnan(label)
    out: dict[str, float] = {
        "labelled_count": int(known.sum()),
        "prediction_rate": _ratio(pred.sum(), len(pred)),
        "label_rate": _ratio(label[known].sum(), known.sum()),
        **cbpe(pred, proba),
    }
    if known.any():
        out.update(classification(label[known].astype(int), pred[known], proba[known]))
    else:
        out.update(dict.fromkeys(_NAMES.values(), np.nan))
    return out
