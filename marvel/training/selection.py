"""Honest model selection: candidates are compared on cross-validation folds of the training rows only.

The test set is scored once, by the configuration the selection chose (see `marvel.training.sweep`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from marvel.core.errors import MarvelError
from marvel.core.metrics import METRICS, majority_baseline, score
from marvel.training.pipeline import fit


def cross_validate(
    make_pipeline: Callable[[], Any],
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    folds: int,
    seed: int,
    threshold: float = 0.5,
) -> dict[str, dict[str, list[float]]]:
    """Per-fold metrics of the model and of the always-majority baseline, on validation folds of X."""
    fewest = int(np.bincount(y).min()) if len(y) else 0
    if fewest < folds:  # sklearn warns and scores folds missing a class as nan, or refuses: say it here
        raise MarvelError(
            f"cv.folds={folds} needs at least {folds} training rows of each class, the fewest here are "
            f"{fewest}: lower cv.folds or use more rows"
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    model: dict[str, list[float]] = {m: [] for m in METRICS}
    baseline: dict[str, list[float]] = {m: [] for m in METRICS}
    for fit_idx, val_idx in splitter.split(np.zeros(len(y)), y):
        pipe = fit(make_pipeline(), X.iloc[fit_idx], y[fit_idx])
        proba = pipe.predict_proba(X.iloc[val_idx])[:, 1]
        for m, v in score(y[val_idx], proba, threshold).items():
            model[m].append(v)
        base = majority_baseline(y[fit_idx], len(val_idx))
        for m, v in score(y[val_idx], base, threshold).items():
            baseline[m].append(v)
    return {"model": model, "baseline": baseline}


def summarise(folds: dict[str, list[float]], prefix: str) -> dict[str, float]:
    """`{prefix}{metric}_mean` and `_std` for every metric (the spread matters as much as the mean)."""
    out: dict[str, float] = {}
    for m, values in folds.items():
        out[f"{prefix}{m}_mean"] = float(np.mean(values))
        out[f"{prefix}{m}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return out
