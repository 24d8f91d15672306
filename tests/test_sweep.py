"""Sweeps and reproducibility, against MLflow on SQLite: parent and child runs, ranking, honest selection,
exact replay."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow
import pandas as pd
import pytest
import spy_features
from conftest import with_mlflow_db
from mlflow import MlflowClient
from processes import WARM

from marvel.core.catalog import TRAIN_SET
from marvel.core.tables import DeltaTableStore
from marvel.stages.train import log_table_input
from marvel.training.selection import cross_validate

pytestmark = pytest.mark.slow
TOKEN = "sweep-s3cret-0451"


def test_replay_reproduces_metrics_exactly(run_marvel) -> None:
    first = run_marvel("features=marvel", "model.params.n_estimators=40")
    again = run_marvel(f"+replay={first.run_id}")
    assert again.run_id != first.run_id
    assert again.train.metrics == first.train.metrics  # to the last digit
    tags = MlflowClient().get_run(again.run_id).data.tags
    assert tags["replay_of"] == first.run_id


def test_replay_of_unknown_run_is_a_user_error(marvel_main, marvel_home: Path, mlflow_db: Path) -> None:
    with_mlflow_db(marvel_home, mlflow_db)  # a home that has runs, not one whose database the lookup creates
    proc = marvel_main("+replay=0123456789abcdef")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "cannot replay run 0123456789abcdef" in proc.stderr


def test_cv_selection_never_touches_test_rows(run_marvel, marvel_home: Path) -> None:
    run_marvel("stages=[process]")
    spy_features.SEEN.clear()
    res = run_marvel(
        "stages=[train]", "train.mode=cv", "cv.folds=3", "features._target_=spy_features.SpyProcessor"
    )
    store = DeltaTableStore(marvel_home / "lake")
    test_ids = set(store.read("test_set")["Id"])
    train_ids = set(store.read("train_set")["Id"])
    assert spy_features.SEEN
    assert train_ids >= spy_features.SEEN
    assert not spy_features.SEEN & test_ids
    cv = res.train.cv
    assert cv["cv_roc_auc_std"] > 0
    assert 0.4 < cv["cv_roc_auc_mean"] < 1.0
    run = MlflowClient().get_run(res.run_id)
    assert {d.dataset.name.split("@")[0] for d in run.inputs.dataset_inputs} == {"train_set"}
    assert "roc_auc" not in run.data.metrics  # no test metric in a selection run


def test_cross_validate_folds_partition_the_rows() -> None:
    seen_val: list[int] = []

    class Probe:
        def fit(self, X: pd.DataFrame, y: object) -> Probe:
            return self

        def predict_proba(self, X: pd.DataFrame):
            import numpy as np

            seen_val.extend(X.index)
            return np.tile([0.3, 0.7], (len(X), 1))

    X = pd.DataFrame({"a": range(50)})
    y = pd.Series([0, 1] * 25).to_numpy()
    folds = cross_validate(lambda: Probe(), X, y, folds=5, seed=0)
    assert sorted(seen_val) == list(range(50))  # every row validated exactly once
    assert len(folds["model"]["roc_auc"]) == 5


def test_sweep_parent_children_summary_and_selection(cli, marvel_home: Path) -> None:
    proc = cli(
        "-m",
        "data.n_rows=1500",
        "model.params.n_estimators=30",
        "cv.folds=3",
        "model.params.max_depth=1,3",
        "hydra.launcher.n_jobs=2",
        f"deploy.token={TOKEN}",  # a secret given to a sweep is written nowhere
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sweep summary, ranked by cross-validated roc_auc" in proc.stdout
    assert TOKEN not in proc.stdout + proc.stderr
    leaked = [p for p in marvel_home.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert leaked == []
    client = MlflowClient(tracking_uri=f"sqlite:///{marvel_home}/mlflow.db")
    exp = client.get_experiment_by_name("marvel-characters")
    parents = client.search_runs([exp.experiment_id], "tags.sweep = 'true'")
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    jobs = [c for c in children if c.data.tags.get("sweep_role") == "job"]
    selected = [c for c in children if c.data.tags.get("sweep_role") == "selected"]
    assert sorted(j.data.params["model.max_depth"] for j in jobs) == ["1", "3"]
    assert all("cv_roc_auc_mean" in j.data.metrics and "roc_auc" not in j.data.metrics for j in jobs)
    # one processing shared by both jobs
    assert sum("process_reused_from" in j.data.tags for j in jobs) == 1

    # the summary ranks by cv mean, and the selected run is the winner fitted once and scored on the test set
    csv = Path(client.download_artifacts(parent.info.run_id, "sweep_summary.csv"))
    table = pd.read_csv(csv)
    assert list(table["cv_mean"]) == sorted(table["cv_mean"], reverse=True)
    best = max(jobs, key=lambda j: j.data.metrics["cv_roc_auc_mean"])
    assert table.iloc[0]["run_id"] == best.info.run_id
    assert len(selected) == 1
    assert selected[0].data.params["model.max_depth"] == best.data.params["model.max_depth"]
    assert "roc_auc" in selected[0].data.metrics
    assert parent.data.metrics["selected_test_roc_auc"] == selected[0].data.metrics["roc_auc"]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"sweep_summary.csv", "sweep_summary.png"} <= artifacts


def _log_tables_in_step(db: str, lake: str, barrier: Any, rounds: int, errors: Any) -> None:
    """One parallel sweep job: a run that logs table versions as inputs, each at the same moment as the other
    job (the barrier), as two jobs that processed the same data do."""
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    mlflow.set_experiment("race")
    ctx = SimpleNamespace(store=DeltaTableStore(lake))
    frame = pd.DataFrame({"x": [1.5, 2.5], "Alive": [0, 1]})
    with mlflow.start_run():
        for version in range(rounds):
            barrier.wait(timeout=60)
            try:
                log_table_input(ctx, TRAIN_SET, frame, version, "training")  # type: ignore[arg-type]
            except Exception as exc:  # reported to the test, which fails on it
                errors.put(f"{type(exc).__name__}: {str(exc)[:300]}")


def test_parallel_jobs_logging_the_same_table_version_both_succeed(tmp_path: Path) -> None:
    """MLflow's SQL store looks a dataset up and then inserts it: two jobs logging the same table version at
    once race to the insert, and the loser got a UNIQUE-constraint error that failed its sweep job."""
    context = WARM  # two real processes, forked warm (a spawned interpreter spends ~5 s importing MLflow)
    db = tmp_path / "mlflow.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiment = client.create_experiment("race")  # the schema exists before the jobs start, as in a sweep
    barrier, errors, rounds = context.Barrier(2), context.Queue(), 10  # without the fix, every round failed
    jobs = [
        context.Process(
            target=_log_tables_in_step, args=(str(db), str(tmp_path / "lake"), barrier, rounds, errors)
        )
        for _ in range(2)
    ]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(timeout=300)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert failures == []
    assert [job.exitcode for job in jobs] == [0, 0]
    runs = client.search_runs([experiment])
    assert len(runs) == 2
    for run in runs:  # every version is an input of both runs, one dataset each
        names = sorted(d.dataset.name for d in run.inputs.dataset_inputs)
        assert names == sorted(f"train_set@v{v}" for v in range(rounds))
