"""Properties of the alert rules over drift parameters: big injected drift is flagged, undrifted streams
from other seeds are not (beyond the false-alarm rate the rules are designed for).

They run the monitor's own drift and alert code on generator windows, without tables, so hypothesis can
try many streams quickly.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from marvel.data.synthetic.source import SyntheticSource
from marvel.monitoring.alerts import evaluate
from marvel.monitoring.drift import Baseline, build_baseline, drift
from marvel.monitoring.payload import raw_to_records, synthetic_train_set

T0 = pd.Timestamp("2025-01-01")
STEP = pd.Timedelta(minutes=30)
PER_WINDOW = 200  # the benchmark's window size


@lru_cache(maxsize=1)
def config() -> dict:
    cfg = OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[1] / "conf/monitor/local.yaml"))
    return cfg  # type: ignore[return-value]


@lru_cache(maxsize=1)
def baseline() -> Baseline:
    c = config()
    return build_baseline(
        synthetic_train_set(), c["numeric"], c["categorical"], c["bins"], c["max_categories"], "train_set@v1"
    )


def alerts_for(drift_options: dict | None, seed: int, windows: int) -> set[tuple[str, pd.Timestamp]]:
    """(column, window) pairs that alert on `windows` windows of generator traffic."""
    c = config()
    src = SyntheticSource(drift=drift_options)
    frames = []
    for w in range(windows):
        raw = src.generate(PER_WINDOW, seed, partition=w)
        rec = raw_to_records(raw).astype({"Height": float, "Weight": float})
        rec["label"] = (raw["Alive"] == "Alive").astype(float)
        rec["prediction"], rec["probability"], rec["model_id"] = "alive", 0.7, "m/1"
        rec["window_start"] = T0 + STEP * w
        frames.append(rec)
    rows = pd.concat(frames, ignore_index=True)
    wins = sorted(rows["window_start"].unique())
    d = drift(
        rows,
        wins,
        {("m/1", None, None): baseline()},
        c["numeric"],
        c["categorical"],
        STEP,
        min_count=c["min_count"],
        smoothing=c["smoothing"],
    )
    found = evaluate(
        d, pd.DataFrame(columns=["column_name", "window.start"]), c["alerts"], c["numeric"], c["categorical"]
    )
    return {(a.column_name, a.window_start) for a in found}


# derandomized: these are statistical properties, so CI must see the same streams every run (a random
# draw would fail now and then by design: a 1% false-alarm rate does fire)
SETTINGS = settings(
    max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.mark.slow
@SETTINGS
@given(scale=st.floats(1.5, 4.0), seed=st.integers(0, 10**6))
def test_height_scaling_from_one_and_a_half_is_flagged(scale: float, seed: int) -> None:
    fired = alerts_for({"height_scale": scale}, seed, windows=5)
    hit = sum(("Height", T0 + STEP * w) in fired for w in range(5))
    assert hit >= 4, f"height x{scale:.2f} caught in only {hit}/5 windows"


@pytest.mark.slow
@SETTINGS
@given(share=st.floats(0.6, 0.95), seed=st.integers(0, 10**6))
def test_universe_share_shift_is_flagged(share: float, seed: int) -> None:
    # Earth-616 is 35% of characters: 60% and more at 200 records per window must show
    fired = alerts_for({"universe_shares": {"Earth-616": share}}, seed, windows=3)
    assert all(("Universe", T0 + STEP * w) in fired for w in range(3))


@pytest.mark.slow
@SETTINGS
@given(seed=st.integers(0, 10**6))
def test_undrifted_streams_from_other_seeds_are_not_flagged(seed: int) -> None:
    windows = 10
    fired = alerts_for(None, seed, windows=windows)
    tests = windows * len(baseline().refs)  # every (window, column) with a baseline
    # the rules are set for <= 1% false alarms per window and column (benchmarks/bench_monitor.py: 0.4%
    # overall), so ~0.3 expected in these tests: a stray one or two, never a pattern (3+ in one column)
    assert len(fired) <= 3, f"{len(fired)}/{tests} false alarms: {sorted(fired)}"
    per_column = Counter(c for c, _ in fired)
    assert max(per_column.values(), default=0) <= 2, f"a column keeps alerting: {sorted(fired)}"
