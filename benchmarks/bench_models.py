"""The tuned default against the source platform's configuration, on the same held-out rows of the real sample.

    MARVEL_REAL_DATA=../shared/data/marvel_sample.csv uv run python benchmarks/bench_models.py [--sweep]

Prints ROC AUC, log loss, F1 and accuracy for both, and the difference with a 95% bootstrap interval
(paired: the same resampled rows score both models). With --sweep, also times one 4-job sweep with Hydra's
basic launcher (one job after another) and with the joblib launcher (2 workers), in this run, and prints the
ratio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from real_split import SAMPLE, real_split

from marvel.core.config import CONFIG_DIR
from marvel.core.metrics import majority_baseline, score
from marvel.training.pipeline import build_pipeline

CONFIGS = {
    "tuned default (features=marvel model=lightgbm_tuned)": [],
    "seed (features=seed model=lightgbm)": ["features=seed", "model=lightgbm"],
}
METRICS = ("roc_auc", "log_loss", "f1", "accuracy")


def fit_score(overrides: list[str], train, test) -> np.ndarray:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["paths.outputs=/tmp", *overrides])
    pipe = build_pipeline(cfg)
    pipe.fit(train.drop(columns=["Alive"]), train["Alive"].to_numpy())
    return pipe.predict_proba(test.drop(columns=["Alive"]))[:, 1]


def bootstrap(y: np.ndarray, a: np.ndarray, b: np.ndarray, metric: str, n: int = 1000) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(n):
        idx = rng.integers(0, len(y), len(y))
        if len(np.unique(y[idx])) < 2:
            continue
        diffs.append(score(y[idx], a[idx])[metric] - score(y[idx], b[idx])[metric])
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return float(lo), float(hi)


def sweep_time(launcher: str) -> float:
    """Wall time of one 4-job sweep (default synthetic data, 5-fold CV per job) with the given launcher."""
    with tempfile.TemporaryDirectory() as home:
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "marvel",
                "-m",
                "model.params.max_depth=3,5,7,9",
                "sweep.final_fit=false",
                launcher,
            ],
            env={**os.environ, "MARVEL_HOME": home},
            check=True,
            capture_output=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("MARVEL_REAL_DATA", str(SAMPLE)))
    ap.add_argument("--sweep", action="store_true", help="also time a 4-job sweep, serial vs parallel")
    args = ap.parse_args()
    train, test = real_split(args.data)
    y = test["Alive"].to_numpy()
    proba = {name: fit_score(ov, train, test) for name, ov in CONFIGS.items()}
    proba["always-majority baseline"] = majority_baseline(train["Alive"].to_numpy(), len(y))
    print(f"real sample: {len(train)} train rows, {len(test)} held-out rows (seed 42 split)\n")
    print(f"{'configuration':<56}" + "".join(f"{m:>10}" for m in METRICS))
    for name, p in proba.items():
        s = score(y, p)
        print(f"{name:<56}" + "".join(f"{s[m]:>10.4f}" for m in METRICS))
    tuned, seed = (proba[k] for k in CONFIGS)
    print("\ntuned minus seed, 95% paired bootstrap interval (1000 resamples):")
    for m in METRICS:
        d = score(y, tuned)[m] - score(y, seed)[m]
        lo, hi = bootstrap(y, tuned, seed, m)
        print(f"  {m:<9} {d:+.4f}  [{lo:+.4f}, {hi:+.4f}]")
    if args.sweep:
        serial = sweep_time("hydra/launcher=basic")
        parallel = sweep_time("hydra.launcher.n_jobs=2")
        print(
            f"\n4-job sweep (20k synthetic rows, 5-fold CV each) wall time: serial {serial:.1f}s, "
            f"parallel (joblib, 2 workers) {parallel:.1f}s: {serial / parallel:.2f}x faster"
        )


if __name__ == "__main__":
    main()
