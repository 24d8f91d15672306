"""`+replay=<run id>`: rerun exactly the configuration an MLflow run logged."""

from __future__ import annotations

import mlflow
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from marvel.core.errors import MarvelError
from marvel.core.tracking import configure


def logged_config(run_id: str) -> DictConfig:
    """The resolved config.yaml a run logged (MLflow must already point at the run's tracking store)."""
    try:
        text = mlflow.artifacts.load_text(f"runs:/{run_id}/config.yaml")
    except MlflowException:
        raise MarvelError(
            f"cannot replay run {run_id}: no such run or it logged no config.yaml in {mlflow.get_tracking_uri()}"
        ) from None
    cfg = OmegaConf.create(text)
    assert isinstance(cfg, DictConfig)
    return cfg


def replay_config(cfg: DictConfig) -> DictConfig:
    """The config to run for `+replay=<id>`: the logged one, as it was, tagged as a replay."""
    configure(cfg)
    run_id = str(cfg.replay)
    replayed = logged_config(run_id)
    replayed.replay = None
    replayed.replay_of = run_id
    replayed.parent_run_id = None
    replayed.run_name = f"replay of {run_id}"
    return replayed
