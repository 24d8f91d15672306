"""The Spark backend in local mode: the same answers as pandas, row for row.

One SparkSession for the whole test session (starting the JVM costs seconds); every test uses small data.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from marvel.core.quarantine import to_split_rows, validate_rows
from marvel.core.schemas import INPUT_COLUMNS, TARGET
from marvel.data.synthetic.source import SyntheticSource
from marvel.features.marvel import MarvelProcessor

pytestmark = pytest.mark.spark
REPO = Path(__file__).resolve().parents[1]
SETTINGS: dict[str, Any] = {
    "master": "local[2]",
    "app_name": "marvel-tests",
    "conf": {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": True,
        "spark.sql.shuffle.partitions": 2,
        "spark.ui.enabled": False,
        "spark.ui.showConsoleProgress": False,
        "spark.driver.memory": "2g",
    },
}


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    pytest.importorskip("pyspark")
    from marvel.spark.session import get_spark

    session = get_spark(SETTINGS)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def compute(spark: Any) -> Any:
    from marvel.spark.compute import SparkCompute

    return SparkCompute(SETTINGS, rows_per_partition=1000)


@pytest.fixture(scope="session")
def split_rows() -> pd.DataFrame:
    raw = SyntheticSource(n_rows=3000, seed=7).load()
    rows, _ = validate_rows(raw, run_id="t")
    return rows


def test_processor_on_spark_equals_pandas(spark: Any, compute: Any, split_rows: pd.DataFrame) -> None:
    from marvel.spark.compute import plain

    processor = MarvelProcessor(random_state=0).fit(split_rows[INPUT_COLUMNS], split_rows[TARGET])
    expected = plain(processor.transform(split_rows[INPUT_COLUMNS])).reset_index(drop=True)
    # two partitions, several Arrow batches each: the processor runs per batch, order is kept
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "500")
    try:
        frame = spark.createDataFrame(split_rows[INPUT_COLUMNS])
        assert frame.rdd.getNumPartitions() >= 2
        got = compute.transform(processor, frame).toPandas()
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert len(got) == len(split_rows)


def test_validation_on_spark_equals_pandas(compute: Any) -> None:
    """Dirty rows in 3 generated partitions: the same valid rows and the same quarantined rows and reasons
    (empty PageIDs repeat across partitions: uniqueness is checked globally, as in one pandas frame)."""
    source = SyntheticSource(n_rows=3000, seed=11, dirty_rate=0.03)
    raw_spark = compute.load(source)
    assert raw_spark.rdd.getNumPartitions() == 3
    raw_pandas = pd.concat([source.generate(1000, 11, partition=p) for p in range(3)], ignore_index=True)
    pd.testing.assert_frame_equal(raw_spark.toPandas(), raw_pandas, check_dtype=False)

    rows_s, q_s = compute.validate(raw_spark, run_id="t")
    rows_p, q_p = validate_rows(raw_pandas, run_id="t")
    pd.testing.assert_frame_equal(rows_s, rows_p.reset_index(drop=True), check_dtype=False)
    assert len(q_p) == round(0.03 * 1000) * 3
    raw_q = q_p[q_p["table"] == "raw"].sort_values("row_index")
    assert q_s["row_index"].tolist() == raw_q["row_index"].tolist()
    for reason_s, reason_p in zip(q_s["reason"], raw_q["reason"], strict=True):
        assert set(reason_s.split("; ")) == set(reason_p.split("; "))
    assert q_s["record"].tolist() == raw_q["record"].tolist()


def test_batch_scoring_with_spark_udf_equals_pandas(
    spark: Any, compute: Any, split_rows: pd.DataFrame, tmp_path: Path
) -> None:
    import mlflow.sklearn
    from lightgbm import LGBMClassifier
    from sklearn.pipeline import Pipeline

    pipeline = Pipeline(
        [
            ("processor", MarvelProcessor(random_state=0)),
            ("model", LGBMClassifier(n_estimators=20, verbose=-1)),
        ]
    )
    X, y = split_rows[INPUT_COLUMNS], split_rows[TARGET]
    pipeline.fit(X, y)
    path = tmp_path / "model"
    mlflow.sklearn.save_model(
        pipeline,
        str(path),
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        pyfunc_predict_fn="predict_proba",
        code_paths=[str(REPO / "marvel")],
    )
    frame = spark.createDataFrame(X.head(500)).repartition(2)
    scored = compute.score(str(path), frame, column="proba", result_type="array<double>").toPandas()
    want = pipeline.predict_proba(scored[INPUT_COLUMNS])[:, 1]
    got = np.array([p[1] for p in scored["proba"]])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_spark_store_versions_and_changes(spark: Any, tmp_path: Path) -> None:
    from marvel.spark.store import SparkTableStore

    store = SparkTableStore(root=str(tmp_path / "wh"), format="parquet", spark=SETTINGS)
    a = pd.DataFrame({"x": [1, 2], "s": ["a", None]})
    b = pd.DataFrame({"x": [3], "s": ["c"]})
    assert store.version("t") is None
    assert store.write("t", a) == 0
    assert store.write("t", b, mode="append") == 1
    assert sorted(store.read("t")["x"]) == [1, 2, 3]
    assert sorted(store.read("t", version=0)["x"]) == [1, 2]
    assert store.changes("t", since_version=0)["x"].tolist() == [3]
    assert store.write("t", b) == 2  # overwrite: the table is now b only, and b's rows are the change
    assert store.read("t")["x"].tolist() == [3]
    assert store.changes("t", since_version=1)["x"].tolist() == [3]
    assert store.uri("t") == str((tmp_path / "wh" / "t").resolve())
    uc = SparkTableStore(catalog="mlops_prd", schema="marvel_characters", root="/ignored", spark=SETTINGS)
    assert uc.uri("train_set") == "mlops_prd.marvel_characters.train_set"


def test_monitoring_rows_on_spark_equal_local_parsing(spark: Any, tmp_path: Path) -> None:
    """The Databricks monitor parses the inference table per batch with the local monitor's function."""
    import json

    from marvel.databricks.monitor import DatabricksMonitor, gateway_to_inference_log
    from marvel.monitoring.parse import payload_to_monitoring
    from marvel.spark.compute import plain
    from marvel.spark.store import SparkTableStore

    records = to_split_rows(SyntheticSource(n_rows=40, seed=3).load())[INPUT_COLUMNS]
    payload = pd.DataFrame(
        {
            "databricks_request_id": [f"r{i}" for i in range(20)],
            "client_request_id": None,
            "request_date": pd.Timestamp("2026-11-26"),
            "request_time": pd.date_range("2026-11-26 10:00", periods=20, freq="7min"),
            "status_code": [200] * 19 + [500],
            "execution_duration_ms": 5,
            "request": [
                json.dumps({"dataframe_records": records.iloc[2 * i : 2 * i + 2].to_dict("records")})
                for i in range(20)
            ],
            "response": [json.dumps({"predictions": {"Survival prediction": ["alive", "dead"]}})] * 20,
            "served_entity_id": ["A", "B"] * 10,
        }
    )
    store = SparkTableStore(root=str(tmp_path / "wh"), format="parquet", spark=SETTINGS)
    store.write("custom_model_payload", payload)
    store.write(
        "labels",
        pd.DataFrame(
            {"Id": [records["Id"].iloc[0]], "label": [1], "labelled_at": pd.Timestamp("2026-11-27")}
        ),
    )
    entities = {
        "A": {"name": "m", "version": "3", "variant": "A"},
        "B": {"name": "m", "version": "4", "variant": "B"},
    }
    monitor = DatabricksMonitor(catalog="c", schema="s")
    got = (
        monitor.build_monitoring(store, entities)
        .toPandas()
        .sort_values(["databricks_request_id", "record_index"])
    )
    want = plain(payload_to_monitoring(gateway_to_inference_log(payload, entities))).sort_values(
        ["databricks_request_id", "record_index"]
    )
    assert len(got) == 38  # 19 successful requests x 2 records
    cols = [c for c in want.columns if c != "label"]
    pd.testing.assert_frame_equal(
        got[cols].reset_index(drop=True), want[cols].reset_index(drop=True), check_dtype=False
    )
    assert set(got["model_id"]) == {"m/3", "m/4"}
    assert got["label"].dropna().tolist() == ["alive"]  # labels in the prediction's vocabulary


@pytest.mark.slow
def test_env_spark_runs_process_and_train(tmp_path: Path) -> None:
    """`+env=spark` end to end in a fresh process: tables through Spark, the model in local MLflow."""
    home = tmp_path / "home"
    env = {**os.environ, "MARVEL_HOME": str(home)}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "marvel",
            "+env=spark",
            "data.n_rows=3000",
            "model.params.n_estimators=30",
            "stages=[process,train,score]",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "rows: raw 3000 = quarantined 0 + train 2400 + test 600" in out.stdout
    assert "scored 600 rows of test_set" in out.stdout  # batch scoring on the executors (spark_udf)
    warehouse = home / "spark-warehouse"
    for table in ("raw", "train_set", "test_set", "process_stats", "predictions"):
        assert (warehouse / table / "_marvel_log.json").is_file(), table
    with sqlite3.connect(home / "mlflow.db") as db:
        models = {r[0] for r in db.execute("select name from registered_models")}
        tags = dict(db.execute("select key, value from tags where key in ('env', 'promoted')").fetchall())
    assert {"marvel_character_model_basic", "marvel_character_model_custom"} <= models
    assert tags["env"] == "spark"
