"""The drift experiment end to end: train, serve over real HTTP, simulate drifted traffic, monitor."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from marvel.core.tables import DeltaTableStore
from marvel.monitoring.schemas import ALL_MODELS, TABLE_COLUMN

START = "2025-06-01T00:00:00"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_drift_experiment_catches_drift_in_the_drifted_windows_only(marvel_home: Path, run_marvel) -> None:
    out = run_marvel("+experiment=drift", f"simulate.start={START}")
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

    # quality per window from the labels, and the label shift (alive 75% -> 60%) shows in it
    prof = store.read("model_monitoring_profile_metrics")
    t = prof[(prof["column_name"] == TABLE_COLUMN) & (prof["model_id"] == ALL_MODELS)].sort_values(
        "window_start"
    )
    assert (t["labelled_count"] == 200).all()
    assert t["accuracy_score"].notna().all()
    before, after = t[t["window_start"] < drift_start], t[t["window_start"] >= drift_start]
    assert after["label_rate"].mean() < before["label_rate"].mean() - 0.08
    assert Path(mon.report).is_file()
