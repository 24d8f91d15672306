"""The model pipeline: processor + estimator, both from `_target_`; the served model is this whole pipeline."""

from __future__ import annotations

import traceback
from typing import Any

import numpy as np
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from sklearn.pipeline import Pipeline

from marvel.core.errors import MarvelError, one_line
from marvel.core.schemas import INPUT_COLUMNS, TARGET
from marvel.core.sources import digest


def build_pipeline(cfg: DictConfig) -> Pipeline:
    processor = instantiate(cfg.features, _convert_="all")
    params: dict[str, Any] = OmegaConf.to_container(cfg.model.params, resolve=True)  # type: ignore[assignment]
    estimator = instantiate(cfg.model.estimator, **params, _convert_="all")
    return Pipeline([("processor", processor), ("model", estimator)])


def fit(pipeline: Any, X: pd.DataFrame, y: np.ndarray) -> Any:
    """`pipeline.fit(X, y)` (a `build_pipeline` pipeline, or any estimator), with the estimator's refusal as a
    user error.

    The estimator is whatever `model.estimator._target_` names, with `model.params` as given: when its `fit`
    refuses (a parameter out of its range, input it cannot take, such as pandas categoricals for a random
    forest) the fix is in the config, so the run ends with one line naming the estimator and what it said, not
    a traceback from inside it. An error anywhere else (the processor is ours) keeps its traceback.
    """
    estimator = pipeline[-1] if isinstance(pipeline, Pipeline) else pipeline
    try:
        return pipeline.fit(X, y)
    except Exception as exc:
        if not _raised_in_fit_of(estimator, exc):
            raise
        target = f"{type(estimator).__module__}.{type(estimator).__qualname__}"
        raise MarvelError(
            f"the model's estimator {target} refused to fit: {type(exc).__name__}: {one_line(exc)} (check model.params, "
            "and that it takes the processor's output: pandas categoricals and missing values; "
            "docs/architecture.md, 'a model')"
        ) from exc


def _raised_in_fit_of(estimator: Any, exc: BaseException) -> bool:
    return any(
        frame.f_code.co_name == "fit" and frame.f_locals.get("self") is estimator
        for frame, _ in traceback.walk_tb(exc.__traceback__)
    )


def fingerprint(cfg: DictConfig, data: dict[str, Any], code: str) -> str:
    """Equal for two trainings that would give the same model: the same data (its lineage and version, and
    the split), the same features, model, threshold and seed, the same code. Thread counts do not count."""
    model = OmegaConf.to_container(cfg.model, resolve=True)
    assert isinstance(model, dict)
    model["params"] = {k: v for k, v in (model.get("params") or {}).items() if k != "n_jobs"}
    spec = {
        "data": data,
        "split": OmegaConf.to_container(cfg.split, resolve=True),
        "features": OmegaConf.to_container(cfg.features, resolve=True),
        "model": model,
        "seed": cfg.seed,
        "code": code,
    }
    return digest(spec)


def split_xy(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    return df[INPUT_COLUMNS], df[TARGET].to_numpy(dtype=int)
