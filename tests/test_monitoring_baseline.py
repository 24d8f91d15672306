"""BASELINE drift compares each window with the data its serving model was trained on, resolved through the
model's lineage in the registry; a version's baseline is built once and kept."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from monitoring_helpers import STEP, T0, ctx, monitor, scorer, table, use_registry

from marvel.core.tables import DeltaTableStore
from marvel.monitoring.baseline import Missing, lineage
from marvel.monitoring.payload import synthetic_stream


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_windows_served_by_different_versions_use_their_own_baselines(trained: Path, run_marvel) -> None:
    # v2 is trained on taller characters (train_set v1); v1 on the calibrated ones (train_set v0)
    run_marvel("data.drift.height_scale=1.5")
    use_registry(trained)
    store = DeltaTableStore(trained / "lake")
    assert store.version("train_set") == 1
    tall = {"height_scale": 1.5}
    by_v1, _ = synthetic_stream(3, 200, T0, STEP, scorer=scorer("1"), seed=3)
    by_v2, _ = synthetic_stream(
        3,
        200,
        T0 + STEP * 3,
        STEP,
        first_partition=3,
        scorer=scorer("2"),
        model_version="2",
        drift=tall,
        seed=3,
    )
    store.write("custom_model_payload", pd.concat([by_v1, by_v2]))
    res = monitor().refresh(ctx(store))
    drift = table(store, "model_monitoring_drift_metrics")
    height = drift[(drift["drift_type"] == "BASELINE") & (drift["column_name"] == "Height")]
    height = height.set_index("window.start")
    for w in range(3):
        assert height.loc[T0 + STEP * w, "marvel_baseline"] == "train_set@v0"
    for w in range(3, 6):
        assert height.loc[T0 + STEP * w, "marvel_baseline"] == "train_set@v1"
    # tall characters served by the model trained on tall characters: no height drift, for that model
    assert not {a for a in res["alerts"] if a.column_name == "Height"}
    # ... whereas against v1's baseline they would have been drift: the same windows, the old rule
    assert (height.loc[T0 + STEP * 3 :, "ks_test.pvalue"] > 0.005).all()
    assert set(table(store, "model_monitoring_baselines")["model_id"]) == {
        "marvel_character_model_custom/1",
        "marvel_character_model_custom/2",
    }


@pytest.mark.slow
def test_a_new_processing_does_not_change_old_windows(trained: Path, run_marvel) -> None:
    use_registry(trained)
    answer = scorer("1")
    store = DeltaTableStore(trained / "lake")
    first, _ = synthetic_stream(3, 150, T0, STEP, scorer=answer)
    store.write("custom_model_payload", first)
    monitor().refresh(ctx(store))
    before = table(store, "model_monitoring_drift_metrics")
    run_marvel("stages=[process]", "data.n_rows=3000", "data.drift.height_scale=2.0")  # train_set v1
    assert store.version("train_set") == 1
    later, _ = synthetic_stream(1, 150, T0 + STEP * 3, STEP, first_partition=3, scorer=answer)
    store.write("custom_model_payload", later, mode="append")
    monitor().refresh(ctx(store))
    after = table(store, "model_monitoring_drift_metrics")
    old = after[after["window.start"] < T0 + STEP * 3].reset_index(drop=True)
    pd.testing.assert_frame_equal(old, before)
    # the new window is still compared with what v1 was trained on, not with the newest train_set
    new = after[(after["window.start"] == T0 + STEP * 3) & (after["drift_type"] == "BASELINE")]
    assert set(new.loc[new["column_name"] == "Height", "marvel_baseline"]) == {"train_set@v0"}
    # and a full rebuild (a changed setting) reads the same cached baselines: old windows keep their figures
    shutil.rmtree(trained / "lake" / "train_set")  # even with the training data gone
    monitor(report_windows=3).refresh(ctx(store))  # report settings do not rebuild
    rebuilt = monitor(min_count=6)
    rebuilt.refresh(ctx(store))
    again = table(store, "model_monitoring_drift_metrics")
    base = again[again["drift_type"] == "BASELINE"]
    assert set(base["marvel_baseline"].dropna()) == {"train_set@v0", "test_set@v0 model answers"}


@pytest.mark.slow
def test_a_baseline_that_no_longer_exists_is_said_and_its_rows_skipped(
    trained: Path, run_marvel, capsys
) -> None:
    use_registry(trained)
    store = DeltaTableStore(trained / "lake")
    payload, _ = synthetic_stream(2, 150, T0, STEP, scorer=scorer("1"))
    store.write("custom_model_payload", payload)
    shutil.rmtree(trained / "lake" / "train_set")  # the version v1 was trained on is gone
    out = run_marvel("stages=[monitor]")
    note = " ".join(out.monitor.notes)
    assert "marvel_character_model_custom/1" in note
    assert "train_set v0" in note
    assert "no longer exists" in note
    assert "no baseline for marvel_character_model_custom/1" in capsys.readouterr().out
    drift = table(store, "model_monitoring_drift_metrics")
    assert set(drift["drift_type"]) == {"CONSECUTIVE"}  # skipped, not invented
    assert not store.exists("model_monitoring_baselines") or table(store, "model_monitoring_baselines").empty


def test_lineage_follows_model_version_run_and_dataset_inputs(trained: Path) -> None:
    use_registry(trained)
    found = lineage("marvel_character_model_custom/1", ["train_set", "test_set"])
    assert found.versions == {"train_set": 0, "test_set": 0}
    with pytest.raises(Missing, match="not found in the model registry"):
        lineage("marvel_character_model_custom/9", ["train_set"])
    with pytest.raises(Missing, match="does not say which model version"):
        lineage("unknown/unknown", ["train_set"])
