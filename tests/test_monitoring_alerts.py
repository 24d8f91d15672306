"""Alerts that mean something: kept once with a lifecycle, new only once, resolved when their window no
longer alerts, and a label-free quality rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from monitoring_helpers import STEP, T0, ctx, monitor, scorer, table, use_registry

from marvel.core.errors import MarvelError
from marvel.core.tables import DeltaTableStore
from marvel.monitoring.alerts import Alert, conditions, counts, lifecycle
from marvel.monitoring.payload import synthetic_stream
from marvel.monitoring.schemas import Alerts, empty_flat


def _alert(w: int, column: str = "Height") -> Alert:
    return Alert(
        T0 + STEP * w, ":all", column, "drift", "ks_test.pvalue=0.001 (below 0.005)", key="drift:BASELINE"
    )


def test_lifecycle_opens_keeps_resolves_and_reopens() -> None:
    now = [pd.Timestamp("2025-04-01") + pd.Timedelta(hours=h) for h in range(4)]
    t = empty_flat(Alerts)

    def step(fired: list[Alert], evaluated: set[pd.Timestamp], refresh: int) -> pd.DataFrame:
        nonlocal t
        changes = lifecycle(t, fired, evaluated, STEP, refresh, now[refresh - 1])
        keys = ["window.start", "column_name"]
        t = pd.concat(
            [t[~t.set_index(keys).index.isin(changes.set_index(keys).index)], changes], ignore_index=True
        )
        return t

    step([_alert(0), _alert(1)], {T0, T0 + STEP}, 1)
    assert counts(t, 1) == {"new": 2, "open": 0, "resolved": 0}
    # refresh 2 recomputes window 1 only: window 0's alert stays open, untouched; window 1 still fires
    step([_alert(1)], {T0 + STEP}, 2)
    assert counts(t, 2) == {"new": 0, "open": 2, "resolved": 0}
    assert t.loc[t["window.start"] == T0 + STEP, "last_seen"].item() == now[1]
    assert t.loc[t["window.start"] == T0, "last_seen"].item() == now[0]
    # refresh 3: window 1 recomputed (late labels, say) and no longer fires
    step([], {T0 + STEP}, 3)
    assert counts(t, 3) == {"new": 0, "open": 1, "resolved": 1}
    resolved = t[t["window.start"] == T0 + STEP].iloc[0]
    assert resolved["status"] == "resolved"
    assert resolved["resolved_at"] == now[2]
    # refresh 4: it fires again: reopened, and new in this refresh; first seen is kept
    step([_alert(1)], {T0 + STEP}, 4)
    assert counts(t, 4) == {"new": 1, "open": 1, "resolved": 0}
    again = t[t["window.start"] == T0 + STEP].iloc[0]
    assert again["first_seen"] == now[0]
    assert pd.isna(again["resolved_at"])


def test_rules_nest_or_dot_and_a_bad_rule_fails_in_one_line() -> None:
    nested = conditions({"ks_test": {"pvalue": {"below": 0.005}, "statistic": {"above": 0.2}}})
    dotted = conditions({"ks_test.pvalue": {"below": 0.005}, "ks_test.statistic": {"above": 0.2}})
    assert nested == dotted == {"ks_test.pvalue": {"below": 0.005}, "ks_test.statistic": {"above": 0.2}}
    with pytest.raises(MarvelError, match="needs a condition"):
        conditions({"ks_test": 0.005})
    with pytest.raises(MarvelError, match="needs a condition"):
        monitor(alerts={"numeric": {"ks_test": {"pvalue": None}}})


@pytest.fixture
def store(trained: Path) -> DeltaTableStore:
    use_registry(trained)
    return DeltaTableStore(trained / "lake")


@pytest.mark.slow
def test_changed_rules_reevaluate_every_window_and_resolve(store: DeltaTableStore) -> None:
    drifted, _ = synthetic_stream(3, 200, T0, STEP, scorer=scorer("1"), drift={"height_scale": 2.0})
    store.write("custom_model_payload", drifted)
    first = monitor().refresh(ctx(store))
    height = [a for a in first["alerts"] if a.column_name == "Height"]
    assert len(height) == 3
    quiet = monitor().rules | {"columns": {"Height": None}}
    res = monitor(alerts=quiet).refresh(ctx(store))
    assert res["alerts"] == []
    assert res["alerts_resolved"] == 3
    assert "0 new" in res["summary"]
    assert "3 resolved" in res["summary"]
    alerts = table(store, "model_monitoring_alerts")
    assert set(alerts.loc[alerts["column_name"] == "Height", "status"]) == {"resolved"}


@pytest.mark.slow
def test_late_labels_open_and_then_resolve_a_quality_alert(store: DeltaTableStore) -> None:
    payload, raw = synthetic_stream(1, 100, T0, STEP, scorer=scorer("1"))
    store.write("custom_model_payload", payload)
    rules = monitor().rules | {"quality": {"accuracy_score": {"below": 0.7}}}
    mon = monitor(alerts=rules)
    mon.refresh(ctx(store))
    predicted = store.read("model_monitoring")["prediction"]
    assert (predicted == "alive").all()  # this small model answers "alive": accuracy = share alive
    ids = raw["PageID"].to_numpy()
    dead = np.arange(len(ids)) < 40
    store.write("labels", pd.DataFrame({"Id": ids, "label": (~dead).astype(int), "labelled_at": T0 + STEP}))
    opened = mon.refresh(ctx(store))
    assert [a.column_name for a in opened["alerts"] if a.kind == "quality"] == [":table"]
    fixed = pd.DataFrame({"Id": ids[dead], "label": 1, "labelled_at": T0 + STEP * 2})  # corrections
    store.write("labels", fixed, mode="append")
    closed = mon.refresh(ctx(store))
    assert [a for a in closed["alerts"] if a.kind == "quality"] == []
    alerts = table(store, "model_monitoring_alerts").set_index("rule")
    assert alerts.loc["quality", "status"] == "resolved"
    assert alerts.loc["quality", "first_refresh"] == 2
    assert alerts.loc["quality", "resolved_refresh"] == 3


@pytest.mark.slow
def test_cbpe_alerts_when_the_model_is_unsure_without_a_single_label(store: DeltaTableStore) -> None:
    model = scorer("1")
    unsure = lambda records: 0.5 + (model(records) - 0.5) * 0.1  # noqa: E731  answers pulled to a coin flip
    clean, _ = synthetic_stream(2, 200, T0, STEP, scorer=model)
    shifted, _ = synthetic_stream(2, 200, T0 + STEP * 2, STEP, first_partition=2, scorer=unsure)
    store.write("custom_model_payload", pd.concat([clean, shifted]))
    res = monitor().refresh(ctx(store))
    quality = {a.window_start for a in res["alerts"] if a.kind == "quality"}
    assert quality == {T0 + STEP * 2, T0 + STEP * 3}
    prof = table(store, "model_monitoring_profile_metrics")
    t = prof[(prof["column_name"] == ":table") & (prof["model_id"] == ":all")].set_index("window.start")
    assert (t["marvel_baseline_accuracy_score"] == t["marvel_baseline_accuracy_score"].iloc[0]).all()
    assert t.loc[T0, "marvel_estimated_accuracy_drop"] < 0.05
    assert t.loc[T0 + STEP * 2, "marvel_estimated_accuracy_drop"] > 0.05


@pytest.mark.slow
def test_a_window_recomputed_only_for_its_neighbour_keeps_its_quality_alert(store: DeltaTableStore) -> None:
    # window 1 alerts on quality; late requests then land in window 0, which recomputes window 1's
    # consecutive drift but not its profile: its quality alert is neither resolved nor raised again
    model = scorer("1")
    unsure = lambda records: 0.5 + (model(records) - 0.5) * 0.1  # noqa: E731
    w0, _ = synthetic_stream(1, 200, T0, STEP, scorer=model)
    w1, _ = synthetic_stream(1, 200, T0 + STEP, STEP, first_partition=1, scorer=unsure)
    store.write("custom_model_payload", pd.concat([w0, w1]))
    mon = monitor()
    first = mon.refresh(ctx(store))
    assert {(a.window_start, a.kind) for a in first["alerts"] if a.kind == "quality"} == {
        (T0 + STEP, "quality")
    }
    late, _ = synthetic_stream(1, 50, T0, STEP, first_partition=7, scorer=model)
    store.write("custom_model_payload", late, mode="append")
    res = mon.refresh(ctx(store))
    assert res["windows_refreshed"] == 2
    assert res["alerts_resolved"] == 0
    alerts = table(store, "model_monitoring_alerts")
    assert alerts.loc[alerts["rule"] == "quality", "status"].tolist() == ["open"]
