"""Monitoring benchmarks: refresh time at 1M inference rows, and detection power vs false alarms.

    uv run python benchmarks/bench_monitor.py                 # both
    uv run python benchmarks/bench_monitor.py --only speed    # or: --only power

1. Speed: 1,000,000 records in 10,000 requests (100 records each) over 48 thirty-minute windows, written in
   exactly the InferenceLog shape the server writes; time a full refresh, an incremental refresh that adds
   one window, and a no-op refresh.
2. Power: 100 seeds; each gives one undrifted and one drifted window (height x1.5) of 200 records, compared
   with a `train_set` baseline by the monitor's own drift code and alert rules (conf/monitor/local.yaml).
   Power = share of drifted windows whose Height alerts; false alarms = share of (undrifted window, column)
   pairs that alert.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from marvel.core.tables import DeltaTableStore
from marvel.data.synthetic.source import SyntheticSource
from marvel.monitoring.alerts import evaluate
from marvel.monitoring.drift import build_baseline, drift
from marvel.monitoring.monitor import LocalMonitor
from marvel.monitoring.payload import inference_rows, raw_to_records, synthetic_train_set

CONF = Path(__file__).resolve().parents[1] / "conf" / "monitor" / "local.yaml"
T0 = pd.Timestamp("2025-01-01")
STEP_MS = 30 * 60 * 1000


def monitor_config() -> dict:
    cfg = OmegaConf.to_container(OmegaConf.load(CONF), resolve=True)
    cfg.pop("_target_")
    return cfg  # type: ignore[return-value]


def train_set() -> pd.DataFrame:
    return synthetic_train_set()


def speed(rows: int = 1_000_000, windows: int = 48, per_request: int = 100) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench_monitor_"))
    try:
        store = DeltaTableStore(root)
        store.write("train_set", train_set())
        t = time.perf_counter()
        raw = SyntheticSource(seed=7).generate(rows + rows // windows, 7)
        rec = raw_to_records(raw)
        proba = np.random.default_rng(7).beta(5, 2, len(rec))
        ts = pd.Timestamp(T0).value // 10**6 + np.arange(len(rec)) * (windows * STEP_MS // rows)
        payload = inference_rows(rec.iloc[:rows], proba[:rows], ts[:rows], batch_size=per_request)
        extra = inference_rows(rec.iloc[rows:], proba[rows:], ts[rows:], batch_size=per_request)
        store.write("custom_model_payload", payload)
        print(f"speed: built {len(payload)} requests / {rows} records in {time.perf_counter() - t:.1f}s")
        monitor = LocalMonitor(**monitor_config())
        ctx = SimpleNamespace(store=store, out_dir=root / "out")
        for what in ("full refresh", "no-op refresh"):
            t = time.perf_counter()
            res = monitor.refresh(ctx)
            print(f"speed: {what}: {time.perf_counter() - t:.1f}s ({res['summary']}) {res['timings']}")
        store.write("custom_model_payload", extra, mode="append")
        t = time.perf_counter()
        res = monitor.refresh(ctx)
        print(
            f"speed: incremental (+{len(rec) - rows} records): {time.perf_counter() - t:.1f}s ({res['summary']})"
        )
        ctx.out_dir = None  # time the tables alone, without the report
        store.write(
            "custom_model_payload",
            extra.assign(databricks_request_id=extra["databricks_request_id"] + "x"),
            mode="append",
        )
        t = time.perf_counter()
        monitor.refresh(ctx)
        print(f"speed: incremental without report: {time.perf_counter() - t:.1f}s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def power(
    seeds: int = 100, per_seed: int = 5, seed0: int = 1000, per_window: int = 200, height_scale: float = 1.5
) -> None:
    cfg = monitor_config()
    numeric, categorical = cfg["numeric"], cfg["categorical"]
    step = pd.Timedelta(minutes=30)
    baseline = build_baseline(train_set(), 1, numeric, categorical, cfg["bins"], cfg["max_categories"])
    clean, drifted = SyntheticSource(), SyntheticSource(drift={"height_scale": height_scale})
    frames, kinds = [], {}
    slot = 0
    for s in range(seeds):
        for k in range(2 * per_seed):
            is_drifted = k >= per_seed
            raw = (drifted if is_drifted else clean).generate(per_window, seed0 + s, partition=k)
            rec = raw_to_records(raw).astype({"Height": float, "Weight": float})
            rec["prediction"], rec["probability"] = "alive", 0.7
            rec["label"] = (raw["Alive"] == "Alive").astype(float)
            rec["model_id"] = "m/1"
            # windows two steps apart: BASELINE drift only (no consecutive pairs), each window independent
            w = T0 + step * (2 * slot)
            rec["window_start"] = w
            kinds[w] = is_drifted
            slot += 1
            frames.append(rec)
    rows = pd.concat(frames, ignore_index=True)
    t = time.perf_counter()
    d = drift(rows, sorted(kinds), baseline, numeric, categorical, "30 minutes", step)
    empty_profile = pd.DataFrame(columns=["column_name", "window_start"])
    found = evaluate(d, empty_profile, cfg["alerts"], numeric, categorical)
    seconds = time.perf_counter() - t
    hits = {(a.window_start, a.column_name) for a in found}
    drifted_w = [w for w, k in kinds.items() if k]
    clean_w = [w for w, k in kinds.items() if not k]
    power_h = np.mean([(w, "Height") in hits for w in drifted_w])
    cols = [c for c in (*numeric, *categorical) if c in baseline.refs]
    fa = {c: np.mean([(w, c) in hits for w in clean_w]) for c in cols}
    overall = np.mean([(w, c) in hits for w in clean_w for c in cols])
    weight_in_drifted = np.mean([(w, "Weight") in hits for w in drifted_w])
    known = rows["Height"].notna().groupby(rows["window_start"]).sum()
    print(
        f"power: {seeds} seeds x ({per_seed} undrifted + {per_seed} drifted) windows of {per_window} records; "
        f"drift+alerts on {len(kinds)} windows in {seconds:.1f}s"
    )
    print(f"power: known heights per window: median {known.median():.0f}, min {known.min():.0f}")
    print(f"power: Height x{height_scale}: detected in {power_h:.2%} of drifted windows (target >= 95%)")
    print(
        f"power: false alarms per undrifted window and column (target <= 5%): "
        f"overall {overall:.2%}, worst column {max(fa.values()):.2%}"
    )
    print("power:   " + ", ".join(f"{c} {v:.1%}" for c, v in fa.items()))
    print(f"power: Weight (not drifted) alerts in height-drifted windows: {weight_in_drifted:.1%}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["speed", "power"])
    args = parser.parse_args()
    if args.only in (None, "power"):
        power()
    if args.only in (None, "speed"):
        speed()
