"""The local monitor on real Delta tables: parsing, incremental refresh, labels and quality, alerts, report."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from marvel.core.schemas import InferenceLog
from marvel.core.tables import DeltaTableStore
from marvel.monitoring.alerts import DriftAlert
from marvel.monitoring.monitor import LocalMonitor
from marvel.monitoring.parse import payload_to_monitoring
from marvel.monitoring.payload import inference_rows, raw_to_records, synthetic_stream, synthetic_train_set
from marvel.monitoring.quality import cbpe, classification
from marvel.monitoring.schemas import ALL_MODELS, TABLE_COLUMN, DriftMetrics, ModelMonitoring, ProfileMetrics

T0 = pd.Timestamp("2025-03-01 00:00")
STEP = pd.Timedelta(minutes=30)
TABLES = ["model_monitoring", "model_monitoring_profile_metrics", "model_monitoring_drift_metrics"]


@pytest.fixture(scope="module")
def baseline() -> pd.DataFrame:
    return synthetic_train_set(n=6000)


@pytest.fixture
def store(tmp_path: Path, baseline: pd.DataFrame) -> DeltaTableStore:
    s = DeltaTableStore(tmp_path / "lake")
    s.write("train_set", baseline)
    return s


def ctx(store: DeltaTableStore, out: Path | None = None) -> SimpleNamespace:
    return SimpleNamespace(store=store, out_dir=out)


def monitor(**kw) -> LocalMonitor:
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[1] / "conf/monitor/local.yaml"))
    cfg.pop("_target_")
    return LocalMonitor(**{**cfg, **kw})


# --------------------------------------------------------------------------------------------- parsing
def test_one_monitoring_row_per_record_sent_with_features_and_predictions() -> None:
    payload, raw = synthetic_stream(2, 120, T0, STEP, batch_size=25)
    rows = payload_to_monitoring(payload)
    ModelMonitoring.validate(rows)
    assert len(rows) == 240 == len(raw)
    sent = raw_to_records(raw)
    assert rows["Id"].tolist() == sent["Id"].tolist()
    np.testing.assert_array_equal(rows["Height"].to_numpy(), sent["Height"].to_numpy(dtype=float))
    assert rows["Universe"].tolist() == sent["Universe"].tolist()
    assert rows["record_index"].max() == 24
    assert (rows["record_index"] == 0).sum() == len(payload)
    answers = [json.loads(r)["predictions"] for r in payload["response"]]
    assert rows["prediction"].tolist() == [p for a in answers for p in a["Survival prediction"]]
    assert rows["probability"].tolist() == [p for a in answers for p in a["Probability alive"]]
    assert set(rows["model_id"]) == {"marvel_character_model_custom/1"}
    assert rows["label"].isna().all()


def test_failed_requests_score_nothing_and_other_body_shapes_parse() -> None:
    rec = pd.DataFrame(
        [{"Id": "x1", "Height": 1.8, "Weight": None, "Universe": "Earth-616", "Gender": " Male "}]
    )
    good = inference_rows(rec, np.array([0.9]), np.array([1_700_000_000_000]))
    split = good.copy()
    split["databricks_request_id"] = "split-1"
    split["request"] = json.dumps(
        {"dataframe_split": {"columns": ["Id", "Height (m)"], "data": [["x2", 2.0]]}}
    )
    failed = good.copy()
    failed["databricks_request_id"] = "failed-1"
    failed["status_code"] = 400
    failed["response"] = json.dumps({"error_code": "BAD_REQUEST"})
    rows = payload_to_monitoring(InferenceLog.validate(pd.concat([good, split, failed], ignore_index=True)))
    assert rows["Id"].tolist() == ["x1", "x2"]  # the 400 is not a scored record
    assert rows.loc[0, "Gender"] == "Male"  # trimmed, as the model sees it
    assert rows.loc[1, "Height"] == 2.0  # Kaggle column names are renamed


def test_payload_without_marvel_model_columns_still_parses() -> None:
    payload, _ = synthetic_stream(1, 10, T0, STEP, batch_size=5)
    rows = payload_to_monitoring(
        payload.drop(columns=["served_model_name", "served_model_version", "variant"])
    )
    assert len(rows) == 10
    assert set(rows["model_id"]) == {"unknown/unknown"}
    assert set(rows["variant"]) == {"A"}  # from the answer's "variant"


def test_ab_answers_give_each_record_its_variant_and_version() -> None:
    rec = pd.DataFrame([{"Id": f"r{i}", "Height": 1.7} for i in range(3)])
    row = inference_rows(rec, np.array([0.6, 0.4, 0.8]), np.array([1_700_000_000_000] * 3))
    answer = json.loads(row.loc[0, "response"])
    answer.update(variant="A,B", variants=["A", "B", "A"])
    row["response"] = json.dumps(answer)
    row["variant"], row["served_model_version"] = "A,B", "3,4"
    rows = payload_to_monitoring(row)
    assert rows["variant"].tolist() == ["A", "B", "A"]
    assert rows["model_id"].tolist() == [f"marvel_character_model_custom/{v}" for v in ("3", "4", "3")]


# --------------------------------------------------------------------------------------------- refresh
def test_refresh_builds_the_tables_by_window(store: DeltaTableStore) -> None:
    payload, _ = synthetic_stream(4, 150, T0, STEP)
    store.write("custom_model_payload", payload)
    res = monitor().refresh(ctx(store))
    assert res["rows_added"] == 600
    assert res["windows"] == 4
    assert res["rebuilt"]
    assert len(store.read("model_monitoring")) == 600
    prof = ProfileMetrics.validate(store.read("model_monitoring_profile_metrics"))
    table_rows = prof[(prof["column_name"] == TABLE_COLUMN) & (prof["model_id"] == ALL_MODELS)]
    assert table_rows["count"].tolist() == [150] * 4
    assert sorted(table_rows["window_start"]) == [T0 + STEP * i for i in range(4)]
    height = prof[prof["column_name"] == "Height"].iloc[0]
    assert height["count"] == 150
    assert 0 < height["num_nulls"] < 150
    drift = DriftMetrics.validate(store.read("model_monitoring_drift_metrics"))
    kinds = drift.groupby("drift_type")["window_start"].nunique().to_dict()
    assert kinds == {"BASELINE": 4, "CONSECUTIVE": 3}  # the first window has no previous window
    # prediction/probability are not in train_set: consecutive drift only
    assert set(drift[drift["column_name"] == "probability"]["drift_type"]) == {"CONSECUTIVE"}


def test_refresh_twice_changes_nothing(store: DeltaTableStore) -> None:
    payload, _ = synthetic_stream(3, 100, T0, STEP)
    store.write("custom_model_payload", payload)
    mon = monitor()
    mon.refresh(ctx(store))
    names = [*TABLES, "model_monitoring_state"]
    before = {n: (store.version(n), store.read(n)) for n in names}
    res = mon.refresh(ctx(store))
    assert res["rows_added"] == 0
    assert res["windows_refreshed"] == 0
    for n in names:
        assert store.version(n) == before[n][0], f"{n} was written again"
        pd.testing.assert_frame_equal(store.read(n), before[n][1])


def test_new_rows_only_change_their_windows(store: DeltaTableStore) -> None:
    first, _ = synthetic_stream(3, 100, T0, STEP)
    store.write("custom_model_payload", first)
    mon = monitor()
    mon.refresh(ctx(store))
    old = {n: store.read(n) for n in TABLES[1:]}
    later, _ = synthetic_stream(2, 100, T0 + STEP * 3, STEP, first_partition=3)
    store.write("custom_model_payload", later, mode="append")
    res = mon.refresh(ctx(store))
    assert res["rows_added"] == 200  # only the new rows were read (change data feed)
    assert len(store.read("model_monitoring")) == 500
    for name, before in old.items():
        after = store.read(name)
        kept = after[after["window_start"] < T0 + STEP * 3].reset_index(drop=True)
        pd.testing.assert_frame_equal(kept, before.reset_index(drop=True))
        assert after["window_start"].nunique() == 5
    # the first new window is compared with the last old one
    drift = store.read("model_monitoring_drift_metrics")
    cons = drift[(drift["drift_type"] == "CONSECUTIVE") & (drift["window_start"] == T0 + STEP * 3)]
    assert (cons["window_cmp_start"] == T0 + STEP * 2).all()
    assert len(cons) > 0


def test_requests_seen_before_are_not_counted_twice(store: DeltaTableStore) -> None:
    # a commit read twice (the table grew between reading its version and its change feed) adds nothing
    payload, _ = synthetic_stream(2, 100, T0, STEP)
    store.write("custom_model_payload", payload)
    mon = monitor()
    mon.refresh(ctx(store))
    store.write("custom_model_payload", payload.iloc[:2], mode="append")
    res = mon.refresh(ctx(store))
    assert res["rows_added"] == 0
    assert len(store.read("model_monitoring")) == 200


def test_incremental_equals_a_full_rebuild(store: DeltaTableStore, tmp_path: Path, baseline) -> None:
    a, _ = synthetic_stream(2, 100, T0, STEP)
    b, _ = synthetic_stream(2, 100, T0 + STEP * 2, STEP, first_partition=2)
    store.write("custom_model_payload", a)
    monitor().refresh(ctx(store))
    store.write("custom_model_payload", b, mode="append")
    monitor().refresh(ctx(store))
    fresh = DeltaTableStore(tmp_path / "fresh")
    fresh.write("train_set", baseline)
    fresh.write("custom_model_payload", pd.concat([a, b]))
    monitor().refresh(ctx(fresh))
    for name in TABLES[1:]:
        pd.testing.assert_frame_equal(store.read(name), fresh.read(name))


# --------------------------------------------------------------------------------------------- labels, quality
def test_late_labels_add_quality_to_their_windows_only(store: DeltaTableStore) -> None:
    payload, raw = synthetic_stream(3, 200, T0, STEP)
    store.write("custom_model_payload", payload)
    mon = monitor()
    mon.refresh(ctx(store))
    prof = store.read("model_monitoring_profile_metrics")
    t = prof[prof["column_name"] == TABLE_COLUMN]
    assert t["accuracy_score"].isna().all()  # no labels yet
    assert t["estimated_accuracy_score"].between(0.5, 1).all()  # CBPE needs none
    # labels arrive for the first window only
    first = raw.iloc[:200]
    store.write(
        "labels",
        pd.DataFrame(
            {
                "Id": first["PageID"],
                "label": (first["Alive"] == "Alive").astype(int),
                "labelled_at": T0 + STEP * 10,
            }
        ),
    )
    res = mon.refresh(ctx(store))
    assert res["rows_added"] == 0
    assert res["windows_refreshed"] == 1
    rows = store.read("model_monitoring")
    assert rows["label"].notna().sum() == 200
    prof = store.read("model_monitoring_profile_metrics")
    t = prof[prof["column_name"] == TABLE_COLUMN].set_index("window_start")
    w0 = rows[rows["label"].notna()]
    pred = (w0["prediction"] == "alive").astype(int)
    assert t.loc[T0, "accuracy_score"] == pytest.approx(accuracy_score(w0["label"], pred))
    assert t.loc[T0, "f1_score"] == pytest.approx(f1_score(w0["label"], pred))
    assert t.loc[T0, "labelled_count"] == 200
    assert t.loc[T0 + STEP, "accuracy_score"] != t.loc[T0 + STEP, "accuracy_score"]  # still NaN


def test_cbpe_estimates_accuracy_of_a_calibrated_model() -> None:
    rng = np.random.default_rng(3)
    p = rng.beta(2, 1.2, 20000)
    y = (rng.random(len(p)) < p).astype(int)  # labels drawn from the probabilities: calibrated
    pred = (p >= 0.5).astype(int)
    est = cbpe(pred, p)
    real = classification(y, pred, p)
    assert est["estimated_accuracy_score"] == pytest.approx(real["accuracy_score"], abs=0.01)
    assert est["estimated_f1_score"] == pytest.approx(real["f1_score"], abs=0.01)


# --------------------------------------------------------------------------------------------- alerts, stage
def test_alerts_name_the_drifted_columns_in_the_drifted_windows(
    store: DeltaTableStore, tmp_path: Path
) -> None:
    clean, _ = synthetic_stream(4, 200, T0, STEP, seed=11)
    drifted, _ = synthetic_stream(
        4,
        200,
        T0 + STEP * 4,
        STEP,
        seed=11,
        first_partition=4,
        drift={"height_scale": 1.5, "universe_shares": {"Earth-616": 0.8}},
    )
    store.write("custom_model_payload", pd.concat([clean, drifted]))
    res = monitor().refresh(ctx(store, tmp_path / "out"))
    fired = {(a.column_name, a.window_start) for a in res["alerts"]}
    for w in range(4, 8):
        assert ("Height", T0 + STEP * w) in fired
        assert ("Universe", T0 + STEP * w) in fired
    assert not {c for c, w in fired if w < T0 + STEP * 4}, "an undrifted window alerted"
    assert "Height" in res["summary"]
    assert "Universe" in res["summary"]
    # the report: one HTML page with its plots embedded
    card = res["card"]
    html = card.html()
    assert html.count("data:image/png;base64") == 3
    assert "Quality per window" in html
    assert all(p.exists() for p in card.images)


def test_per_column_override_and_disabled_column(store: DeltaTableStore) -> None:
    drifted, _ = synthetic_stream(2, 200, T0, STEP, drift={"height_scale": 2.0})
    store.write("custom_model_payload", drifted)
    rules = monitor().rules | {"columns": {"Height": None}}
    res = monitor(alerts=rules).refresh(ctx(store))
    assert "Height" not in {a.column_name for a in res["alerts"]}


def test_stage_prints_alerts_and_fails_only_when_asked(marvel_home: Path, run_marvel, capsys) -> None:
    store = DeltaTableStore(marvel_home / "lake")
    store.write("train_set", synthetic_train_set(n=6000))
    payload, _ = synthetic_stream(2, 200, T0, STEP, drift={"height_scale": 2.0})
    store.write("custom_model_payload", payload)
    out = run_marvel("stages=[monitor]")
    assert out.monitor.alerts
    assert Path(out.monitor.report).is_file()
    printed = capsys.readouterr().out
    assert "drift alert:" in printed
    assert "Height" in printed
    with pytest.raises(DriftAlert, match="Height") as err:
        run_marvel("stages=[monitor]", "monitor.fail_on_alert=true")
    assert err.value.exit_code == 3


def test_no_inference_table_is_not_an_error(store: DeltaTableStore) -> None:
    res = monitor().refresh(ctx(store))
    assert res["alerts"] == []
    assert "does not exist yet" in res["summary"]
