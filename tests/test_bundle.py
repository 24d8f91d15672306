"""databricks.yml and the env configs: the jobs parse with the `databricks-bundles` package, every task runs an
entry point that exists with overrides that compose, for every target, on a serverless environment whose
Python the wheel accepts; `dry_run` plans name the right Unity Catalog tables, models and endpoint."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from databricks.bundles.jobs import Job
from databricks.bundles.schemas import Schema
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from packaging.specifiers import SpecifierSet
from processes import forked_marvel

from marvel.core.config import CONFIG_DIR
from marvel.core.engine import run
from marvel.core.errors import MarvelError
from marvel.core.net import unreachable
from marvel.core.plan import plan_lines
from marvel.core.results import Promotion, RunResult, TrainResult
from marvel.databricks.jobs import set_task_value
from marvel.databricks.preflight import SERVERLESS_PYTHON, DatabricksPreflight

REPO = Path(__file__).resolve().parents[1]
TARGETS = ["dev", "acc", "prd"]
# Serverless environment version -> Python, from the Databricks docs ("Serverless environment versions").
DOCS_ENVIRONMENT_PYTHON = {"1": "3.10", "2": "3.11", "3": "3.12", "4": "3.12"}
# workspace fields the CLI reads to authenticate: it does not interpolate variables in them
AUTH_FIELDS = {
    "host",
    "profile",
    "auth_type",
    "client_id",
    "azure_client_id",
    "azure_tenant_id",
    "azure_environment",
    "azure_login_app_id",
    "azure_workspace_resource_id",
    "google_service_account",
    "metadata_service_url",
    "account_id",
}


def _bundle() -> dict[str, Any]:
    bundle = yaml.safe_load((REPO / "databricks.yml").read_text())
    for path in sorted(REPO.glob("resources/*.yml")):
        for kind, items in yaml.safe_load(path.read_text())["resources"].items():
            bundle.setdefault("resources", {}).setdefault(kind, {}).update(items)
    return bundle


def _tasks() -> list[tuple[str, dict[str, Any]]]:
    return [(job, t) for job, spec in _bundle()["resources"]["jobs"].items() for t in spec["tasks"]]


def _substitute(param: str, target: str) -> str:
    """What Databricks passes at run time: bundle variables, resource references and task values filled in."""
    bundle = _bundle()
    variables = {k: v.get("default") for k, v in bundle["variables"].items()}
    variables.update(bundle["targets"][target].get("variables") or {})
    for key, value in variables.items():
        param = param.replace("${var." + key + "}", str(value))
    schema = bundle["resources"]["schemas"]["marvel_characters"]
    param = param.replace("${resources.schemas.marvel_characters.name}", schema["name"])
    param = param.replace("${resources.schemas.marvel_characters.catalog_name}", schema["catalog_name"])
    param = param.replace("${bundle.target}", target)
    param = param.replace("${bundle.git.commit}", "0123abc").replace("${bundle.git.branch}", "main")
    param = param.replace("{{tasks.train_model.values.model_version}}", "7")
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
    assert bundle["artifacts"]["default"]["dynamic_version"] is True  # never a stale wheel
    for target in TARGETS:  # every target has an env config of the same name
        assert (REPO / "conf" / "env" / f"{target}.yaml").is_file()


def test_no_interpolation_in_auth_fields() -> None:
    """`-p`/DATABRICKS_CONFIG_PROFILE choose the credentials; the CLI does not interpolate auth fields."""
    bundle = _bundle()
    blocks = [bundle.get("workspace") or {}] + [t.get("workspace") or {} for t in bundle["targets"].values()]
    for block in blocks:
        for key, value in block.items():
            if key in AUTH_FIELDS:
                assert "${" not in str(value), (key, value)
    assert "profile" not in yaml.safe_dump(bundle).split("variables:")[1].split("artifacts:")[0]


def test_jobs_and_schema_parse_with_databricks_bundles() -> None:
    """The `databricks-bundles` package's own models read every job and the schema, without a warning."""
    resources = _bundle()["resources"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jobs = {name: Job.from_dict(spec) for name, spec in resources["jobs"].items()}
        schema = Schema.from_dict(resources["schemas"]["marvel_characters"])
    assert set(jobs) == {"deployment", "monitoring"}
    assert schema.catalog_name == "mlops_${bundle.target}"
    assert schema.name == "marvel_characters"
    with pytest.raises(ValueError, match="Unexpected field"):  # the parser is strict: this test means it
        Job.from_dict({**resources["jobs"]["monitoring"], "environment": []})


def test_serverless_environments_run_the_wheels_python() -> None:
    """Every job environment is a serverless version whose Python the wheel's requires-python accepts."""
    assert SERVERLESS_PYTHON == DOCS_ENVIRONMENT_PYTHON
    requires = SpecifierSet(
        tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    )
    assert not requires.contains("3.11.0"), "environment 2 (Python 3.11) must stay refused by this test"
    for name, spec in _bundle()["resources"]["jobs"].items():
        for env in spec["environments"]:
            assert "client" not in env["spec"], name  # deprecated; "2" was Python 3.11
            python = DOCS_ENVIRONMENT_PYTHON[str(env["spec"]["environment_version"])]
            assert requires.contains(f"{python}.0"), (name, env)
            assert env["spec"]["dependencies"] == ["../dist/*.whl"]
    assert str(_compose(["+env=prd"]).env.preflight.environment_version) == "4"


def test_schema_is_declared_and_used_by_every_task() -> None:
    schema = _bundle()["resources"]["schemas"]["marvel_characters"]
    assert schema["catalog_name"] == "mlops_${bundle.target}"
    for job, task in _tasks():
        if "python_wheel_task" in task:
            params = task["python_wheel_task"]["parameters"]
            assert "env.schema=${resources.schemas.marvel_characters.name}" in params, (job, task["task_key"])


@pytest.mark.slow
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
    # the real data from a Unity Catalog Volume, never the synthetic default
    pre = tasks["preprocessing"]["python_wheel_task"]["parameters"]
    assert "data=kaggle" in pre
    assert "data.path=${var.raw_data}" in pre
    for target in TARGETS:
        path = _bundle()["targets"][target]["variables"]["raw_data"]
        assert path.startswith(f"/Volumes/mlops_{target}/"), target
        assert (
            _compose([_substitute(p, target) for p in pre]).data._target_ == "marvel.data.kaggle.KaggleSource"
        )
    # deploy serves the version train_model promoted
    deploy = tasks["deploy_model"]["python_wheel_task"]["parameters"]
    assert "deploy.variants.0.version={{tasks.train_model.values.model_version}}" in deploy
    assert _compose([_substitute(p, "prd") for p in deploy]).deploy.variants[0].version == 7
    cond = tasks["model_updated"]["condition_task"]
    # the value DatabricksPreflight.finish sets from the train stage's promotion verdict
    assert cond == {"op": "EQUAL_TO", "left": "{{tasks.train_model.values.model_updated}}", "right": "1"}
    assert tasks["deploy_model"]["depends_on"] == [{"task_key": "model_updated", "outcome": "true"}]
    assert tasks["train_model"]["depends_on"] == [{"task_key": "preprocessing"}]


def test_weekly_schedules_paused_outside_prd() -> None:
    bundle = _bundle()
    for name in ("deployment", "monitoring"):
        schedule = bundle["resources"]["jobs"][name]["schedule"]
        assert schedule["quartz_cron_expression"] == "0 0 6 ? * MON", name
        assert schedule["timezone_id"] == "Europe/Amsterdam"
        assert schedule["pause_status"] == "${var.schedule_pause_status}"
    assert bundle["variables"]["schedule_pause_status"]["default"] == "PAUSED"
    paused = {t: (bundle["targets"][t].get("variables") or {}).get("schedule_pause_status") for t in TARGETS}
    assert paused == {"dev": None, "acc": None, "prd": "UNPAUSED"}
    (task,) = bundle["resources"]["jobs"]["monitoring"]["tasks"]
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


@pytest.mark.parametrize("target", TARGETS)
def test_dry_run_shows_schema_creation_and_environment(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(_compose([f"paths.root={tmp_path}", f"+env={target}", "dry_run=true"]))
    out = capsys.readouterr().out
    assert f"CREATE SCHEMA IF NOT EXISTS mlops_{target}.marvel_characters" in out
    assert "serverless environment 4 (Python 3.12)" in out


def test_an_environment_version_the_wheel_refuses_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(MarvelError, match="use environment_version 3 or 4"):
        run(
            _compose(
                [f"paths.root={tmp_path}", "+env=prd", "env.preflight.environment_version=2", "dry_run=true"]
            )
        )


def test_an_empty_data_path_says_which_variable(run_marvel: Callable[..., RunResult]) -> None:
    with pytest.raises(MarvelError, match="bundle variable raw_data"):
        run_marvel("data=kaggle", "data.path=", fast=False)


def test_dry_run_plan_spark_and_local(tmp_path: Path) -> None:
    spark = "\n".join(plan_lines(_compose([f"paths.root={tmp_path}", "+env=spark"])))
    assert f"{tmp_path}/spark-warehouse/train_set" in spark
    assert "SparkCompute" in spark
    assert "(delta)" in spark
    local = "\n".join(plan_lines(_compose([f"paths.root={tmp_path}"])))
    assert f"{tmp_path}/lake/train_set" in local
    assert "PandasCompute" in local


@pytest.mark.slow
def test_prd_without_credentials_is_one_line(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "MARVEL_HOME": str(tmp_path),
        "DATABRICKS_CONFIG_FILE": str(tmp_path / "none"),
    }
    out = forked_marvel(["+env=prd"], cwd=REPO, env=env, logs=tmp_path / "logs")
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "DATABRICKS_HOST" in lines[0], out.stderr
    dry = forked_marvel(["+env=prd", "dry_run=true"], cwd=REPO, env=env, logs=tmp_path / "logs")
    assert dry.returncode == 0
    assert "mlops_prd.marvel_characters.train_set" in dry.stdout


def test_a_workspace_that_does_not_answer_is_one_line_at_once(
    marvel_main, refused_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow's and the SDK's clients would retry a refused host for minutes, silently."""
    port = refused_port
    monkeypatch.setenv("DATABRICKS_HOST", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-not-for-logs")
    for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    proc = marvel_main("+env=dev", "stages=[deploy]", "deploy=databricks")
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert f"the Databricks workspace 127.0.0.1:{port} (from environment) does not answer" in line
    assert "dapi-not-for-logs" not in proc.stdout + proc.stderr


def test_behind_a_proxy_the_direct_probe_is_not_asked(
    refused_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clients go through the proxy: a refused direct connection would say nothing about them."""
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert unreachable("127.0.0.1", refused_port) is not None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert unreachable("127.0.0.1", refused_port) is None


@pytest.mark.slow
def test_a_laptop_run_says_what_it_needs(tmp_path: Path) -> None:
    """+env=dev on a laptop: credentials are there, Spark is not: one line says what a run needs."""
    env = {
        "PATH": "/usr/bin:/bin",
        "MARVEL_HOME": str(tmp_path),
        "DATABRICKS_HOST": "https://127.0.0.1:9",  # never contacted: the check comes first
        "DATABRICKS_TOKEN": "x",
    }
    out = forked_marvel(["+env=dev", "stages=[process,train]"], cwd=REPO, env=env, logs=tmp_path / "logs")
    assert out.returncode != 0
    (line,) = out.stderr.strip().splitlines()
    assert "databricks bundle run -t dev deployment" in line
    assert "pip install databricks-connect" in line
    assert "marvel wheel installed on that cluster" in line


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
