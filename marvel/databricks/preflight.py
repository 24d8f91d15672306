"""Checks a Databricks env makes before a run touches anything, and the task values it sets after."""

from __future__ import annotations

import configparser
import os
from pathlib import Path

from omegaconf import DictConfig

from marvel.core.errors import MarvelError
from marvel.core.preflight import Preflight
from marvel.core.results import RunResult, TrainResult
from marvel.databricks.jobs import set_task_value


def databricks_credentials(profile: str | None) -> str | None:
    """Where credentials come from: env vars, or the profile in ~/.databrickscfg; None if neither."""
    if os.environ.get("DATABRICKS_HOST") and (
        os.environ.get("DATABRICKS_TOKEN") or os.environ.get("DATABRICKS_CLIENT_ID")
    ):
        return "environment"
    cfg_file = Path(os.environ.get("DATABRICKS_CONFIG_FILE", "~/.databrickscfg")).expanduser()
    if profile and cfg_file.is_file():
        parser = configparser.ConfigParser()
        parser.read(cfg_file)
        if parser.has_section(profile) and parser.has_option(profile, "host") and parser.get(profile, "host"):
            return f"profile {profile}"
    return None


class DatabricksPreflight(Preflight):
    """Databricks runs need credentials; `dry_run=true` plans without them.

    After a run, `finish` hands the train stage's verdict to the job's next task (`model_updated`).
    """

    def __init__(self, profile: str | None = "marvelous", available: bool = True) -> None:
        self.profile = profile
        self.available = available

    def check(self, cfg: DictConfig) -> None:
        if cfg.get("dry_run"):
            return
        if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
            return  # on a cluster the runtime authenticates the job itself
        if self.profile and not os.environ.get("DATABRICKS_HOST"):
            # the SDK, MLflow ("databricks" URIs) and databricks-connect all read the profile from here
            os.environ.setdefault("DATABRICKS_CONFIG_PROFILE", self.profile)
        if databricks_credentials(self.profile) is None:
            raise MarvelError(
                f"no Databricks credentials for env {cfg.env.name}: set DATABRICKS_HOST and DATABRICKS_TOKEN, "
                f"or add profile [{self.profile}] to ~/.databrickscfg (dry_run=true shows the plan without them)"
            )
        if not self.available:
            raise MarvelError(
                f"running on Databricks (env {cfg.env.name}) is not available yet; run locally without +env, "
                "or use dry_run=true to see the plan"
            )

    def finish(self, cfg: DictConfig, result: RunResult) -> None:
        """Set the `model_updated` task value the job's condition task reads (no-op off Databricks)."""
        train = result.train
        if isinstance(train, TrainResult) and train.promotion is not None:
            set_task_value("model_updated", 1 if train.promotion.promoted else 0)
