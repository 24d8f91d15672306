"""A refresh killed at any moment loses nothing: `kill -9` a real `python -m marvel stages=[monitor]` process
(forked warm, see `processes.py`) right after each of its commits in turn, rerun, and compare every table with
an uninterrupted refresh of the same lake. For a full refresh, an incremental one (new requests and late
labels), and one that only applies labels.

The process is started with MARVEL_MONITOR_HOLD_AFTER_COMMIT=k, so it stops moving right after its k-th commit;
the test watches the tables' `_delta_log` folders and sends SIGKILL as soon as the k-th new commit file
appears, i.e. between commit k and commit k + 1.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, clone_home, make_config
from monitoring_helpers import STEP, T0, scorer, table, use_registry
from processes import Marvel, wait_for

from marvel.core.engine import run
from marvel.core.tables import DeltaTableStore
from marvel.monitoring.payload import synthetic_stream

LOG = re.compile(r"\d{20}\.json")
# columns that hold a refresh's wall clock or run id: the only ones allowed to differ between two runs
CLOCK = {
    "model_monitoring_alerts": ["first_seen", "last_seen", "resolved_at"],
    "model_monitoring_baselines": ["created_at"],
    "quarantine": ["run_id", "quarantined_at"],
    "model_monitoring_state": ["planned_at"],
}
COMPARED = [
    "model_monitoring",
    "model_monitoring_profile_metrics",
    "model_monitoring_drift_metrics",
    "model_monitoring_alerts",
    "model_monitoring_baselines",
    "quarantine",
    "model_monitoring_state",
]
KEYS = {
    "model_monitoring_profile_metrics": ["window.start", "slice_key", "model_id", "column_name"],
    "model_monitoring_drift_metrics": ["window.start", "drift_type", "slice_key", "model_id", "column_name"],
    "model_monitoring_alerts": ["window.start", "slice_key", "model_id", "column_name", "rule"],
}


def commits(lake: Path) -> set[str]:
    return {str(p) for p in lake.glob("*/_delta_log/*.json") if LOG.fullmatch(p.name)}


# the tables are what is compared: no run here draws the HTML/PNG report (about 1 s of each refresh)
REFRESH = ["stages=[monitor]", "monitor.report=false"]


def refresh_in_process(home: Path) -> None:
    result = run(make_config(home, REFRESH), out_dir=home / "out")
    assert result.results["monitor"].report is None  # monitor.report=false: no report drawn or logged
    assert not list((home / "out").glob("monitor_card*"))


def kill_after(home: Path, k: int) -> list[str]:
    """Start a real monitor process on `home`, SIGKILL it right after its k-th commit; the new commit files."""
    lake = home / "lake"
    before = commits(lake)
    env = {**os.environ, "MARVEL_HOME": str(home), "MARVEL_MONITOR_HOLD_AFTER_COMMIT": str(k)}
    proc = Marvel(REFRESH, cwd=REPO, env=env, output=home / "monitor.log")
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            if len(commits(lake) - before) >= k:
                os.kill(proc.pid, signal.SIGKILL)
                break
            if proc.poll() is not None:
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the process ended by itself: {proc.text()[-500:]}"
    return sorted(commits(lake) - before)


def snapshot(home: Path) -> dict[str, pd.DataFrame]:
    store = DeltaTableStore(home / "lake")
    out = {}
    for name in COMPARED:
        if not store.exists(name):
            continue
        frame = table(store, name).drop(columns=CLOCK.get(name, []))
        if name == "model_monitoring_state":
            frame = frame[frame["status"] == "committed"].sort_values("refresh")
        if name == "quarantine":
            frame = frame.sort_values(["table", "record"])
        out[name] = frame.reset_index(drop=True)
    return out


def assert_same(got: dict[str, pd.DataFrame], want: dict[str, pd.DataFrame], where: str) -> None:
    assert set(got) == set(want), where
    for name, frame in want.items():
        if name in KEYS:  # no window missing or doubled
            assert not got[name].duplicated(KEYS[name]).any(), f"{where}: {name} has doubled rows"
        pd.testing.assert_frame_equal(got[name], frame, obj=f"{where}: {name}")


def kill_at_every_commit(lake_before: Callable[[Path], Path], root: Path) -> list[str]:
    """Kill at each commit point of one refresh of `lake_before`'s lake; returns the tables it commits to,
    in order."""
    reference = lake_before(root / "reference")
    before = commits(reference / "lake")
    refresh_in_process(reference)
    landed = sorted(commits(reference / "lake") - before, key=lambda p: Path(p).stat().st_mtime_ns)
    order = [Path(p).parts[-3] for p in landed]
    points = len(order)
    want = snapshot(reference)
    for k in range(1, points + 1):
        home = lake_before(root / f"killed_{k}")
        landed = kill_after(home, k)
        assert len(landed) == k, f"killed after {len(landed)} commits, wanted {k}: {landed}"
        refresh_in_process(home)
        assert_same(snapshot(home), want, f"killed after commit {k} ({Path(landed[-1]).parts[-3]})")
    return order


# -- the lakes ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lakes(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three lakes, each one refresh ahead of the last: before a full refresh (requests, labels, a failed
    request), before an incremental one (new requests and late labels with a correction), before a
    labels-only one."""
    root = tmp_path_factory.mktemp("crash")
    use_registry(trained_home)
    answer = scorer("1")
    full = clone_home(trained_home, root / "before_full")
    store = DeltaTableStore(full / "lake")
    first, raw = synthetic_stream(4, 120, T0, STEP, scorer=answer, seed=5)
    drifted, raw2 = synthetic_stream(
        2, 120, T0 + STEP * 4, STEP, first_partition=4, scorer=answer, seed=5, drift={"height_scale": 1.6}
    )
    failed = first.iloc[:1].assign(databricks_request_id="failed-1", status_code=500, response='{"e": 1}')
    store.write("custom_model_payload", pd.concat([first, failed], ignore_index=True))
    store.write("labels", labels(raw.iloc[:60], 1))

    incremental = root / "before_incremental"
    clone_home(full, incremental)
    refresh_in_process(incremental)
    store = DeltaTableStore(incremental / "lake")
    store.write("custom_model_payload", drifted, mode="append")
    late = labels(raw.iloc[200:300], 2)
    corrected = labels(raw.iloc[:5], 3).assign(label=lambda f: 1 - f["label"])
    store.write("labels", pd.concat([late, corrected], ignore_index=True), mode="append")

    label_only = root / "before_labels"
    clone_home(incremental, label_only)
    refresh_in_process(label_only)
    DeltaTableStore(label_only / "lake").write("labels", labels(raw2.iloc[:100], 4), mode="append")
    return {"full": full, "incremental": incremental, "labels": label_only}


def labels(raw: pd.DataFrame, hours: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Id": raw["PageID"].to_numpy(),
            "label": (raw["Alive"] == "Alive").astype(int).to_numpy(),
            "labelled_at": T0 + pd.Timedelta(hours=24 + hours),
        }
    )


def copier(src: Path) -> Callable[[Path], Path]:
    return lambda dst: clone_home(src, dst)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("which", ["full", "incremental", "labels"])
def test_a_refresh_killed_after_any_commit_converges_to_the_uninterrupted_result(
    which: str, lakes: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MARVEL_MONITOR_HOLD_AFTER_COMMIT", raising=False)
    order = kill_at_every_commit(copier(lakes[which]), tmp_path)
    # every table the refresh writes was a commit point: the plan first, the marker last
    m = "model_monitoring"
    written = {
        "full": [
            "quarantine",
            m,
            f"{m}_baselines",
            f"{m}_profile_metrics",
            f"{m}_drift_metrics",
            f"{m}_alerts",
        ],
        "incremental": [m, m, f"{m}_profile_metrics", f"{m}_drift_metrics", f"{m}_alerts"],  # rows, labels
        "labels": [m, f"{m}_profile_metrics", f"{m}_drift_metrics", f"{m}_alerts"],
    }[which]
    assert order == [f"{m}_state", *written, f"{m}_state"]


@pytest.mark.slow
def test_the_lakes_exercise_what_they_claim(lakes: dict[str, Path]) -> None:
    """The incremental lake has new requests and labels to merge; the full one a failed request."""
    store = DeltaTableStore(lakes["incremental"] / "lake")
    state = store.read("model_monitoring_state")
    assert set(state["status"]) == {"planned", "committed"}
    assert np.isin(["failed-1"], store.read("custom_model_payload")["databricks_request_id"]).all()
    assert store.version("labels") == 1


@pytest.mark.slow
def test_an_overlapping_refresh_waits_and_takes_over_from_a_killed_one(
    lakes: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two schedulers' refreshes at once: the second waits for the first (it would otherwise take the first's
    uncommitted plan for a crashed one and run it beside it); when the first is killed, the second resumes its
    plan and the tables are those of one uninterrupted refresh."""
    monkeypatch.delenv("MARVEL_MONITOR_HOLD_AFTER_COMMIT", raising=False)
    reference = clone_home(lakes["full"], tmp_path / "reference")
    refresh_in_process(reference)
    home = clone_home(lakes["full"], tmp_path / "home")
    lake = home / "lake"
    before = commits(lake)
    env = {**os.environ, "MARVEL_HOME": str(home)}
    first = Marvel(
        REFRESH, cwd=REPO, env={**env, "MARVEL_MONITOR_HOLD_AFTER_COMMIT": "1"}, output=tmp_path / "1.log"
    )
    second: Marvel | None = None
    try:
        wait_for("the first refresh's plan is committed", lambda: len(commits(lake) - before) == 1)
        second = Marvel(REFRESH, cwd=REPO, env=env, output=tmp_path / "2.log")
        wait_for("the second refresh waits", lambda: "another refresh of model_monitoring" in second.text())
        assert len(commits(lake) - before) == 1  # it waited, and wrote nothing
        assert second.poll() is None
        first.kill()
        assert second.wait(120) == 0, second.text()[-2000:]
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(30)
    assert first.returncode == -signal.SIGKILL
    assert "resuming refresh 1, interrupted before it committed" in second.text()
    assert_same(snapshot(home), snapshot(reference), "after the overlapping refresh")
