"""Sweeps (``python -m marvel -m ...``): one parent MLflow run, a child run per job, a ranked summary, and the
chosen configuration fitted and scored on the test set once.

Hydra calls this callback in the launching process around the whole multirun. Jobs learn their parent and
that they are to cross-validate from environment variables it sets, which the joblib launcher's worker
processes inherit.
"""

from __future__ import annotations

import atexit
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback
from matplotlib.figure import Figure
from mlflow import MlflowClient
from omegaconf import DictConfig, OmegaConf

from marvel.core.engine import run as run_engine
from marvel.core.engine import stage_check, stage_runner
from marvel.core.errors import MarvelError, exit_with, one_line
from marvel.core.metrics import LOWER_IS_BETTER
from marvel.core.replay import logged_config
from marvel.core.results import RunResult, TrainResult
from marvel.core.secrets import redact_hydra_output, redact_override, secret_values
from marvel.core.tracking import configure, experiment_id, run_tags

log = logging.getLogger(__name__)

PARENT_ENV = "MARVEL_PARENT_RUN_ID"
MODE_ENV = "MARVEL_TRAIN_MODE"
THREADS_ENV = "MARVEL_THREADS_PER_JOB"


def _job_config(cfg: DictConfig) -> DictConfig:
    """The run config without Hydra's own node (the callback gets both)."""
    plain = OmegaConf.masked_copy(cfg, [str(k) for k in cfg if k != "hydra"])
    return plain


class SweepCallback(Callback):
    def __init__(self) -> None:
        self.parent_run_id: str | None = None
        self._secrets: set[str] = set()
        self._saved_env: dict[str, str | None] = {}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        cfg = _job_config(config)
        # what the stages can check before anything opens (a missing CSV) fails the sweep before its parent
        # run; exiting here, because Hydra turns an exception in a callback into a warning and goes on
        try:
            for name in cfg.stages:
                check = stage_check(stage_runner(cfg, name))
                if check is not None:
                    check(cfg)
        except MarvelError as exc:
            exit_with(one_line(exc), exc.exit_code)
        configure(cfg)
        client = MlflowClient()
        exp = experiment_id(cfg.env.experiment_name, cfg.env.get("artifact_location"))
        overrides = list(config.hydra.overrides.task)
        self._secrets = secret_values(cfg, overrides)
        tags = {
            **run_tags(cfg),
            "sweep": "true",
            "sweep_overrides": " ".join(redact_override(o) for o in overrides),
        }
        run = client.create_run(exp, run_name=cfg.get("run_name") or "sweep", tags=tags)
        self.parent_run_id = run.info.run_id
        # a job that fails (or exits) can end the multirun before on_multirun_end: close what we opened anyway
        atexit.register(self._close_if_open)
        # two jobs at a time on two cores: each job's model gets the cores left over, not all of them
        cpus = os.cpu_count() or 1
        launcher_jobs = int(OmegaConf.select(config, "hydra.launcher.n_jobs", default=1) or 1)
        if launcher_jobs < 0:  # joblib's convention: -1 is every core, -2 all but one, ...
            launcher_jobs = max(1, cpus + 1 + launcher_jobs)
        threads = str(max(1, cpus // launcher_jobs))
        for key, value in ((PARENT_ENV, self.parent_run_id), (MODE_ENV, "cv"), (THREADS_ENV, threads)):
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        print(f"sweep: parent MLflow run {self.parent_run_id}", flush=True)

    def _close_if_open(self) -> None:
        """At exit: a parent (and any job) still RUNNING was cut short; mark it FAILED, never leave it open."""
        if self.parent_run_id is None:
            return
        client = MlflowClient()
        parent = client.get_run(self.parent_run_id)
        runs = client.search_runs(
            [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{self.parent_run_id}'", max_results=5000
        )
        for r in [parent, *runs]:
            if r.info.status == "RUNNING":
                client.set_terminated(r.info.run_id, status="FAILED")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if self.parent_run_id is None:
            return
        cfg = _job_config(config)
        configure(cfg)
        client = MlflowClient()
        out_dir = Path(config.hydra.sweep.dir)
        # Hydra wrote the sweep's config and overrides into multirun.yaml, secrets and all
        if (out_dir / "multirun.yaml").is_file():
            redact_hydra_output(out_dir, self._secrets, config_name="multirun.yaml")
        status = "FINISHED"
        try:
            table = summary_table(client, self.parent_run_id, str(cfg.sweep.select_metric))
            print(format_table(table, str(cfg.sweep.select_metric)), flush=True)
            log_summary(client, self.parent_run_id, table, str(cfg.sweep.select_metric), out_dir)
            if cfg.sweep.final_fit and not table.empty and table["cv_mean"].notna().any():
                final_fit(client, self.parent_run_id, table.iloc[0]["run_id"], out_dir)
        except Exception:
            status = "FAILED"
            raise
        finally:
            client.set_terminated(self.parent_run_id, status=status)
            atexit.unregister(self._close_if_open)


def summary_table(client: Any, parent_run_id: str, metric: str) -> pd.DataFrame:
    """One row per job: its overrides, cv mean and spread of `metric`, the baseline's; best first."""
    parent = client.get_run(parent_run_id)
    runs = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}' and tags.sweep_role = 'job'",
        max_results=5000,
    )
    rows = []
    for r in runs:
        m = r.data.metrics
        rows.append(
            {
                "run_id": r.info.run_id,
                "overrides": r.data.tags.get("overrides", ""),
                "cv_mean": m.get(f"cv_{metric}_mean"),
                "cv_std": m.get(f"cv_{metric}_std"),
                "baseline_mean": m.get(f"cv_baseline_{metric}_mean"),
                "status": r.info.status,
            }
        )
    table = pd.DataFrame(
        rows, columns=["run_id", "overrides", "cv_mean", "cv_std", "baseline_mean", "status"]
    )
    lower_is_better = metric in LOWER_IS_BETTER
    table["overrides"] = _varying(table["overrides"].tolist())
    table = table.sort_values("cv_mean", ascending=lower_is_better, na_position="last", kind="stable")
    table.insert(0, "rank", range(1, len(table) + 1))
    return table.reset_index(drop=True)


def _varying(overrides: list[str]) -> list[str]:
    """Only the overrides that differ between jobs: what the sweep is about."""
    tokens = [o.split() for o in overrides]
    common = set.intersection(*(set(t) for t in tokens)) if tokens else set()
    return [" ".join(t for t in ts if t not in common) for ts in tokens]


def format_table(table: pd.DataFrame, metric: str) -> str:
    lines = [f"sweep summary, ranked by cross-validated {metric} (train folds only; test set untouched)"]
    lines.append(f"  {'rank':>4}  {'cv mean':>8}  {'± std':>7}  {'baseline':>8}  overrides")
    for _, r in table.iterrows():
        mean = f"{r['cv_mean']:.4f}" if pd.notna(r["cv_mean"]) else "failed"
        std = f"{r['cv_std']:.4f}" if pd.notna(r["cv_std"]) else ""
        base = f"{r['baseline_mean']:.4f}" if pd.notna(r["baseline_mean"]) else ""
        lines.append(f"  {r['rank']:>4}  {mean:>8}  {std:>7}  {base:>8}  {r['overrides'] or '(defaults)'}")
    return "\n".join(lines)


def log_summary(client: Any, parent_run_id: str, table: pd.DataFrame, metric: str, out_dir: Path) -> None:

    out_dir.mkdir(parents=True, exist_ok=True)
    csv = out_dir / "sweep_summary.csv"
    table.to_csv(csv, index=False)
    client.log_artifact(parent_run_id, str(csv))
    done = table[table["cv_mean"].notna()]
    if not done.empty:
        fig = Figure(figsize=(7, 0.45 * len(done) + 1.5))
        ax = fig.subplots()
        labels = [o or "(defaults)" for o in done["overrides"]][::-1]
        ax.barh(labels, done["cv_mean"][::-1], xerr=done["cv_std"][::-1], color="#4c72b0", alpha=0.85)
        ax.axvline(done["baseline_mean"].iloc[0], color="grey", ls="--", label="always-majority")
        ax.set_xlabel(f"cross-validated {metric} (mean ± std over folds)")
        ax.legend(loc="lower right", fontsize=8)
        fig.subplots_adjust(left=0.45)
        png = out_dir / "sweep_summary.png"
        fig.savefig(png, dpi=110)
        client.log_artifact(parent_run_id, str(png))
        best = done.iloc[0]
        client.log_metric(parent_run_id, f"best_cv_{metric}_mean", float(best["cv_mean"]))
        client.set_tag(parent_run_id, "best_job_run_id", best["run_id"])


def final_fit(client: Any, parent_run_id: str, best_run_id: str, out_dir: Path) -> RunResult:
    """Fit the chosen job's exact config on the whole training set and score the test set, once."""
    cfg = logged_config(best_run_id)
    cfg.train.mode = "fit"
    cfg.parent_run_id = parent_run_id
    # keep `process`: under the parent run it reuses the exact tables the chosen job was cross-validated on
    cfg.stages = [s for s in cfg.stages if s in ("process", "train")]
    cfg.run_name = "selected"
    results = run_engine(cfg, out_dir=out_dir / "selected", extra_tags={"sweep_role": "selected"})
    train = results.train
    metrics = train.metrics if isinstance(train, TrainResult) else {}
    for name, value in metrics.items():
        client.log_metric(parent_run_id, f"selected_test_{name}", value)
    client.set_tag(parent_run_id, "selected_run_id", results.run_id)
    print(
        f"sweep: selected job {best_run_id} (best by cv), fitted on all training rows; test set scored once: "
        + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()),
        flush=True,
    )
    return results
