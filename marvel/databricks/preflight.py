"""Checks a Databricks env makes before a run touches anything, and the task values it sets after."""

from __future__ import annotations

import configparser
import os
from importlib.metadata import PackageNotFoundError, metadata
from pathlib import Path

from omegaconf import DictConfig
from packaging.specifiers import SpecifierSet

from marvel.core.errors import MarvelError
from marvel.core.net import address, unreachable
from marvel.core.preflight import Preflight
from marvel.core.results import RunResult, TrainResult
from marvel.databricks.jobs import set_task_value
from marvel.databricks.runtime import has_databricks_connect, on_databricks

# Serverless environment version -> its Python (Databricks docs, "Serverless environment versions").
SERVERLESS_PYTHON = {"1": "3.10", "2": "3.11", "3": "3.12", "4": "3.12"}
# stages that only call the REST API and the registry: no Spark needed from a laptop
REST_ONLY_STAGES = frozenset({"deploy"})
LAPTOP_NEEDS = (
    "stages {stages} need Spark on Databricks: run them as a job (databricks bundle deploy -t {env} && "
    "databricks bundle run -t {env} deployment), or pip install databricks-connect (the version of the "
    "cluster's runtime) with the marvel wheel installed on that cluster; deploy alone and dry_run=true need "
    "neither"
)


def _workspace(profile: str | None) -> tuple[str, str] | None:
    """(where the credentials come from, the workspace host they name); None if there are none."""
    host = os.environ.get("DATABRICKS_HOST")
    if host and (os.environ.get("DATABRICKS_TOKEN") or os.environ.get("DATABRICKS_CLIENT_ID")):
        return "environment", host
    profile = os.environ.get("DATABRICKS_CONFIG_PROFILE") or profile
    cfg_file = Path(os.environ.get("DATABRICKS_CONFIG_FILE", "~/.databrickscfg")).expanduser()
    if profile and cfg_file.is_file():
        parser = configparser.ConfigParser()
        parser.read(cfg_file)
        if parser.has_section(profile) and parser.has_option(profile, "host") and parser.get(profile, "host"):
            return f"profile {profile}", parser.get(profile, "host")
    return None


def check_reachable(host: str, where: str) -> None:
    """A one-line MarvelError unless the workspace answers: MLflow's and the SDK's clients retry an
    unreachable host for minutes per call, silently (measured: a deploy to a refused port ran > 6 minutes)."""
    name, port = address(host)
    why = unreachable(name, port)
    if why is not None:
        raise MarvelError(
            f"the Databricks workspace {name}:{port} (from {where}) does not answer ({why}): check "
            "the host and the network; dry_run=true shows the plan without it"
        )


def wheel_requires_python() -> str | None:
    """The installed marvel's ``Requires-Python`` (what pip checks when the job installs the wheel)."""
    try:
        return metadata("marvel").get("Requires-Python")
    except PackageNotFoundError:
        return None


def check_environment_version(version: str | None, requires: str | None) -> str | None:
    """The Python of serverless environment `version`; a one-line MarvelError when the wheel refuses it."""
    if version is None:
        return None
    python = SERVERLESS_PYTHON.get(str(version))
    if python is None:
        raise MarvelError(
            f"unknown serverless environment version {version!r}: use one of {sorted(SERVERLESS_PYTHON)} "
            "(env.preflight.environment_version, and environment_version in resources/*.yml)"
        )
    if requires and not SpecifierSet(requires).contains(f"{python}.0"):
        fits = [v for v, p in SERVERLESS_PYTHON.items() if SpecifierSet(requires).contains(f"{p}.0")]
        raise MarvelError(
            f"serverless environment {version} runs Python {python}, which the marvel wheel refuses "
            f"(requires-python {requires}): use environment_version {' or '.join(fits) or '(none fits)'}"
        )
    return python


class DatabricksPreflight(Preflight):
    """Databricks runs need credentials (and, from a laptop, databricks-connect for Spark work);
    `dry_run=true` plans without either.

    After a run, `finish` hands the train stage's verdict to the job's next tasks: ``model_updated`` (1 only
    when alias latest-model moved to the new version) and ``model_version`` (the version it moved to).
    """

    def __init__(
        self,
        profile: str | None = "marvelous",
        available: bool = True,
        environment_version: str | int | None = None,
    ) -> None:
        self.profile = profile
        self.available = available
        self.environment_version = None if environment_version is None else str(environment_version)

    def check(self, cfg: DictConfig) -> None:
        check_environment_version(self.environment_version, wheel_requires_python())
        if cfg.get("dry_run"):
            return
        if on_databricks():
            return  # on a cluster the runtime authenticates the job itself
        if self.profile and not os.environ.get("DATABRICKS_HOST"):
            # the SDK, MLflow ("databricks" URIs) and databricks-connect all read the profile from here
            os.environ.setdefault("DATABRICKS_CONFIG_PROFILE", self.profile)
        workspace = _workspace(self.profile)
        if workspace is None:
            raise MarvelError(
                f"no Databricks credentials for env {cfg.env.name}: set DATABRICKS_HOST and DATABRICKS_TOKEN, "
                f"or add profile [{self.profile}] to ~/.databrickscfg (dry_run=true shows the plan without them)"
            )
        if not self.available:
            raise MarvelError(
                f"running on Databricks (env {cfg.env.name}) is not available yet; run locally without +env, "
                "or use dry_run=true to see the plan"
            )
        spark_stages = [s for s in cfg.stages if s not in REST_ONLY_STAGES]
        if spark_stages and not os.environ.get("SPARK_REMOTE") and not has_databricks_connect():
            raise MarvelError(LAPTOP_NEEDS.format(stages=",".join(spark_stages), env=cfg.env.name))
        where, host = workspace
        check_reachable(host, where)

    def plan_lines(self, cfg: DictConfig) -> list[str]:
        lines = []
        if cfg.env.get("catalog"):
            lines.append(f"schema         CREATE SCHEMA IF NOT EXISTS {cfg.env.catalog}.{cfg.env.schema}")
        if self.environment_version is not None:
            python = SERVERLESS_PYTHON.get(self.environment_version, "unknown")
            lines.append(
                f"jobs           serverless environment {self.environment_version} (Python {python})"
            )
        return lines

    def finish(self, cfg: DictConfig, result: RunResult) -> None:
        """Set the task values the job's condition and deploy tasks read (no-op off Databricks)."""
        train = result.train
        if isinstance(train, TrainResult) and train.promotion is not None:
            promotion = train.promotion
            set_task_value("model_updated", 1 if promotion.promoted else 0)
            if promotion.promoted:
                set_task_value("model_version", str(promotion.custom_version))
