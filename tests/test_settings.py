"""The config's schema: every shipped option passes it, and a typo, a wrong type or a value out of range
exits 2 with one line naming the key (and the nearest valid one) before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from marvel.core import settings
from marvel.core.config import CONFIG_DIR
from marvel.core.errors import MarvelError

# Databricks' deployers and monitor need a Databricks env (its catalog); they are checked with one below
OPTIONS = [
    f"{group}={path.stem}" if group != "env" else f"+env={path.stem}"
    for group in settings.GROUPS
    for path in sorted((CONFIG_DIR / group).glob("*.yaml"))
    if not (group in ("deploy", "monitor") and path.stem.startswith("databricks"))
]
EXPERIMENTS = [f"+experiment={p.stem}" for p in sorted((CONFIG_DIR / "experiment").glob("*.yaml"))]


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@pytest.mark.parametrize("option", OPTIONS + EXPERIMENTS)
def test_every_shipped_option_fits_the_schema(option: str) -> None:
    settings.check(_compose(option))


@pytest.mark.slow
def test_databricks_envs_with_their_ab_deploy_fit_the_schema() -> None:
    for env in ("dev", "acc", "prd"):
        settings.check(_compose(f"+env={env}", "deploy=databricks_ab"))
        settings.check(_compose(f"+env={env}", "deploy=databricks", "monitor=databricks"))


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["+deploy.prot=9", "stages=[deploy]"], "deploy.prot is not a key of deploy"),
        (["+monitor.granularty=1h"], "did you mean monitor.granularity?"),
        (["+deploy.prot=9"], "did you mean deploy.port?"),
        (["deploy.port=70000"], "deploy.port must be between 0 and 65535, got 70000"),
        (["deploy.port=abc"], "deploy.port must be an integer, got 'abc'"),
        (["split.test_size=2"], "split.test_size must be between 0.01 and 0.99"),
        (["train.mode=cvv"], "train.mode must be one of 'fit', 'cv'"),
        (["+promotion.alow_new_lineage=true"], "did you mean promotion.allow_new_lineage?"),
        (["+sed=1"], "did you mean seed?"),
        (["model=logistic", "+model.params.max_iters=5"], "did you mean model.params.max_iter?"),
        # LightGBM takes any keyword, its own parameter names; those its signature names are still checked
        (["model.params.learning_rate=abc"], "model.params.learning_rate must be a number, got 'abc'"),
        (
            ["data._target_=marvel.core.sources.DataSource"],
            "Error in call to target 'marvel.core.sources.DataSource'; TypeError('DataSource() takes no arguments')",
        ),
        (
            ["+stage_runners.count=nope.run", "stages=[count]"],
            "stage_runners.count nope.run cannot be imported (Error loading 'nope.run'; ModuleNotFoundError",
        ),
        (
            ["model.estimator._target_=sklearn.ensemble.Nope"],
            "sklearn.ensemble.Nope cannot be imported (Error loading 'sklearn.ensemble.Nope'; ModuleNotFoundError",
        ),
        (["+env.tables=[raw]"], "env.tables is gone"),
    ],
)
def test_a_bad_key_or_value_is_one_line_naming_it(marvel_main, overrides: list[str], expected: str) -> None:
    proc = marvel_main(*overrides)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0]


def test_a_target_that_cannot_be_imported_is_said_once(marvel_main) -> None:
    """Hydra logs an ERROR for each failed lookup; the check's one line is all that is printed."""
    proc = marvel_main("model.estimator._target_=sklearn.ensemble.Nope")
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(
        "Are you sure that 'Nope' is importable from module 'sklearn.ensemble'?)"
    )
    assert "Error getting" not in proc.stdout + proc.stderr


def test_nothing_runs_before_the_check(marvel_main, marvel_home: Path) -> None:
    proc = marvel_main("+monitor.granularty=1h")
    assert proc.returncode == 2
    assert not (marvel_home / "mlflow.db").exists()
    assert not (marvel_home / "lake").exists()


def test_help_lists_every_group_and_one_groups_keys(marvel_main) -> None:
    everything = marvel_main("--help").stdout
    for group in settings.GROUPS:
        assert f"\n{group}" in everything
    deploy = marvel_main("--help", "deploy").stdout
    assert deploy.startswith("deploy=local (marvel.serving.deployer.LocalDeployer)")
    port = next(line for line in deploy.splitlines() if line.strip().startswith("port "))
    assert "8080" in port
    assert "0..65535" in port
    assert "0 picks a free port" in port
    assert "deploy=ab" in marvel_main("--help", "deploy", "deploy=ab").stdout.splitlines()[0]


def test_a_direct_check_names_the_key() -> None:
    with pytest.raises(MarvelError, match=r"monitor\.granularty"):
        settings.check(_compose("+monitor.granularty=1h"))
