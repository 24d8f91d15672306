"""The training lifecycle as a user walks it: lineage in the registry, no duplicate versions, replays,
failures that close what they opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from mlflow import MlflowClient

from marvel.core.errors import MarvelError

pytestmark = pytest.mark.slow

BASIC = "marvel_character_model_basic"
CUSTOM = "marvel_character_model_custom"


def _client(home: Path) -> MlflowClient:
    uri = f"sqlite:///{home}/mlflow.db"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.mark.real_data
def test_a_synthetic_model_never_displaces_a_real_data_champion(
    run_marvel, marvel_home: Path, real_data: Path
) -> None:
    real = run_marvel("data=kaggle", f"data.path={real_data}", "model.params.n_estimators=60", fast=False)
    assert real.train.promotion.promoted
    synthetic = run_marvel()
    p = synthetic.train.promotion
    assert not p.promoted
    assert "generated data" in p.reason
    assert "real data" in p.reason
    assert p.reason in synthetic.summary()
    client = _client(marvel_home)
    champion = client.get_model_version_by_alias(CUSTOM, "latest-model")
    assert str(champion.version) == real.train.promotion.custom_version
    assert champion.tags["lineage.kind"] == "real"
    assert champion.tags["lineage.key"] == f"kaggle:{real_data.name}"
    assert champion.tags["lineage.version"].startswith("sha256:")
    newest = client.get_model_version_by_alias(CUSTOM, "challenger")  # still registered, as the challenger
    assert str(newest.version) == p.custom_version
    assert newest.tags["lineage.kind"] == "generated"
    assert {"train_set_version", "test_set_version", "fingerprint"} <= set(newest.tags)


def test_the_same_config_on_the_same_data_adds_no_version(trained: Path, run_marvel) -> None:
    again = run_marvel()
    p = again.train.promotion
    assert p.unchanged
    assert p.reason.startswith("unchanged: v1")
    assert {str(v.version) for v in _client(trained).search_model_versions(f"name = '{BASIC}'")} == {"1"}
    assert again.train.metrics["roc_auc"] > 0.5  # the registered version's test metrics are reported
    forced = run_marvel("train.force=true")
    assert forced.train.promotion.basic_version == "2"


def test_drifted_generated_data_is_a_new_lineage(trained: Path, run_marvel) -> None:
    drifted = run_marvel("data.drift.height_scale=1.5").train.promotion
    assert not drifted.promoted
    assert "promotion.allow_new_lineage=true" in drifted.reason
    assert str(_client(trained).get_model_version_by_alias(CUSTOM, "latest-model").version) == "1"


def test_replay_applies_key_overrides_and_refuses_group_choices(trained: Path, run_marvel) -> None:
    first = _client(trained).search_runs(["1"], "tags.promoted = 'true'")[0]
    replayed = run_marvel(f"+replay={first.info.run_id}", "model.params.n_estimators=5")
    run = _client(trained).get_run(replayed.run_id)
    assert run.data.tags["replay_of"] == first.info.run_id
    assert run.data.tags["replay_overrides"] == "model.params.n_estimators=5"
    assert run.data.params["model.n_estimators"] == "5"
    with pytest.raises(MarvelError, match="group choice model=logistic"):
        run_marvel(f"+replay={first.info.run_id}", "model=logistic", fast=False)


def test_a_missing_csv_fails_before_any_mlflow_run(marvel_main, marvel_home: Path, tmp_path: Path) -> None:
    proc = marvel_main("data=kaggle", f"data.path={tmp_path}/nope.csv")
    assert proc.returncode == 2
    assert "data file not found" in proc.stderr
    assert not (marvel_home / "mlflow.db").exists()


def test_a_failed_sweep_leaves_no_run_running(cli, marvel_home: Path) -> None:
    proc = cli(
        "-m",
        "data.n_rows=1000",
        "model.params.n_estimators=10",
        "cv.folds=2",
        "model.params.num_leaves=7,-5",  # LightGBM refuses a negative leaf count while fitting
        "hydra/launcher=basic",
        timeout=600,
    )
    assert proc.returncode != 0
    with sqlite3.connect(marvel_home / "mlflow.db") as db:
        statuses = dict(db.execute("select run_uuid, status from runs").fetchall())
        parents = [
            r for (r,) in db.execute("select run_uuid from tags where key = 'sweep' and value = 'true'")
        ]
    assert "RUNNING" not in statuses.values()
    assert len(parents) == 1
    assert statuses[parents[0]] == "FAILED"
