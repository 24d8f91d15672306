"""Model quality per window: real metrics where labels arrived, and CBPE estimates where they have not.

The figures come from `marvel.core.metrics` (scikit-learn), in Lakehouse Monitoring's names and shapes:
`accuracy_score`, `confusion_matrix` (prediction, label, count entries), and `precision`, `recall`,
`f1_score`, `true_positive_rate`, `false_positive_rate`, `roc_auc_score` as {one_vs_all per class, macro,
weighted}. The "dead" class's figures are the same metrics with the classes swapped.

CBPE (confidence-based performance estimation): if P(alive) is calibrated, a record predicted "alive" with
probability p is a true positive with probability p and a false positive with 1 - p. Summing these gives the
expected confusion matrix, hence expected accuracy and F1, without a single label. It is only as good as
the calibration and it cannot see concept drift (P(y|x) changing) or a pure label shift; a drop of the
estimate below the model's test accuracy (`marvel_estimated_accuracy_drop`) means the model is less sure of
its answers than on its test rows, the label-free quality signal the default rules alert on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from marvel.core import metrics
from marvel.core.labels import ALIVE, DEAD

AVERAGED = ("precision", "recall", "f1_score", "true_positive_rate", "false_positive_rate", "roc_auc_score")
QUALITY_COLUMNS: list[str] = [
    "accuracy_score",
    "confusion_matrix",
    *(f"{m}.{part}" for m in AVERAGED for part in ("one_vs_all", "macro", "weighted")),
    "marvel_labelled_count",
    "marvel_prediction_rate",
    "marvel_label_rate",
    "marvel_log_loss",
    "marvel_estimated_accuracy_score",
    "marvel_estimated_f1_score",
]


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else np.nan


def _averaged(name: str, alive: float, dead: float, support: tuple[int, int]) -> dict[str, Any]:
    per = {ALIVE: alive, DEAD: dead}
    known = [v for v in per.values() if not np.isnan(v)]
    weights = np.array(support, dtype=float)
    both = np.array([alive, dead])
    ok = ~np.isnan(both) & (weights > 0)
    return {
        f"{name}.one_vs_all": {k: float(v) for k, v in per.items() if not np.isnan(v)},
        f"{name}.macro": float(np.mean(known)) if known else np.nan,
        f"{name}.weighted": float(np.average(both[ok], weights=weights[ok])) if ok.any() else np.nan,
    }


def classification(y: np.ndarray, pred: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """Lakehouse's quality columns from labels `y` and predictions `pred` (1 alive, 0 dead), P(alive) `proba`."""
    y, pred = np.asarray(y, dtype=int), np.asarray(pred, dtype=int)
    proba = np.asarray(proba, dtype=float)
    alive = metrics.classification(y, pred, proba, zero_division=np.nan)
    dead = metrics.classification(1 - y, 1 - pred, 1 - proba, zero_division=np.nan)
    support = (int((y == 1).sum()), int((y == 0).sum()))
    out: dict[str, Any] = {
        "accuracy_score": alive["accuracy"],
        "confusion_matrix": [
            {"prediction": p_word, "label": y_word, "count": int(((pred == p) & (y == t)).sum())}
            for p, p_word in ((1, ALIVE), (0, DEAD))
            for t, y_word in ((1, ALIVE), (0, DEAD))
        ],
        "marvel_log_loss": alive["log_loss"],
    }
    out.update(_averaged("precision", alive["precision"], dead["precision"], support))
    out.update(_averaged("recall", alive["recall"], dead["recall"], support))
    out.update(_averaged("f1_score", alive["f1"], dead["f1"], support))
    out.update(_averaged("true_positive_rate", alive["recall"], dead["recall"], support))
    # a class's false positive rate: the other class's records predicted as it = 1 - the other's recall
    out.update(_averaged("false_positive_rate", 1 - dead["recall"], 1 - alive["recall"], support))
    out.update(_averaged("roc_auc_score", alive["roc_auc"], dead["roc_auc"], support))
    return out


def cbpe(pred: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Expected accuracy and F1 from calibrated probabilities of the positive class (no labels)."""
    ok = ~np.isnan(proba)
    if not ok.any():
        return {"marvel_estimated_accuracy_score": np.nan, "marvel_estimated_f1_score": np.nan}
    p, pos = proba[ok], pred[ok] == 1
    tp, fp = p[pos].sum(), (1 - p[pos]).sum()
    fn, tn = p[~pos].sum(), (1 - p[~pos]).sum()
    return {
        "marvel_estimated_accuracy_score": _ratio(tp + tn, len(p)),
        "marvel_estimated_f1_score": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def window_quality(rows: pd.DataFrame) -> dict[str, Any]:
    """All quality figures of one window's rows (`prediction` "alive"/"dead", `label` 1/0/NaN, `probability`)."""
    pred = (rows["prediction"].to_numpy() == ALIVE).astype(int)
    proba = rows["probability"].to_numpy(dtype=float)
    label = rows["label"]
    if label.dtype == object:  # the analysed form: "alive" / "dead" / None
        label = label.map({ALIVE: 1.0, DEAD: 0.0})
    label = label.to_numpy(dtype=float)
    known = ~np.isnan(label)
    out: dict[str, Any] = {
        "marvel_labelled_count": int(known.sum()),
        "marvel_prediction_rate": _ratio(pred.sum(), len(pred)),
        "marvel_label_rate": _ratio(label[known].sum(), known.sum()),
        **cbpe(pred, proba),
    }
    if known.any():
        out.update(classification(label[known].astype(int), pred[known], proba[known]))
    return out
