"""Classification metrics, by scikit-learn: the one definition training, selection and monitoring share.

Label 1 ("alive") is the positive class everywhere.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
LOWER_IS_BETTER: frozenset[str] = frozenset({"log_loss"})
_EPS = 1e-15


def classification(
    y_true: np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray | None = None,
    zero_division: float = 0.0,
) -> dict[str, float]:
    """The `METRICS` of hard predictions `pred` (1/0) and, where given, P(alive) `proba` (NaN = unknown).

    ``roc_auc`` is NaN with one class only, ``log_loss`` NaN without probabilities; ``zero_division`` is
    precision's (and recall's) value when nothing is predicted (or labelled) positive.
    """
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(pred, dtype=int)
    out = {
        "accuracy": float(accuracy_score(y, p)) if len(y) else float("nan"),
        "precision": float(precision_score(y, p, zero_division=zero_division)),
        "recall": float(recall_score(y, p, zero_division=zero_division)),
        "f1": float(f1_score(y, p, zero_division=zero_division)),
        "roc_auc": float("nan"),
        "log_loss": float("nan"),
    }
    if proba is not None:
        pr = np.asarray(proba, dtype=float)
        has = ~np.isnan(pr)
        if has.any():
            yp, pp = y[has], np.clip(pr[has], _EPS, 1 - _EPS)
            out["log_loss"] = float(log_loss(yp, pp, labels=[0, 1]))
            if len(np.unique(yp)) == 2:  # AUC is undefined with one class
                out["roc_auc"] = float(roc_auc_score(yp, pp))
    return out


def score(y_true: np.ndarray, proba_alive: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """The `METRICS` of P(alive) against labels (1 alive, 0 dead), predicting alive at ``>= threshold``."""
    proba = np.asarray(proba_alive, dtype=float)
    return classification(y_true, (proba >= threshold).astype(int), proba)


def majority_baseline(y_train: np.ndarray, n_test: int) -> np.ndarray:
    """Always-majority: every test row gets the training alive rate, so it predicts the majority class."""
    return np.full(n_test, float(np.mean(y_train)))


def better_or_equal(metric: str, challenger: float, champion: float) -> bool:
    """Whether `challenger` is at least as good as `champion` on `metric` (NaN champion: nothing to beat)."""
    if np.isnan(champion):
        return True
    return challenger <= champion if metric in LOWER_IS_BETTER else challenger >= champion


def improvement(metric: str, new: float, old: float) -> float:
    """How much better `new` is than `old` on `metric` (positive is better, whichever way the metric points)."""
    return old - new if metric in LOWER_IS_BETTER else new - old
