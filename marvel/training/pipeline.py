"""The model pipeline: processor + estimator, both from `_target_`; the served model is this whole pipeline."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from sklearn.pipeline import Pipeline

from marvel.core.schemas import INPUT_COLUMNS, TARGET
from marvel.core.sources import digest


def build_pipeline(cfg: DictConfig) -> Pipeline:
    processor = instantiate(cfg.features, _convert_="all")
    params: dict[str, Any] = OmegaConf.to_container(cfg.model.params, resolve=True)  # type: ignore[assignment]
    estimator = instantiate(cfg.model.estimator, **params, _convert_="all")
    return Pipeline([("processor", processor), ("model", estimator)])


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
