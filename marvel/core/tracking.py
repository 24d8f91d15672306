"""MLflow: where runs and models go, what every run records about itself, and the run each invocation opens."""

from __future__ import annotations

import logging
import subprocess
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
from omegaconf import DictConfig, OmegaConf

from marvel.core.cards import Card
from marvel.core.secrets import redact, redact_config, scrub, secret_values

log = logging.getLogger(__name__)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5, check=True)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def run_tags(cfg: DictConfig) -> dict[str, str]:
    """git_sha / branch / job_run_id: from config (a Databricks job passes them) or from the checkout."""
    run = cfg.get("run", {}) or {}
    return {
        "git_sha": str(run.get("git_sha") or _git("rev-parse", "HEAD") or "unknown"),
        "branch": str(run.get("branch") or _git("rev-parse", "--abbrev-ref", "HEAD") or "unknown"),
        "job_run_id": str(run.get("job_run_id") or "local"),
        "env": str(cfg.env.name),
    }


def configure(cfg: DictConfig) -> None:
    """Point MLflow at the env's tracking server and registry; quiet its chatter."""
    env = cfg.env
    for path in env.get("local_dirs") or []:
        Path(path).mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(env.tracking_uri)
    mlflow.set_registry_uri(env.registry_uri)
    # MLflow warns about things that are deliberate here (cloudpickle, pinned requirements)
    warnings.filterwarnings("ignore", module="mlflow")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def load_pyfunc(uri: str) -> Any:
    """`mlflow.pyfunc.load_model` without its requirements check: the check reads every installed package's
    metadata (~0.4 s per process) for a warning that `configure` silences anyway (mlflow's logger at ERROR)."""
    return mlflow.pyfunc.load_model(uri, suppress_warnings=True)


def experiment_id(name: str, artifact_location: str | None) -> str:
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = Path(artifact_location).resolve().as_uri() if artifact_location else None
    return mlflow.create_experiment(name, artifact_location=location)


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def flat_params(cfg: DictConfig) -> dict[str, str]:
    """The parts a person compares runs by, flattened (`model.params.max_depth` -> `model.max_depth`)."""
    out: dict[str, str] = {
        "data": str(cfg.data.get("_target_", "")),
        "features": str(cfg.features.get("_target_", "")),
        "model": str(cfg.model.name),
        "seed": str(cfg.seed),
        "split.test_size": str(cfg.split.test_size),
        "model.threshold": str(cfg.model.get("threshold", 0.5)),
    }
    params = OmegaConf.to_container(cfg.model.params, resolve=True) or {}
    assert isinstance(params, dict)
    for k, v in params.items():
        out[f"model.{k!s}"] = str(v)
    for k, v in cfg.features.items():
        if k != "_target_":
            out[f"features.{k}"] = str(v)
    return out


class Tracker:
    """One MLflow run per invocation; stages log into it. Sweeps nest it under their parent run."""

    def __init__(self, cfg: DictConfig, out_dir: Path, tags: dict[str, str] | None = None) -> None:
        self.cfg = cfg
        self.out_dir = out_dir
        self.extra_tags = dict(tags or {})
        self.run_id = ""

    def __enter__(self) -> Tracker:
        configure(self.cfg)
        env = self.cfg.env
        exp = experiment_id(env.experiment_name, env.get("artifact_location"))
        parent = self.cfg.get("parent_run_id")
        secrets = secret_values(self.cfg)  # no secret goes into a param, a tag or the logged config
        tags = {k: scrub(v, secrets) for k, v in {**run_tags(self.cfg), **self.extra_tags}.items()}
        if parent:
            tags["mlflow.parentRunId"] = str(parent)
        self._run = mlflow.start_run(experiment_id=exp, run_name=self.cfg.get("run_name"), tags=tags)
        self.run_id = self._run.info.run_id
        mlflow.log_params({k: scrub(v, secrets) for k, v in redact(flat_params(self.cfg)).items()})
        mlflow.log_text(scrub(OmegaConf.to_yaml(redact_config(self.cfg)), secrets), "config.yaml")
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        mlflow.end_run(status="FAILED" if exc_type else "FINISHED")

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})

    def log_card(self, card: Card) -> Path:
        path = card.write(self.out_dir)
        mlflow.log_artifact(str(path), "cards")
        for image in card.images:
            mlflow.log_artifact(str(image), "plots")
        return path
