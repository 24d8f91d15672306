"""What every stage gets: the config, the table store, the MLflow run and a folder for its outputs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from marvel.cards import Card
from marvel.tables import TableStore
from marvel.tracking import configure, experiment_id, flat_params, run_tags

log = logging.getLogger(__name__)


class Tracker:
    """One MLflow run per invocation; stages log into it. Sweeps nest it under their parent run."""

    def __init__(self, cfg: DictConfig, out_dir: Path, tags: dict[str, str] | None = None) -> None:
        self.cfg = cfg
        self.out_dir = out_dir
        self.extra_tags = dict(tags or {})
        self.run_id = ""

    def __enter__(self) -> Tracker:
        import mlflow

        configure(self.cfg)
        env = self.cfg.env
        exp = experiment_id(env.experiment_name, env.get("artifact_location"))
        parent = self.cfg.get("parent_run_id")
        tags = {**run_tags(self.cfg), **self.extra_tags}
        if parent:
            tags["mlflow.parentRunId"] = str(parent)
        self._run = mlflow.start_run(experiment_id=exp, run_name=self.cfg.get("run_name"), tags=tags)
        self.run_id = self._run.info.run_id
        mlflow.log_params(flat_params(self.cfg))
        mlflow.log_text(OmegaConf.to_yaml(self.cfg, resolve=True), "config.yaml")
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        import mlflow

        mlflow.end_run(status="FAILED" if exc_type else "FINISHED")

    def log_metrics(self, metrics: dict[str, float]) -> None:
        import mlflow

        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})

    def log_card(self, card: Card) -> Path:
        import mlflow

        path = card.write(self.out_dir)
        mlflow.log_artifact(str(path), "cards")
        for image in card.images:
            mlflow.log_artifact(str(image), "plots")
        return path


@dataclass
class RunContext:
    cfg: DictConfig
    store: TableStore
    tracker: Tracker
    out_dir: Path
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.tracker.run_id
