"""databricks.yml and the env configs: every job task runs an entry point that exists with overrides that
compose, for every target; `dry_run` plans name the right Unity Catalog tables, models and endpoint."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from marvel.core.config import CONFIG_DIR
from marvel.core.plan import plan_lines
from marvel.core.results import Promotion, RunResult, TrainResult
from marvel.databricks.jobs import set_task_value
from marvel.databricks.preflight import DatabricksPreflight

REPO = Path(__file__).resolve().parents[1]
TARGETS = ["dev", "acc", "prd"]


def _bundle() -> dict[str, Any]:
    bundle = yaml.safe_load((REPO / "databricks.yml").read_text())
    for path in sorted(REPO.glob("resources/*.yml")):
        for kind, items in yaml.safe_load(path.read_text())["resources"].items():
            bundle.setdefault("resources", {}).setdefault(kind, {}).update(items)
    return bundle


def _tasks() -> list[tuple[str, dict[str, Any]]]:
    return [(job, t) for job, spec in _bundle()["resources"]["jobs"].items() for t in spec["tasks"]]


def _substitute(param: str, target: str) -> str:
    """What Databricks passes at run time: bundle variables and job parameters filled in."""
    param = param.replace("${bundle.target}", target)
    param = param.replace("${bundle.git.commit}", "0123abc").replace("${bundle.git.branch}", "main")
    return param.replace("{{job.run_id}}", "987654")


def _compose(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def test_targets_and_artifact() -> None:
    bundle = _bundle()
    assert set(bundle["targets"]) == set(TARGETS)
    assert bundle["targets"]["dev"].get("default") is True
    assert bundle["targets"]["prd"]["mode"] == "production"
    assert "uv build" in bundle["artifacts"]["default"]["build"]
    for target in TARGETS:  # every target has an env config of the same name
        assert (REPO / "conf" / "env" / f"{target}.yaml").is_file()


@pytest.mark.parametrize("target", TARGETS)
def test_every_task_composes(target: str) -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    wheel_tasks = [(job, t) for job, t in _tasks() if "python_wheel_task" in t]
    assert len(wheel_tasks) == 4
    for job, task in wheel_tasks:
        wt = task["python_wheel_task"]
        assert wt["package_name"] == "marvel"
        assert wt["entry_point"] in scripts
        assert scripts[wt["entry_point"]] == "marvel.__main__:main"
        overrides = [_substitute(p, target) for p in wt["parameters"]]
        assert f"+env={target}" in overrides
        assert not any("${" in o or "{{" in o for o in overrides), overrides
        cfg = _compose(overrides)
        assert cfg.env.name == target
        assert cfg.env.catalog == f"mlops_{target}"
        assert cfg.run.git_sha == "0123abc"
        assert cfg.run.branch == "main"
        assert str(cfg.run.job_run_id) == "987654"
        assert list(cfg.stages), (job, task["task_key"])


def test_deployment_job_flow() -> None:
    tasks = {t["task_key"]: t for job, t in _tasks() if job == "deployment"}
    assert list(tasks) == ["preprocessing", "train_model", "model_updated", "deploy_model"]
    stages = {
        k: [p for p in t["python_wheel_task"]["parameters"] if p.startswith("stages=")]
        for k, t in tasks.items()
        if "python_wheel_task" in t
    }
    assert stages == {
        "preprocessing": ["stages=[process]"],
        "train_model": ["stages=[train]"],
        "deploy_model": ["stages=[deploy]"],
    }
    cond = tasks["model_updated"]["condition_task"]
    # the value DatabricksPreflight.finish sets from the train stage's promotion verdict
    assert cond == {"op": "EQUAL_TO", "left": "{{tasks.train_model.values.model_updated}}", "right": "1"}
    assert tasks["deploy_model"]["depends_on"] == [{"task_key": "model_updated", "outcome": "true"}]
    assert tasks["train_model"]["depends_on"] == [{"task_key": "preprocessing"}]


def test_monitoring_schedule() -> None:
    job = _bundle()["resources"]["jobs"]["monitoring"]
    schedule = job["schedule"]
    assert schedule["quartz_cron_expression"] == "0 0 6 ? * MON"
    assert schedule["timezone_id"] == "Europe/Amsterdam"
    assert _bundle()["variables"]["monitoring_pause_status"]["default"] == "PAUSED"
    assert schedule["pause_status"] == "${var.monitoring_pause_status}"
    (task,) = job["tasks"]
    assert "stages=[monitor]" in task["python_wheel_task"]["parameters"]


@pytest.mark.parametrize("target", TARGETS)
def test_dry_run_plan_per_env(target: str) -> None:
    cfg = _compose([f"+env={target}", "dry_run=true"])
    text = "\n".join(plan_lines(cfg))
    uc = f"mlops_{target}.marvel_characters"
    for table in ("raw", "train_set", "test_set", "quarantine"):
        assert f"{uc}.{table}" in text
    assert f"{uc}.marvel_character_model_basic" in text
    assert f"{uc}.marvel_character_model_custom" in text
    assert "databricks-uc" in text
    assert "/Shared/marvel-characters-basic" in text
    assert "marvel.databricks.deployer.DatabricksDeployer endpoint marvel-character-model-serving" in text
    assert f"inference      {uc}.custom_model_payload" in text
    assert f"table          {uc}.model_monitoring" in text
    assert "PROBLEM_TYPE_CLASSIFICATION" in text
    assert "/lake/" not in text, "no local path may appear in a Databricks plan"


def test_dry_run_plan_spark_and_local(tmp_path: Path) -> None:
    spark = "\n".join(plan_lines(_compose([f"paths.root={tmp_path}", "+env=spark"])))
    assert f"{tmp_path}/spark-warehouse/train_set" in spark
    assert "SparkCompute" in spark
    assert "(parquet)" in spark
    local = "\n".join(plan_lines(_compose([f"paths.root={tmp_path}"])))
    assert f"{tmp_path}/lake/train_set" in local
    assert "PandasCompute" in local


def test_prd_without_credentials_is_one_line(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "MARVEL_HOME": str(tmp_path),
        "DATABRICKS_CONFIG_FILE": str(tmp_path / "none"),
    }
    out = subprocess.run(
        [sys.executable, "-m", "marvel", "+env=prd"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "DATABRICKS_HOST" in lines[0], out.stderr
    dry = subprocess.run(
        [sys.executable, "-m", "marvel", "+env=prd", "dry_run=true"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dry.returncode == 0
    assert "mlops_prd.marvel_characters.train_set" in dry.stdout


def test_finish_sets_no_task_value_off_databricks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    assert set_task_value("model_updated", 1) is False
    promoted = Promotion("b", "c", "1", "1", "latest-model", "roc_auc", True, None, float("nan"))
    result = RunResult(stages=["train"], results={"train": TrainResult(promotion=promoted)})
    DatabricksPreflight().finish(_compose(["+env=dev"]), result)  # a no-op locally


@pytest.mark.slow
def test_wheel_carries_its_config(tmp_path: Path) -> None:
    """`uv build` makes a wheel whose `marvel` entry point finds conf/ (as marvel/_conf) outside the checkout."""
    out = subprocess.run(
        ["uv", "build", "--wheel", "-o", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("marvel-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry = next(n for n in names if n.endswith("entry_points.txt"))
        assert re.search(r"^marvel = marvel.__main__:main$", zf.read(entry).decode(), re.M)
        zf.extractall(tmp_path / "site")
    assert "marvel/_conf/config.yaml" in names
    assert "marvel/_conf/env/prd.yaml" in names
    run = subprocess.run(
        [sys.executable, "-c", "from marvel.__main__ import main; main()", "+env=prd", "dry_run=true"],
        cwd=tmp_path,
        env={
            "PYTHONPATH": str(tmp_path / "site"),
            "PATH": "/usr/bin:/bin",
            "MARVEL_HOME": str(tmp_path / "h"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "mlops_prd.marvel_characters.train_set" in run.stdout
