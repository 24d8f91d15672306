"""The plots a person looks at after training (confusion matrix, ROC curve); metrics are `marvel.core.metrics`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve


def plot_confusion(y_true: np.ndarray, proba: np.ndarray, threshold: float, path: Path) -> Path:

    cm = confusion_matrix(
        np.asarray(y_true, int), (np.asarray(proba) >= threshold).astype(int), labels=[0, 1]
    )
    fig = Figure(figsize=(4.2, 3.8))
    ax = fig.subplots()
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
    return path


def plot_roc(y_true: np.ndarray, proba: np.ndarray, path: Path, label: str = "model") -> Path:

    fpr, tpr, _ = roc_curve(np.asarray(y_true, int), proba)
    auc = roc_auc_score(np.asarray(y_true, int), proba)
    fig = Figure(figsize=(4.2, 4.0))
    ax = fig.subplots()
    ax.plot(fpr, tpr, label=f"{label} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="always-majority (AUC 0.5)")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curve, test set")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
