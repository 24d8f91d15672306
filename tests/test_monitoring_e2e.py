"""The drift experiment end to end: train, serve over real HTTP, simulate drifted traffic, monitor."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from monitoring_helpers import table

from marvel.core.tables import DeltaTableStore
from marvel.monitoring.schemas import ALL_MODELS, TABLE_COLUMN

START = "2025-06-01T00:00:00"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_drift_experiment_catches_drift_in_the_drifted_windows_only(marvel_home: Path, run_marvel) -> None:
    # the experiment's own sizes (5000 rows, 100 trees): a model whose answers respond to its inputs
    out = run_marvel("+experiment=drift", f"simulate.start={START}", fast=False)
    sim, mon = out.simulate, out.monitor
    assert sim.requests == 96
    assert sim.failed == 0
    store = DeltaTableStore(marvel_home / "lake")
    # every request went through the server into the inference table, every record into the monitoring table
    assert len(store.read("custom_model_payload")) == 96
    rows = store.read("model_monitoring")
    assert len(rows) == 24 * 200
    assert rows["label"].notna().all()
    assert rows["timestamp"].min() >= pd.Timestamp(START)

    drift_start = pd.Timestamp(START) + pd.Timedelta(minutes=30) * 12
    assert sim.drift_start == drift_start
    alerts = mon.alerts
    assert alerts
    assert all(a.window_start >= drift_start for a in alerts), "an undrifted window alerted"
    for column in ("Height", "Universe"):
        windows = {a.window_start for a in alerts if a.column_name == column}
        assert len(windows) >= 11, f"{column} drift caught in only {len(windows)}/12 drifted windows"
    # the drift moves the model's answers, and that alerts too: its probabilities against its own answers
    # on its test rows
    answered = {a.window_start for a in alerts if a.column_name in ("probability", "prediction")}
    assert len(answered) >= 10, f"prediction drift caught in only {len(answered)}/12 drifted windows"

    # the baseline is the served model's own training data: train_set v0 (4000 rows), not whatever is newest
    drift = table(store, "model_monitoring_drift_metrics")
    base = drift[drift["drift_type"] == "BASELINE"]
    assert set(base.loc[base["column_name"] == "Gender", "marvel_baseline"]) == {"train_set@v0"}
    assert set(base.loc[base["column_name"] == "Gender", "marvel_count_cmp"]) == {4000}
    assert set(base.loc[base["column_name"] == "probability", "marvel_baseline"]) == {
        "test_set@v0 model answers"
    }

    # quality per window from the labels, and the label shift (alive 75% -> 60%) shows in it
    prof = table(store, "model_monitoring_profile_metrics")
    t = prof[(prof["column_name"] == TABLE_COLUMN) & (prof["model_id"] == ALL_MODELS)]
    assert (t["marvel_labelled_count"] == 200).all()
    assert t["accuracy_score"].notna().all()
    before, after = t[t["window.start"] < drift_start], t[t["window.start"] >= drift_start]
    assert after["marvel_label_rate"].mean() < before["marvel_label_rate"].mean() - 0.08
    assert Path(mon.report).is_file()

    # a second refresh finds nothing new: it raises nothing, fails nothing, rebuilds no report
    again = run_marvel(
        "+experiment=drift", f"simulate.start={START}", "stages=[monitor]", "monitor.fail_on_alert=true"
    )
    assert again.monitor.alerts == []
    assert again.monitor.alerts_open == len(alerts)
    assert again.monitor.summary.startswith("nothing new")
    assert again.monitor.report is None
