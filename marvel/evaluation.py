"""Test-set metrics and the plots a person looks at (confusion matrix, ROC curve)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
LOWER_IS_BETTER = {"log_loss"}


def score(y_true: np.ndarray, proba_alive: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """The six metrics for P(alive) against labels (1 alive, 0 dead)."""
    y_true = np.asarray(y_true, dtype=int)
    proba = np.clip(np.asarray(proba_alive, dtype=float), 1e-15, 1 - 1e-15)
    pred = (proba >= threshold).astype(int)
    both = len(np.unique(y_true)) == 2
    return {
        "accuracy": float(accuracy_score(y_true, pred)),
        "precision": float(precision_score(y_true, pred, zero_division=0)),
        "recall": float(recall_score(y_true, pred, zero_division=0)),
        "f1": float(f1_score(y_true, pred, zero_division=0)),
        "roc_auc": float(roc_auc_score(y_true, proba)) if both else float("nan"),
        "log_loss": float(log_loss(y_true, proba, labels=[0, 1])),
    }


def majority_baseline(y_train: np.ndarray, n_test: int) -> np.ndarray:
    """Always-majority: every test row gets the training alive rate, so it predicts the majority class."""
    return np.full(n_test, float(np.mean(y_train)))


def better_or_equal(metric: str, challenger: float, champion: float) -> bool:
    if np.isnan(champion):
        return True
    return challenger <= champion if metric in LOWER_IS_BETTER else challenger >= champion


def plot_confusion(y_true: np.ndarray, proba: np.ndarray, threshold: float, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = confusion_matrix(
        np.asarray(y_true, int), (np.asarray(proba) >= threshold).astype(int), labels=[0, 1]
    )
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, f"{v}", ha="center", va="center", color="black", fontsize=12)
    ax.set_xticks([0, 1], ["dead", "alive"])
    ax.set_yticks([0, 1], ["dead", "alive"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(f"Confusion matrix (threshold {threshold:.2f})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_roc(y_true: np.ndarray, proba: np.ndarray, path: Path, label: str = "model") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fpr, tpr, _ = roc_curve(np.asarray(y_true, int), proba)
    auc = roc_auc_score(np.asarray(y_true, int), proba)
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.plot(fpr, tpr, label=f"{label} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="always-majority (AUC 0.5)")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curve, test set")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
