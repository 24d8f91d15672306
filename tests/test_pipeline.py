"""The whole training lifecycle end to end, against real MLflow (SQLite) and real Delta tables."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from marvel.core.tables import DeltaTableStore
from marvel.serving.examples import RAW_EXAMPLE, SOURCE_EXAMPLE

pytestmark = pytest.mark.slow

BASIC = "marvel_character_model_basic"
CUSTOM = "marvel_character_model_custom"


def test_default_run_end_to_end(run_marvel, marvel_home: Path) -> None:
    results = run_marvel()
    rows = results.process.rows
    assert rows.rows_raw == 2000
    assert rows.rows_raw == rows.rows_quarantined + rows.rows_train + rows.rows_test

    store = DeltaTableStore(marvel_home / "lake")
    for table in ("raw", "train_set", "test_set", "process_stats"):
        assert store.exists(table), table
    assert len(store.read("train_set")) == rows.rows_train
    # Change Data Feed is on, so the monitor can read only what is new
    from deltalake import DeltaTable

    assert DeltaTable(store.uri("train_set")).metadata().configuration["delta.enableChangeDataFeed"] == "true"

    client = MlflowClient()
    run = client.get_run(results.run_id)
    m = run.data.metrics
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"):
        assert name in m
        assert f"baseline_{name}" in m
    assert m["rows_raw"] == m["rows_quarantined"] + m["rows_train"] + m["rows_test"]
    assert m["baseline_roc_auc"] == 0.5
    assert {"git_sha", "branch", "job_run_id"} <= set(run.data.tags)
    assert run.data.params["model"] == "lightgbm_tuned"
    assert run.data.params["model.num_leaves"] == "7"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "plots", "cards"} <= artifacts
    plots = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"roc_curve.png", "confusion_matrix.png"} <= plots
    # lineage: the exact table versions read
    inputs = {d.dataset.name for d in run.inputs.dataset_inputs}
    assert inputs == {f"train_set@v{store.version('train_set')}", f"test_set@v{store.version('test_set')}"}

    # the registered pipeline takes character records: both the source platform's example and a raw record
    records = pd.DataFrame([SOURCE_EXAMPLE, RAW_EXAMPLE])
    basic = mlflow.sklearn.load_model(f"models:/{BASIC}@latest-model")
    proba = basic.predict_proba(records)
    assert proba.shape == (2, 2)
    assert np.allclose(proba.sum(axis=1), 1)
    custom = mlflow.pyfunc.load_model(f"models:/{CUSTOM}@latest-model")
    answer = custom.predict(records)
    assert set(answer["Survival prediction"]) <= {"alive", "dead"}
    assert len(answer["Survival prediction"]) == 2
    with_p = custom.predict(records, params={"return_probabilities": True})
    assert np.allclose(with_p["Probability alive"], proba[:, 1], atol=1e-6)
    assert str(client.get_model_version_by_alias(BASIC, "latest-model").version) == "1"
    assert results.train.promotion.promoted
    assert results.train.promotion.champion_version is None


def test_worse_challenger_is_not_promoted(trained: Path, run_marvel) -> None:
    client = MlflowClient(
        tracking_uri=f"sqlite:///{trained}/mlflow.db", registry_uri=f"sqlite:///{trained}/mlflow.db"
    )
    champion = client.get_model_version_by_alias(BASIC, "latest-model")
    assert str(champion.version) == "1"
    # a new model is a new class + config: here a constant predictor, which cannot beat the champion's AUC
    worse = run_marvel(
        "model.name=constant",
        "model.estimator._target_=sklearn.dummy.DummyClassifier",
        "~model.params",
        "+model.params.strategy=prior",
    )
    train = worse.train
    assert train.metrics["roc_auc"] == 0.5
    assert train.promotion.champion_metric == pytest.approx(float(champion.tags["roc_auc"]))
    assert not train.promotion.promoted
    client = MlflowClient()
    assert str(client.get_model_version_by_alias(BASIC, "latest-model").version) == "1"
    assert str(client.get_model_version_by_alias(CUSTOM, "latest-model").version) == "1"
    assert str(client.get_model_version_by_alias(BASIC, "challenger").version) == "2"
    assert client.get_run(worse.run_id).data.tags["promoted"] == "false"


def test_stages_run_separately_share_tables(run_marvel) -> None:
    processed = run_marvel("stages=[process]")
    assert processed.train is None
    trained = run_marvel("stages=[train]")
    # the train run accounts for the rows of the processing that made its tables
    assert trained.train.rows == processed.process.rows


def test_a_stage_is_a_module_and_one_config_line(trained: Path, run_marvel) -> None:
    """A user's stage (tests/user_stage.py, outside marvel) runs on the shared tables and is summarised."""
    result = run_marvel("+stage_runners.count=user_stage.run", "stages=[count]")
    (line,) = [s.strip() for s in result.summary().splitlines() if s.strip().startswith("count:")]
    train = DeltaTableStore(trained / "lake").read("train_set")
    assert line == f"count: {len(train)} training rows, {int(train['Alive'].sum())} alive"


def test_bad_rows_are_quarantined_and_counted(run_marvel, marvel_home: Path) -> None:
    results = run_marvel("data.dirty_rate=0.05")
    rows = results.process.rows
    assert rows.rows_quarantined > 0
    assert rows.rows_raw == rows.rows_quarantined + rows.rows_train + rows.rows_test
    q = DeltaTableStore(marvel_home / "lake").read("quarantine")
    assert len(q) == rows.rows_quarantined
    assert q["reason"].str.len().gt(0).all()
    assert (q["run_id"] == results.run_id).all()


@pytest.mark.real_data
def test_real_sample_marvel_features_beat_seed(run_marvel, real_data: Path) -> None:
    data = ["data=kaggle", f"data.path={real_data}"]
    seed = run_marvel(*data, "features=seed", fast=False).train
    ours = run_marvel(*data, fast=False).train
    rows = seed.rows
    assert rows.rows_raw == rows.rows_quarantined + rows.rows_train + rows.rows_test
    assert rows.rows_quarantined >= 2  # the sample's "Ghost" and "Unknown" characters, kept aside
    assert ours.metrics["roc_auc"] > seed.metrics["roc_auc"] + 0.03
    assert ours.metrics["log_loss"] < seed.metrics["log_loss"]
    assert ours.metrics["log_loss"] < ours.baseline["log_loss"]


def test_score_stage_writes_predictions_matching_the_model(trained: Path, run_marvel) -> None:
    res = run_marvel("stages=[score]")
    store = DeltaTableStore(trained / "lake")
    preds = store.read("predictions")
    test = store.read("test_set")
    assert res.score.rows == len(test) == len(preds)
    model = mlflow.sklearn.load_model(f"models:/{BASIC}@latest-model")
    expected = pd.Series(model.predict_proba(test)[:, 1], index=test["Id"])
    got = preds.set_index("Id")["probability_alive"]
    assert np.allclose(got.loc[expected.index], expected)
    assert set(preds["model_version"]) == {"1"}
