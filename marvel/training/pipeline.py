"""The model pipeline: processor + estimator, both from `_target_`; the served model is this whole pipeline."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from sklearn.pipeline import Pipeline

from marvel.core.schemas import INPUT_COLUMNS, TARGET


def build_pipeline(cfg: DictConfig) -> Pipeline:
    processor = instantiate(cfg.features, _convert_="all")
    params: dict[str, Any] = OmegaConf.to_container(cfg.model.params, resolve=True)  # type: ignore[assignment]
    estimator = instantiate(cfg.model.estimator, **params, _convert_="all")
    return Pipeline([("processor", processor), ("model", estimator)])


def split_xy(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    return df[INPUT_COLUMNS], df[TARGET].to_numpy(dtype=int)
