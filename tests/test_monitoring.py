"""The local monitor on real Delta tables and a real registered model: parsing, quarantine, incremental
refresh, labels and quality, alerts, report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable
from monitoring_helpers import STEP, T0, TABLES, ctx, monitor, scorer, table, use_registry
from sklearn.metrics import accuracy_score, f1_score

from marvel.core.errors import MarvelError
from marvel.core.schemas import InferenceLog
from marvel.core.tables import DeltaTableStore
from marvel.monitoring.alerts import DriftAlert
from marvel.monitoring.lake import HOLD_ENV, Lake
from marvel.monitoring.parse import payload_to_monitoring, split_payload
from marvel.monitoring.payload import inference_rows, raw_to_records, synthetic_stream
from marvel.monitoring.quality import cbpe, classification
from marvel.monitoring.schemas import ALL_MODELS, TABLE_COLUMN, ModelMonitoring

METRICS = TABLES[1:3]


@pytest.fixture
def store(trained: Path) -> DeltaTableStore:
    """The trained home's lake (train_set/test_set v0, model v1 in the registry), MLflow pointed at it."""
    use_registry(trained)
    return DeltaTableStore(trained / "lake")


@pytest.fixture
def answer(store: DeltaTableStore):
    return scorer("1")


def stream(answer, windows: int, start: int = 0, per_window: int = 150, **kw):
    return synthetic_stream(
        windows, per_window, T0 + STEP * start, STEP, first_partition=start, scorer=answer, **kw
    )


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


def test_requests_that_score_nothing_say_why() -> None:
    rec = pd.DataFrame([{"Id": "x1", "Height": 1.8, "Universe": "Earth-616"}])
    good = inference_rows(rec, np.array([0.9]), np.array([1_700_000_000_000]))
    bad = {
        "not-json": {"request": "{not json"},
        "unknown-key": {"request": json.dumps({"dataframe_records": [{"Id": "y"}], "foo": 1})},
        "no-predictions": {"response": json.dumps({"oops": []})},
        "server-error": {"status_code": 500, "response": json.dumps({"error_code": "INTERNAL_ERROR"})},
    }
    frames = [
        good,
        good.assign(databricks_request_id="csv-1", request="Id,Height,Universe\nx9,1.7,Earth-616"),
    ]
    for rid, change in bad.items():
        frames.append(good.assign(databricks_request_id=rid, **change))
    rows, failed = split_payload(InferenceLog.validate(pd.concat(frames, ignore_index=True)))
    assert rows["Id"].tolist() == ["x1", "x9"]  # a text/csv body is a scored request too
    assert rows["Height"].tolist() == [1.8, 1.7]
    why = dict(zip(failed["databricks_request_id"], failed["reason"], strict=True))
    assert set(why) == set(bad)
    assert why["not-json"].startswith("request is neither JSON nor CSV")
    assert "unknown key(s) ['foo']" in why["unknown-key"]
    assert "no 'predictions'" in why["no-predictions"]
    assert why["server-error"].startswith("status 500")


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
def test_refresh_builds_the_tables_by_window_against_the_models_own_baseline(store, answer) -> None:
    payload, _ = stream(answer, 4)
    store.write("custom_model_payload", payload)
    res = monitor().refresh(ctx(store))
    assert res["rows_added"] == 600
    assert res["windows"] == 4
    assert res["rebuilt"]
    assert len(store.read("model_monitoring")) == 600
    prof = table(store, "model_monitoring_profile_metrics")
    whole = prof[(prof["column_name"] == TABLE_COLUMN) & (prof["model_id"] == ALL_MODELS)]
    assert whole["count"].tolist() == [150] * 4
    assert sorted(whole["window.start"]) == [T0 + STEP * i for i in range(4)]
    assert (whole["window.end"] - whole["window.start"] == STEP).all()
    assert set(prof["log_type"]) == {"INPUT"}
    height = prof[prof["column_name"] == "Height"].iloc[0]
    assert height["count"] == 150
    assert 0 < height["num_nulls"] < 150
    assert len(height["quantiles"]) == 7
    drift = table(store, "model_monitoring_drift_metrics")
    kinds = drift.groupby("drift_type")["window.start"].nunique().to_dict()
    assert kinds == {"BASELINE": 4, "CONSECUTIVE": 3}  # the first window has no previous window
    base = drift[drift["drift_type"] == "BASELINE"]
    # every monitored column has a baseline, the model's answers included: its answers on its test rows
    assert set(base["column_name"]) == set(monitor().numeric) | set(monitor().categorical)
    sources = base.groupby("column_name")["marvel_baseline"].first()
    assert sources["Height"] == "train_set@v0"
    assert sources["probability"] == sources["prediction"] == "test_set@v0 model answers"
    assert base["window_cmp.start"].isna().all()
    # the same model on the same kind of data: its answers do not drift
    prob = base[base["column_name"] == "probability"]
    assert (prob["ks_test.pvalue"] > 0.005).all()
    assert "BASELINE drift" not in " ".join(res["notes"])


@pytest.mark.slow
def test_refresh_twice_changes_nothing(store, answer) -> None:
    payload, _ = stream(answer, 3, per_window=100)
    store.write("custom_model_payload", payload)
    mon = monitor()
    mon.refresh(ctx(store))
    names = [*TABLES, "model_monitoring_state"]
    before = {n: (store.version(n), store.read(n)) for n in names}
    res = mon.refresh(ctx(store, store.root.parent / "out"))
    assert res["rows_added"] == 0
    assert res["windows_refreshed"] == 0
    assert "card" not in res  # nothing changed: no report rebuilt
    assert res["summary"].startswith("nothing new")
    for n in names:
        assert store.version(n) == before[n][0], f"{n} was written again"
        pd.testing.assert_frame_equal(store.read(n), before[n][1])


@pytest.mark.slow
def test_new_rows_only_change_their_windows(store, answer) -> None:
    first, _ = stream(answer, 3, per_window=100)
    store.write("custom_model_payload", first)
    mon = monitor()
    mon.refresh(ctx(store))
    old = {n: table(store, n) for n in METRICS}
    later, _ = stream(answer, 2, start=3, per_window=100)
    store.write("custom_model_payload", later, mode="append")
    res = mon.refresh(ctx(store))
    assert res["rows_added"] == 200  # only the new rows were read (change data feed)
    assert res["windows_refreshed"] == 2
    assert len(store.read("model_monitoring")) == 500
    for name, before in old.items():
        after = table(store, name)
        kept = after[after["window.start"] < T0 + STEP * 3].reset_index(drop=True)
        pd.testing.assert_frame_equal(kept, before)
        assert after["window.start"].nunique() == 5
    # the first new window is compared with the last old one
    drift = table(store, "model_monitoring_drift_metrics")
    cons = drift[(drift["drift_type"] == "CONSECUTIVE") & (drift["window.start"] == T0 + STEP * 3)]
    assert len(cons) > 0
    assert (cons["window_cmp.start"] == T0 + STEP * 2).all()
    # merged per window: the MERGE is in the table's history
    ops = [h["operation"] for h in DeltaTable(store.uri("model_monitoring_drift_metrics")).history()]
    assert "MERGE" in ops


def test_requests_seen_before_are_not_counted_twice(store, answer) -> None:
    payload, _ = stream(answer, 2, per_window=100)
    store.write("custom_model_payload", payload)
    mon = monitor()
    mon.refresh(ctx(store))
    store.write("custom_model_payload", payload.iloc[:2], mode="append")  # logged again (a replayed journal)
    res = mon.refresh(ctx(store))
    assert res["rows_added"] == 0
    assert len(store.read("model_monitoring")) == 200


@pytest.mark.slow
def test_incremental_equals_a_full_rebuild(store, answer, tmp_path: Path, trained: Path) -> None:
    a, _ = stream(answer, 2, per_window=100)
    b, _ = stream(answer, 2, start=2, per_window=100)
    store.write("custom_model_payload", a)
    monitor().refresh(ctx(store))
    store.write("custom_model_payload", b, mode="append")
    monitor().refresh(ctx(store))
    fresh = DeltaTableStore(tmp_path / "fresh")
    for name in ("train_set", "test_set"):
        fresh.write(name, store.read(name, 0))
    fresh.write("custom_model_payload", pd.concat([a, b]))
    monitor().refresh(ctx(fresh))
    for name in METRICS:
        ours, theirs = table(store, name), table(fresh, name)
        # the monitoring table's version a row was computed at differs by construction
        ours = ours.drop(columns=["logging_table_commit_version"], errors="ignore")
        theirs = theirs.drop(columns=["logging_table_commit_version"], errors="ignore")
        pd.testing.assert_frame_equal(ours, theirs)


# --------------------------------------------------------------------------------------------- labels, quality
def _labels(raw: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
    return pd.DataFrame(
        {"Id": raw["PageID"], "label": (raw["Alive"] == "Alive").astype(int), "labelled_at": at}
    )


@pytest.mark.slow
def test_late_labels_are_merged_into_their_windows_only(store, answer) -> None:
    payload, raw = stream(answer, 3, per_window=200)
    store.write("custom_model_payload", payload)
    mon = monitor()
    mon.refresh(ctx(store))
    prof = table(store, "model_monitoring_profile_metrics")
    t = prof[prof["column_name"] == TABLE_COLUMN]
    assert t["accuracy_score"].isna().all()  # no labels yet
    assert t["marvel_estimated_accuracy_score"].between(0.5, 1).all()  # CBPE needs none
    before = table(store, "model_monitoring_profile_metrics")
    store.write("labels", _labels(raw.iloc[:200], T0 + STEP * 10))  # the first window's labels arrive
    res = mon.refresh(ctx(store))
    assert res["rows_added"] == 0
    assert res["windows_refreshed"] == 2  # the window, and the next one's consecutive drift
    assert "labels: 200 read, 200 applied" in res["summary"]
    ops = [h["operation"] for h in DeltaTable(store.uri("model_monitoring")).history()]
    assert ops[0] == "MERGE"  # applied with a MERGE, not a rewrite
    rows = store.read("model_monitoring")
    assert rows["label"].notna().sum() == 200
    prof = table(store, "model_monitoring_profile_metrics")
    t = prof[(prof["column_name"] == TABLE_COLUMN) & (prof["model_id"] == ALL_MODELS)]
    t = t.set_index("window.start")
    w0 = rows[rows["label"].notna()]
    pred = (w0["prediction"] == "alive").astype(int)
    assert t.loc[T0, "accuracy_score"] == pytest.approx(accuracy_score(w0["label"], pred))
    assert dict(t.loc[T0, "f1_score.one_vs_all"])["alive"] == pytest.approx(f1_score(w0["label"], pred))
    assert t.loc[T0, "marvel_labelled_count"] == 200
    cm = {(c["prediction"], c["label"]): c["count"] for c in t.loc[T0, "confusion_matrix"]}
    assert sum(cm.values()) == 200
    assert np.isnan(t.loc[T0 + STEP, "accuracy_score"])
    untouched = prof[prof["window.start"] >= T0 + STEP].reset_index(drop=True)
    untouched = untouched.drop(columns=["logging_table_commit_version"])
    expected = before[before["window.start"] >= T0 + STEP].reset_index(drop=True)
    pd.testing.assert_frame_equal(untouched, expected.drop(columns=["logging_table_commit_version"]))


@pytest.mark.slow
def test_duplicate_and_unknown_label_ids_are_counted_and_the_latest_wins(store, answer) -> None:
    payload, raw = stream(answer, 1, per_window=100)
    store.write("custom_model_payload", payload)
    first = _labels(raw.iloc[:10], T0 + STEP)
    store.write("labels", first)
    mon = monitor()
    mon.refresh(ctx(store))
    corrected = first.iloc[:3].assign(label=1 - first["label"].iloc[:3], labelled_at=T0 + STEP * 2)
    stranger = pd.DataFrame({"Id": ["nobody"], "label": [1], "labelled_at": [T0 + STEP * 2]})
    bad = pd.DataFrame({"Id": ["x"], "label": [7], "labelled_at": [T0 + STEP * 2]})
    store.write("labels", pd.concat([corrected, stranger, bad]), mode="append")
    res = mon.refresh(ctx(store))
    assert (
        "labels: 5 read, 3 applied, 3 id(s) labelled more than once (latest wins), 1 for ids"
        in res["summary"]
    )
    assert "1 label row(s) fail the Labels contract: quarantined" in res["notes"]
    rows = store.read("model_monitoring").set_index("Id")
    for _, c in corrected.iterrows():
        assert rows.loc[c["Id"], "label"] == c["label"]
    q = store.read("quarantine")
    assert (q["table"] == "labels").sum() == 1
    assert "label" in q.loc[q["table"] == "labels", "reason"].iloc[0]


def test_cbpe_estimates_accuracy_of_a_calibrated_model() -> None:
    rng = np.random.default_rng(3)
    p = rng.beta(2, 1.2, 20000)
    y = (rng.random(len(p)) < p).astype(int)  # labels drawn from the probabilities: calibrated
    pred = (p >= 0.5).astype(int)
    est = cbpe(pred, p)
    real = classification(y, pred, p)
    assert est["marvel_estimated_accuracy_score"] == pytest.approx(real["accuracy_score"], abs=0.01)
    assert est["marvel_estimated_f1_score"] == pytest.approx(real["f1_score.one_vs_all"]["alive"], abs=0.01)


def test_quality_in_lakehouse_shapes_matches_scikit_learn() -> None:
    from sklearn.metrics import precision_recall_fscore_support

    rng = np.random.default_rng(8)
    y, p = rng.integers(0, 2, 500), rng.random(500)
    pred = (p > 0.4).astype(int)
    out = classification(y, pred, p)
    prec, rec, f1, support = precision_recall_fscore_support(y, pred, labels=[1, 0])
    assert out["precision.one_vs_all"] == pytest.approx({"alive": prec[0], "dead": prec[1]})
    assert out["recall.one_vs_all"] == pytest.approx({"alive": rec[0], "dead": rec[1]})
    assert out["f1_score.macro"] == pytest.approx(f1.mean())
    assert out["f1_score.weighted"] == pytest.approx(np.average(f1, weights=support))
    assert out["false_positive_rate.one_vs_all"]["alive"] == pytest.approx(1 - rec[1])


# --------------------------------------------------------------------------------------------- alerts, stage
@pytest.mark.slow
def test_alerts_name_the_drifted_columns_in_the_drifted_windows(store, answer, tmp_path: Path) -> None:
    clean, _ = stream(answer, 4, per_window=200, seed=11)
    drifted, _ = stream(
        answer,
        4,
        start=4,
        per_window=200,
        seed=11,
        drift={"height_scale": 1.5, "universe_shares": {"Earth-616": 0.8}},
    )
    store.write("custom_model_payload", pd.concat([clean, drifted]))
    res = monitor().refresh(ctx(store, tmp_path / "out"))
    fired = {(a.column_name, a.window_start) for a in res["alerts"]}
    for w in range(4, 8):
        assert ("Height", T0 + STEP * w) in fired
        assert ("Universe", T0 + STEP * w) in fired
    assert not {c for c, w in fired if w < T0 + STEP * 4}, "an undrifted window alerted"
    assert f"{len(res['alerts'])} new, 0 still open, 0 resolved" in res["summary"]
    alerts = table(store, "model_monitoring_alerts")
    assert len(alerts) == len(res["alerts"])
    assert set(alerts["status"]) == {"open"}
    assert set(alerts["rule"]) == {"drift:BASELINE"}
    # the report: one HTML page with its plots embedded
    html = res["card"].html()
    assert html.count("data:image/png;base64") == 3
    assert "Quality per window" in html
    assert all(p.exists() for p in res["card"].images)


@pytest.mark.slow
def test_per_column_override_and_disabled_column(store, answer) -> None:
    drifted, _ = stream(answer, 2, per_window=200, drift={"height_scale": 2.0})
    store.write("custom_model_payload", drifted)
    rules = monitor().rules | {"columns": {"Height": None}}
    res = monitor(alerts=rules).refresh(ctx(store))
    assert "Height" not in {a.column_name for a in res["alerts"]}


@pytest.mark.slow
def test_stage_prints_new_alerts_and_fails_only_on_new_ones(trained: Path, run_marvel, capsys) -> None:
    store = DeltaTableStore(trained / "lake")
    use_registry(trained)
    payload, _ = stream(scorer("1"), 2, per_window=200, drift={"height_scale": 2.0})
    store.write("custom_model_payload", payload)
    with pytest.raises(DriftAlert, match="Height") as err:
        run_marvel("stages=[monitor]", "monitor.fail_on_alert=true")
    assert err.value.exit_code == 3
    printed = capsys.readouterr().out
    assert "new alert:" in printed
    assert "Height" in printed
    # nothing new since: the open alerts do not fail the next refresh
    out = run_marvel("stages=[monitor]", "monitor.fail_on_alert=true")
    assert out.monitor.alerts == []
    assert out.monitor.alerts_open >= 2
    assert out.monitor.report is None
    assert "nothing new" in capsys.readouterr().out


def test_no_inference_table_is_not_an_error(store) -> None:
    res = monitor().refresh(ctx(store))
    assert res["alerts"] == []
    assert "does not exist yet" in res["summary"]


def test_requests_that_score_nothing_are_quarantined_and_counted(store, answer) -> None:
    payload, _ = stream(answer, 1, per_window=100)
    broken = payload.iloc[:2].assign(databricks_request_id=["b1", "b2"], request=["{", "[]"])
    refused = payload.iloc[:1].assign(databricks_request_id="r1", status_code=500, response='{"error": "x"}')
    store.write("custom_model_payload", pd.concat([payload, broken, refused], ignore_index=True))
    res = monitor().refresh(ctx(store))
    assert res["rows_added"] == 100
    assert res["rows_quarantined"] == 3
    assert "3 request(s) scored nothing" in res["summary"]
    q = store.read("quarantine")
    assert sorted(json.loads(r)["databricks_request_id"] for r in q["record"]) == ["b1", "b2", "r1"]
    assert set(q["stage"]) == {"monitor"}
    assert q["reason"].str.len().gt(0).all()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("+monitor.bogus=1", "monitor.bogus is not a key of monitor"),
        ("monitor.min_count=0", "monitor.min_count must be >= 1, got 0"),
        ("+monitor.alerts.numeric.ks_test.pval.below=0.1", "unknown metric 'ks_test.pval'"),
        ("monitor.granularity=fortnightly", "granularity 'fortnightly' is not understood"),
    ],
)
def test_a_bad_monitor_setting_is_one_line_that_says_what_to_do(run_marvel, override: str, says: str) -> None:
    with pytest.raises(MarvelError, match=re.escape(says)):
        run_marvel("stages=[monitor]", override)


@pytest.mark.parametrize("value", ["abc", "-1", "2.5", "1e3", "²", "3 commits"])
def test_a_bad_hold_after_commit_is_one_line(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault tests' MARVEL_MONITOR_HOLD_AFTER_COMMIT left set to something that is not a count stops the
    monitor before it touches a table, with one line, not a traceback from int()."""
    monkeypatch.setenv(HOLD_ENV, value)
    with pytest.raises(MarvelError, match=f"{HOLD_ENV} must be a commit count") as err:
        Lake(DeltaTableStore(tmp_path / "lake"), "marvel-monitor")
    assert len(str(err.value).splitlines()) == 1
    assert not (tmp_path / "lake").exists()
    monkeypatch.setenv(HOLD_ENV, " 3 ")
    assert Lake(DeltaTableStore(tmp_path / "lake"), "marvel-monitor").hold_after == 3
