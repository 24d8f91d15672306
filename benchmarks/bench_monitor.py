"""Monitoring benchmarks: refresh cost against history, memory, and detection power vs false alarms.

    uv run python benchmarks/bench_monitor.py                 # all
    uv run python benchmarks/bench_monitor.py --only speed    # or: --only power, --only memory

1. Speed: a model is trained and registered in a temporary MARVEL_HOME (the monitor resolves its baseline
   through its lineage), then 1,000,000 records in 10,000 requests (100 records each) over 48 thirty-minute
   windows are written in exactly the InferenceLog shape the server writes. Timed in one process, on the same
   lake: a full refresh, a no-op refresh, and an incremental refresh adding 20,000 records; each with the
   report, as `stages=[monitor]` runs it. Printed as ratios against the full refresh of the same run
   (targets: incremental <= 10%, no-op <= 5%).
2. Memory: peak RSS of `python -m marvel stages=[monitor]` (a real process) for an incremental refresh of
   20,000 records on a history of 250,000 and of 1,000,000 records: it should not grow with the history.
3. Power: 100 seeds per scenario, 5 drifted and 5 undrifted windows of 200 records each, compared with a
   baseline by the monitor's own drift code and alert rules (conf/monitor/local.yaml). Detection = share of
   drifted windows whose drifted column alerts; false alarms = share of (undrifted window, column) pairs
   that alert. Feature drift uses a stand-in model whose P(alive) follows the true label (so a label shift
   moves its answers); prediction drift also uses a model trained as +experiment=drift trains it, with the
   baseline the monitor resolves from its lineage (its answers on its own test rows).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from marvel.core.labels import labels as words_of
from marvel.core.tables import DeltaTableStore
from marvel.data.synthetic.source import SyntheticSource
from marvel.monitoring.alerts import evaluate
from marvel.monitoring.baseline import BaselineBuilder, by_key
from marvel.monitoring.drift import build_baseline, drift
from marvel.monitoring.lake import Lake
from marvel.monitoring.monitor import LocalMonitor
from marvel.monitoring.payload import inference_rows, raw_to_records, synthetic_train_set

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf" / "monitor" / "local.yaml"
T0 = pd.Timestamp("2025-01-01")
STEP_MS = 30 * 60 * 1000
TRAIN = ["data.n_rows=2000", "model.params.n_estimators=60"]


def monitor_config() -> dict:
    cfg = OmegaConf.to_container(OmegaConf.load(CONF), resolve=True)
    cfg.pop("_target_")
    return cfg  # type: ignore[return-value]


def trained_home(root: Path, overrides: list[str] = TRAIN) -> Path:
    """A MARVEL_HOME with a model at v1 (process + train, as `python -m marvel` does)."""
    home = root / "home"
    env = {**os.environ, "MARVEL_HOME": str(home)}
    subprocess.run(
        [sys.executable, "-m", "marvel", *overrides], cwd=REPO, env=env, check=True, capture_output=True
    )
    return home


def payload(rows: int, windows: int, first: int = 0, seed: int = 7, per_request: int = 100) -> pd.DataFrame:
    """`rows` records starting at record `first` of a stream of `windows` windows' worth per million."""
    raw = SyntheticSource(seed=seed).generate(rows, seed + first)
    rec = raw_to_records(raw)
    proba = np.random.default_rng(seed + first).beta(5, 2, len(rec))
    per_ms = windows * STEP_MS // 1_000_000
    ts = T0.value // 10**6 + (first + np.arange(len(rec))) * per_ms
    return inference_rows(rec, proba, ts, batch_size=per_request)


def speed(rows: int = 1_000_000, windows: int = 48, extra: int = 20_000) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench_monitor_"))
    try:
        home = trained_home(root)
        mlflow.set_tracking_uri(f"sqlite:///{home}/mlflow.db")
        mlflow.set_registry_uri(f"sqlite:///{home}/mlflow.db")
        store = DeltaTableStore(home / "lake")
        t = time.perf_counter()
        store.write("custom_model_payload", payload(rows, windows))
        more = payload(extra, windows, first=rows)
        print(f"speed: wrote {rows} records of history in {time.perf_counter() - t:.1f}s")
        monitor = LocalMonitor(**monitor_config())
        ctx = SimpleNamespace(store=store, out_dir=root / "out", run_id="bench")
        seconds: dict[str, float] = {}
        for what in ("full", "no-op"):
            t = time.perf_counter()
            res = monitor.refresh(ctx)
            seconds[what] = time.perf_counter() - t
            print(f"speed: {what} refresh: {seconds[what]:.2f}s ({res['summary']})")
            print(f"speed:   {res['timings']}")
        store.write("custom_model_payload", more, mode="append")
        t = time.perf_counter()
        res = monitor.refresh(ctx)
        seconds["incremental"] = time.perf_counter() - t
        print(f"speed: incremental (+{extra} records): {seconds['incremental']:.2f}s ({res['summary']})")
        print(f"speed:   {res['timings']}")
        full = seconds["full"]
        print(
            f"speed: ratios to the full refresh of {rows} records: incremental "
            f"{seconds['incremental'] / full:.1%} (target <= 10%), no-op {seconds['no-op'] / full:.1%} "
            "(target <= 5%)"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _peak_rss(home: Path) -> tuple[float, str]:
    """Peak RSS (MB) of one `python -m marvel stages=[monitor]` process, measured by a wrapper process."""
    code = (
        "import resource, subprocess, sys;"
        "r = subprocess.run([sys.executable, '-m', 'marvel', 'stages=[monitor]'], capture_output=True, text=True);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); print(r.stdout[-4000:])"
    )
    env = {**os.environ, "MARVEL_HOME": str(home)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    first, _, rest = out.stdout.partition("\n")
    line = next(
        (ln for ln in rest.splitlines() if "monitor:" in ln and "window(s)" in ln), rest.strip()[-200:]
    )
    return int(first) / 1024, line.strip()


def memory(histories: tuple[int, ...] = (250_000, 1_000_000), windows: int = 48, extra: int = 20_000) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench_monitor_rss_"))
    try:
        base = trained_home(root)
        for rows in histories:
            home = root / f"home_{rows}"
            shutil.copytree(base, home)
            _fix_mlflow_paths(base, home)
            store = DeltaTableStore(home / "lake")
            store.write("custom_model_payload", payload(rows, windows))
            full, _ = _peak_rss(home)
            store.write("custom_model_payload", payload(extra, windows, first=rows), mode="append")
            inc, line = _peak_rss(home)
            print(
                f"memory: history {rows:>9} records: full refresh peak RSS {full:,.0f} MB; "
                f"incremental (+{extra}) {inc:,.0f} MB  [{line}]"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _fix_mlflow_paths(src: Path, dst: Path) -> None:
    with sqlite3.connect(dst / "mlflow.db") as db:
        for table, col in (("model_versions", "source"), ("model_versions", "storage_location")):
            db.execute(f"update {table} set {col} = replace({col}, ?, ?)", (str(src), str(dst)))
        db.execute(
            "update experiments set artifact_location = replace(artifact_location, ?, ?)",
            (str(src), str(dst)),
        )
        db.execute("update runs set artifact_uri = replace(artifact_uri, ?, ?)", (str(src), str(dst)))


# -- power --------------------------------------------------------------------------------------------------
Answer = Callable[[pd.DataFrame, pd.DataFrame], np.ndarray]  # (raw rows, records) -> P(alive)


def stand_in(rng: np.random.Generator) -> Answer:
    """A stand-in model that knows the label, blurred: its P(alive) follows what the label says."""

    def answer(raw: pd.DataFrame, records: pd.DataFrame) -> np.ndarray:
        alive = (raw["Alive"] == "Alive").to_numpy()
        return np.clip(np.where(alive, 0.75, 0.45) + rng.normal(0, 0.1, len(raw)), 0.01, 0.99)

    return answer


STAND_IN_SCENARIOS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("Height x1.5", {"height_scale": 1.5}, ["Height"]),
    ("Weight x1.5", {"weight_scale": 1.5}, ["Weight"]),
    ("Earth-616 at 70% (35% calibrated)", {"universe_shares": {"Earth-616": 0.7}}, ["Universe"]),
    ("stand-in model, alive rate 0.6 (0.75)", {"alive_rate": 0.6}, ["probability", "prediction"]),
]
DRIFT_EXPERIMENT = {
    "height_scale": 1.5,
    "weight_scale": 1.5,
    "gender_shares": {"Male": 0.7, "Female": 0.3},
    "universe_shares": {"Earth-616": 0.7},
    "alive_rate": 0.6,
}
MODEL_SCENARIOS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("trained model, +experiment=drift's drift", DRIFT_EXPERIMENT, ["probability", "prediction"]),
    (
        "trained model, Earth-616 at 70%",
        {"universe_shares": {"Earth-616": 0.7}},
        ["probability", "prediction"],
    ),
]


def windows(
    source: SyntheticSource, answer: Answer, model_id: str, seeds: int, per_seed: int, seed0: int, n: int
) -> list[pd.DataFrame]:
    """`seeds` x `per_seed` independent windows of `n` records with the model's answers and labels."""
    out = []
    for s in range(seeds):
        raw = source.generate(n * per_seed, seed0 + s)
        rec = raw_to_records(raw).astype({"Height": float, "Weight": float})
        p = answer(raw, rec)
        rec["probability"], rec["prediction"] = p, words_of(p, 0.5)
        rec["label"] = (raw["Alive"] == "Alive").astype(float).to_numpy()
        rec["model_id"] = model_id
        out += [rec.iloc[k * n : (k + 1) * n] for k in range(per_seed)]
    return out


def detect(
    clean: list[pd.DataFrame], drifted: list[pd.DataFrame], baselines: dict, cfg: dict
) -> tuple[pd.DataFrame, set, list, list]:
    """Drift rows and alerts of every window (two steps apart: BASELINE drift only, each window alone)."""
    step = pd.Timedelta(minutes=30)
    starts = [T0 + step * (2 * i) for i in range(len(clean) + len(drifted))]
    frames = [f.assign(window_start=w) for f, w in zip([*clean, *drifted], starts, strict=True)]
    rows = pd.concat(frames, ignore_index=True)
    numeric, categorical = cfg["numeric"], cfg["categorical"]
    d = drift(rows, starts, baselines, numeric, categorical, step, [], cfg["min_count"], cfg["smoothing"])
    found = evaluate(
        d, pd.DataFrame(columns=["column_name", "window.start"]), cfg["alerts"], numeric, categorical
    )
    return d, {(a.window_start, a.column_name) for a in found}, starts[: len(clean)], starts[len(clean) :]


def stand_in_baseline(cfg: dict, answer: Answer) -> dict:
    numeric, categorical = cfg["numeric"], cfg["categorical"]
    test_raw = SyntheticSource().generate(4000, 99)
    test = raw_to_records(test_raw).astype({"Height": float, "Weight": float})
    test["Alive"] = (test_raw["Alive"] == "Alive").astype(int).to_numpy()
    p = answer(test_raw, test)
    test["probability"], test["prediction"] = p, words_of(p, 0.5)
    features = [c for c in numeric if c != "probability"]
    cats = [c for c in categorical if c != "prediction"]
    base = build_baseline(
        synthetic_train_set(), features, cats, cfg["bins"], cfg["max_categories"], "train_set"
    )
    answers = build_baseline(
        test, ["probability"], ["prediction"], cfg["bins"], cfg["max_categories"], "test"
    )
    for attr in ("source", "refs", "edges", "categories"):
        getattr(base, attr).update(getattr(answers, attr))
    return {("m/1", None, None): base}


def model_baseline(cfg: dict, root: Path) -> tuple[dict, Answer, str]:
    """A model trained as +experiment=drift trains it; its baseline resolved as the monitor resolves it."""
    home = trained_home(root, ["data.n_rows=5000", "model.params.n_estimators=100"])
    mlflow.set_tracking_uri(f"sqlite:///{home}/mlflow.db")
    mlflow.set_registry_uri(f"sqlite:///{home}/mlflow.db")
    lake = Lake(DeltaTableStore(home / "lake"), "bench")
    builder = BaselineBuilder(
        lake, "bench_baselines", "train_set", "test_set", cfg["numeric"], cfg["categorical"],
        cfg["bins"], cfg["max_categories"], [], 0,
    )  # fmt: skip
    model_id = "marvel_character_model_custom/1"
    model = mlflow.sklearn.load_model("models:/marvel_character_model_basic/1")
    answer: Answer = lambda raw, rec: model.predict_proba(rec)[:, 1]  # noqa: E731
    return by_key({model_id: builder.build(model_id)}), answer, model_id


def power(seeds: int = 100, per_seed: int = 5, seed0: int = 1000, per_window: int = 200) -> None:
    cfg = monitor_config()
    t = time.perf_counter()
    results, false_alarms = [], []
    root = Path(tempfile.mkdtemp(prefix="bench_power_"))
    try:
        stand = stand_in(np.random.default_rng(0))
        real = model_baseline(cfg, root)
        for who, scenarios, (baselines, answer, model_id) in (
            ("stand-in", STAND_IN_SCENARIOS, (stand_in_baseline(cfg, stand), stand, "m/1")),
            ("trained", MODEL_SCENARIOS, real),
        ):
            clean = windows(SyntheticSource(), answer, model_id, seeds, per_seed, seed0, per_window)
            for name, options, columns in scenarios:
                drifted = windows(
                    SyntheticSource(drift=options), answer, model_id, seeds, per_seed, seed0, per_window
                )
                d, hits, clean_w, drifted_w = detect(clean, drifted, baselines, cfg)
                for col in columns:
                    results.append((name, col, float(np.mean([(w, col) in hits for w in drifted_w]))))
                if name == scenarios[0][0]:  # the clean windows are the same for every scenario: count once
                    cols = sorted(set(d.loc[d["drift_type"] == "BASELINE", "column_name"]))
                    false_alarms += [((w, c) in hits, f"{c} ({who})") for w in clean_w for c in cols]
                if name.startswith("Height"):
                    base_rows = d[(d["drift_type"] == "BASELINE") & d["window.start"].isin(clean_w)]
                    noise = base_rows.groupby("column_name")[
                        ["population_stability_index", "js_distance"]
                    ].median()
                    known = base_rows.loc[base_rows["column_name"] == "Height", "marvel_count"]
                    skipped = base_rows.loc[
                        base_rows["column_name"] == "Height", "marvel_not_computed"
                    ].notna()
                    print(
                        f"power: known heights per window: median {known.median():.0f}, min {known.min():.0f}; "
                        f"Height tests not computed (< min_count {cfg['min_count']}): {skipped.mean():.1%} of windows"
                    )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"power: {seeds} seeds x ({per_seed} undrifted + {per_seed} drifted) windows of {per_window} records "
        f"per scenario, in {time.perf_counter() - t:.0f}s"
    )
    print("power: | drift | column | detected in drifted windows |")
    print("power: |---|---|---|")
    for name, col, rate in results:
        target = " (target >= 95%)" if name.startswith("Height") else ""
        print(f"power: | {name} | {col} | {rate:.1%}{target} |")
    fa = pd.DataFrame(false_alarms, columns=["hit", "column"])
    per_col = fa.groupby("column")["hit"].mean()
    print(
        f"power: false alarms per undrifted window and column (target <= 1%): overall {fa['hit'].mean():.2%}, "
        f"worst column {per_col.max():.2%} ({per_col.idxmax()})"
    )
    print("power:   " + ", ".join(f"{c} {v:.1%}" for c, v in per_col.items()))
    print("power: undrifted windows, median PSI / JS distance against the baseline (what noise looks like):")
    print(
        "power:   "
        + ", ".join(
            f"{c} {r.population_stability_index:.3f}/{r.js_distance:.3f}" for c, r in noise.iterrows()
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["speed", "power", "memory"])
    args = parser.parse_args()
    if args.only in (None, "power"):
        power()
    if args.only in (None, "speed"):
        speed()
    if args.only in (None, "memory"):
        memory()
