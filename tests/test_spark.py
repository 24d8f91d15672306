"""The Spark backend on Spark Connect (what serverless jobs give): the same answers as pandas, row for row.

One local Spark Connect server for the whole test session (starting the JVM costs seconds); every test,
the in-process `+env=spark` run and the `SPARK_REMOTE` subprocess run use it. Every test uses small data.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable
from processes import forked_marvel

from marvel.core.quarantine import to_split_rows, validate_rows
from marvel.core.results import RunResult
from marvel.core.schemas import INPUT_COLUMNS, TARGET
from marvel.data.synthetic.source import SyntheticSource
from marvel.features.marvel import MarvelProcessor
from tests.uc import uc_check_every_version

# one Spark Connect server per test session: conftest's scheduling keeps this file on one xdist worker. Every
# test here waits on the JVM for seconds (its start alone is ~8 s): all of them are outside the fast loop.
pytestmark = [pytest.mark.spark, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]
SETTINGS: dict[str, Any] = {
    "remote": "local[2]",
    "app_name": "marvel-tests",
    "conf": {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": True,
        "spark.sql.shuffle.partitions": 2,
        "spark.ui.enabled": False,
        "spark.ui.showConsoleProgress": False,
        "spark.driver.memory": "2g",
        # a short-lived test JVM: the C1 compiler only and one GC thread spend less CPU than the defaults,
        # which are tuned for long jobs (the Spark file, alone: 109 s of CPU instead of 130)
        "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    },
}


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    from marvel.spark import session

    if os.environ.get("SPARK_REMOTE"):  # the tests themselves choose the session: one local server
        pytest.fail("unset SPARK_REMOTE to run the Spark tests (they start their own local Connect server)")
    spark = session.get_spark(SETTINGS)
    assert isinstance(spark, ConnectSession)  # Connect, as on serverless: no RDD API anywhere
    yield spark
    spark.stop()


@pytest.fixture(scope="session")
def compute(spark: Any) -> Any:
    from marvel.spark.compute import SparkCompute

    return SparkCompute(SETTINGS, rows_per_partition=1000)


@pytest.fixture(scope="session")
def split_rows() -> pd.DataFrame:
    raw = SyntheticSource(n_rows=3000, seed=7).load()
    rows, _ = validate_rows(raw, run_id="t")
    return rows


def _partitions(frame: Any) -> int:
    from pyspark.sql import functions as F

    return int(frame.select(F.spark_partition_id().alias("p")).distinct().count())


def test_processor_on_spark_equals_pandas(spark: Any, compute: Any, split_rows: pd.DataFrame) -> None:
    from marvel.spark.compute import plain

    processor = MarvelProcessor(random_state=0).fit(split_rows[INPUT_COLUMNS], split_rows[TARGET])
    expected = plain(processor.transform(split_rows[INPUT_COLUMNS])).reset_index(drop=True)
    # two partitions, several Arrow batches each: the processor runs per batch, order is kept
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "500")
    try:
        indexed = split_rows[INPUT_COLUMNS].assign(_i=range(len(split_rows)))
        frame = (
            spark.createDataFrame(indexed).repartitionByRange(2, "_i").sortWithinPartitions("_i").drop("_i")
        )
        assert _partitions(frame) == 2
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
    assert _partitions(raw_spark) == 3
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


def test_numeric_page_ids_from_a_table_are_ids(compute: Any, tmp_path: Path) -> None:
    """A Unity Catalog table of the Kaggle file types PageID as bigint: its rows are read as ids (and a
    repeated id is quarantined as such), not refused with a table-level schema error."""
    from marvel.data.table import TableSource

    raw = SyntheticSource(n_rows=200, seed=5).load()
    raw["PageID"] = np.arange(len(raw), dtype="int64") + 1000
    raw.loc[7, "PageID"] = 1000
    store = {
        "_target_": "marvel.spark.store.SparkTableStore",
        "root": str(tmp_path / "wh"),
        "spark": SETTINGS,
    }
    source = TableSource(store=store, name="raw_bigint")
    source.store.write("raw_bigint", raw)
    assert str(source.store.frame("raw_bigint").schema["PageID"].dataType) == "LongType()"
    rows, quarantined = compute.validate(compute.load(source), run_id="t")
    assert len(rows) == 198
    assert rows["Id"].iloc[0] == "1001"
    assert set(quarantined["reason"]) == {"PageID: '1000' fails field_uniqueness"}


def test_batch_scoring_with_spark_udf_equals_pandas(
    spark: Any, compute: Any, split_rows: pd.DataFrame, tmp_path: Path
) -> None:
    import mlflow.sklearn
    from lightgbm import LGBMClassifier
    from sklearn.pipeline import Pipeline

    from marvel.training.signature import basic_signature

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
        signature=basic_signature(),  # the registered model's: `any` columns must work in spark_udf too
        code_paths=[str(REPO / "marvel")],
    )
    frame = spark.createDataFrame(X.head(500)).repartition(2)
    scored = compute.score(str(path), frame, column="proba", result_type="array<double>").toPandas()
    want = pipeline.predict_proba(scored[INPUT_COLUMNS])[:, 1]
    got = np.array([p[1] for p in scored["proba"]])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_spark_store_keeps_real_delta_tables(spark: Any, tmp_path: Path) -> None:
    """Versions, time travel and the change feed are Delta's own: the folder is a Delta table any Delta reader
    opens, with Change Data Feed on, and Spark reads exactly the files of the version asked for."""
    from marvel.spark.store import SparkTableStore

    store = SparkTableStore(root=str(tmp_path / "wh"), spark=SETTINGS)
    a = pd.DataFrame({"x": [1, 2], "s": ["a", None], "at": pd.Timestamp("2026-01-02 03:04:05")})
    b = pd.DataFrame({"x": [3], "s": ["c"], "at": pd.Timestamp("2026-01-03")})
    assert store.version("t") is None
    assert store.write("t", a) == 0
    assert store.write("t", spark.createDataFrame(b), mode="append") == 1  # a Spark frame, as stages write
    assert sorted(store.read("t")["x"]) == [1, 2, 3]
    assert sorted(store.read("t", version=0)["x"]) == [1, 2]
    assert store.read("t", version=0)["at"].tolist() == [pd.Timestamp("2026-01-02 03:04:05")] * 2
    assert store.changes("t", since_version=0)["x"].tolist() == [3]
    assert store.write("t", b) == 2  # overwrite: the table is now b only, and b's rows are the change
    assert store.read("t")["x"].tolist() == [3]
    assert store.changes("t", since_version=1)["x"].tolist() == [3]
    table = DeltaTable(str(tmp_path / "wh" / "t"))
    assert table.version() == 2
    assert table.metadata().configuration["delta.enableChangeDataFeed"] == "true"
    assert [h["operation"] for h in table.history()][:3] == ["WRITE", "WRITE", "WRITE"]
    assert not list((tmp_path / "wh" / "t").glob("_marvel_log*"))
    assert store.uri("t") == str((tmp_path / "wh" / "t").resolve())
    # a raw Kaggle column name (spaces, parentheses) and an empty frame
    store.write("raw", pd.DataFrame({"Height (m)": [1.8], "Marital Status": ["Single"]}))
    assert store.read("raw").columns.tolist() == ["Height (m)", "Marital Status"]
    assert store.write("raw", pd.DataFrame({"Height (m)": pd.Series([], dtype="float64")})) == 1
    assert store.read("raw").empty
    uc = SparkTableStore(catalog="mlops_prd", schema="marvel_characters", root="/ignored", spark=SETTINGS)
    assert uc.uri("train_set") == "mlops_prd.marvel_characters.train_set"
    assert uc.dataset_source("train_set", 4).to_dict()["delta_table_name"] == uc.uri("train_set")


def test_a_catalog_that_cannot_take_the_schema_is_one_line(spark: Any) -> None:
    """CREATE SCHEMA IF NOT EXISTS before the first write; a catalog this Spark does not have (as a missing
    catalog, or one you may not create schemas in) is one line saying what to do."""
    from marvel.core.errors import MarvelError
    from marvel.spark.store import SparkTableStore

    store = SparkTableStore(catalog="mlops_prd", schema="marvel_characters", spark=SETTINGS)
    with pytest.raises(MarvelError, match=r"cannot create schema mlops_prd\.marvel_characters") as err:
        store.write("raw", pd.DataFrame({"x": [1]}))
    assert "ask a metastore admin" in str(err.value)
    assert len(str(err.value).splitlines()) == 1


def test_monitoring_rows_on_spark_equal_local_parsing(spark: Any, tmp_path: Path) -> None:
    """The Databricks monitor parses the inference table per batch with the local monitor's function; each
    record's model id is the one the served model reported in its answer."""
    from marvel.databricks.gateway import gateway_to_inference_log
    from marvel.databricks.monitor import DatabricksMonitor
    from marvel.monitoring.parse import payload_to_monitoring
    from marvel.spark.compute import plain
    from marvel.spark.store import SparkTableStore

    records = to_split_rows(SyntheticSource(n_rows=40, seed=3).load())[INPUT_COLUMNS]
    served = ["m/3", "m/4"] * 10
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
            "response": [
                json.dumps(
                    {"predictions": {"Survival prediction": ["alive", "dead"], "Served model": [s, s]}}
                )
                for s in served
            ],
            # an id the endpoint's config does not show: never joined to served-entity names
            "served_entity_id": ["0a1b", "2c3d"] * 10,
        }
    )
    store = SparkTableStore(root=str(tmp_path / "wh"), spark=SETTINGS)
    store.write("custom_model_payload", payload)
    store.write(
        "labels",
        pd.DataFrame(
            {"Id": [records["Id"].iloc[0]], "label": [1], "labelled_at": pd.Timestamp("2026-11-27")}
        ),
    )
    monitor = DatabricksMonitor(catalog="c", schema="s")
    got = monitor.build_monitoring(store).toPandas().sort_values(["databricks_request_id", "record_index"])
    want = plain(payload_to_monitoring(gateway_to_inference_log(payload))).sort_values(
        ["databricks_request_id", "record_index"]
    )
    assert len(got) == 38  # 19 successful requests x 2 records
    cols = [c for c in want.columns if c != "label"]
    pd.testing.assert_frame_equal(
        got[cols].reset_index(drop=True), want[cols].reset_index(drop=True), check_dtype=False
    )
    assert set(got["model_id"]) == {"m/3", "m/4"}
    assert got.set_index("databricks_request_id").loc["r1", "model_id"].tolist() == ["m/4", "m/4"]
    assert got["label"].dropna().tolist() == ["alive"]  # labels in the prediction's vocabulary


@pytest.fixture
def run_on_session(spark: Any, run_marvel: Callable[..., RunResult]) -> Callable[..., RunResult]:
    """`run_marvel` with +env=spark: the engine in this process, on the session's Connect server."""

    def _run(*overrides: str) -> RunResult:
        return run_marvel("+env=spark", "data.n_rows=3000", "model.params.n_estimators=30", *overrides)

    return _run


def test_env_spark_runs_process_train_score(
    run_on_session: Callable[..., RunResult], marvel_home: Path
) -> None:
    """`+env=spark` end to end: tables as Delta through Spark Connect, the models in local MLflow, each
    registrable in Unity Catalog, lineage to the Delta table versions."""
    result = run_on_session("stages=[process,train,score]")
    assert result.process is not None
    assert result.process.rows.line().startswith("rows: raw 3000 = quarantined 0 + train 2400 + test 600")
    assert result.results["score"].rows == 600  # batch scoring on the executors (spark_udf)
    warehouse = marvel_home / "spark-warehouse"
    for table in ("raw", "train_set", "test_set", "process_stats", "predictions"):
        assert DeltaTable.is_deltatable(str(warehouse / table)), table
    assert uc_check_every_version(marvel_home) == [
        "marvel_character_model_basic/1",
        "marvel_character_model_custom/1",
    ]
    with sqlite3.connect(marvel_home / "mlflow.db") as db:
        tags = dict(db.execute("select key, value from tags where key in ('env', 'promoted')").fetchall())
        sources = [json.loads(r[0]) for r in db.execute("select dataset_source from datasets")]
    assert tags["env"] == "spark"
    assert {s["path"] for s in sources} == {str(warehouse / "train_set"), str(warehouse / "test_set")}


def test_spark_remote_is_honoured_without_a_second_jvm(spark: Any, marvel_home: Path) -> None:
    """`SPARK_REMOTE=sc://...  python -m marvel +env=spark`: a real CLI run that connects to the session's
    Connect server (PySpark's own variable wins over env.spark.remote), so no second JVM starts."""
    from marvel.spark import session

    url = session.local_url()
    assert url is not None
    assert url.startswith("sc://localhost:")
    env = {**os.environ, "MARVEL_HOME": str(marvel_home), "SPARK_REMOTE": url}
    out = forked_marvel(
        ["+env=spark", "data.n_rows=1500", "stages=[process]"],
        cwd=REPO,
        env=env,
        logs=marvel_home.parent / "cli",
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "rows: raw 1500 = quarantined 0 + train 1200 + test 300" in out.stdout
    assert "Using Spark's default log4j profile" not in out.stderr, "a second JVM started"
    assert DeltaTable(str(marvel_home / "spark-warehouse" / "train_set")).version() == 0
