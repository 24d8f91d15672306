"""Random search over LightGBM settings with marvel features, by 5-fold CV on the training rows only.

    MARVEL_REAL_DATA=../shared/data/marvel_sample.csv uv run python benchmarks/tune_lightgbm.py [--trials 24]

The test rows (the same 20% split the pipeline makes with seed 42) are never used here; the chosen settings
went into conf/model/lightgbm_tuned.yaml.
"""

from __future__ import annotations

import argparse
import itertools
import os

import lightgbm as lgb
import numpy as np
from real_split import SAMPLE, real_split
from sklearn.pipeline import Pipeline

from marvel.features.marvel import MarvelProcessor
from marvel.training.selection import cross_validate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--data", default=os.environ.get("MARVEL_REAL_DATA", str(SAMPLE)))
    args = ap.parse_args()
    train, _ = real_split(args.data)
    X, y = train.drop(columns=["Alive"]), train["Alive"].to_numpy()
    space = itertools.product([0.02, 0.05], [200, 400], [7, 15, 31], [20, 60], [1.0, 10.0], [0.5, 0.8])
    grid = [
        dict(
            learning_rate=lr,
            n_estimators=n,
            num_leaves=nl,
            min_child_samples=m,
            reg_lambda=lam,
            colsample_bytree=col,
            subsample=0.8,
            subsample_freq=1,
        )
        for lr, n, nl, m, lam, col in space
    ]
    rng = np.random.default_rng(0)
    trials = [dict(learning_rate=0.01, n_estimators=1000, max_depth=6)]  # the source platform's settings
    trials += [grid[i] for i in rng.choice(len(grid), args.trials, replace=False)]
    results = []
    for params in trials:
        folds = cross_validate(
            lambda p=params: Pipeline(
                [
                    ("processor", MarvelProcessor()),
                    ("model", lgb.LGBMClassifier(verbose=-1, random_state=42, **p)),
                ]
            ),
            X,
            y,
            folds=5,
            seed=42,
        )["model"]
        auc, ll = np.array(folds["roc_auc"]), np.array(folds["log_loss"])
        results.append((auc.mean(), auc.std(ddof=1), ll.mean(), params))
        print(
            f"cv roc_auc {auc.mean():.4f} ± {auc.std(ddof=1):.4f}  log_loss {ll.mean():.4f}  {params}",
            flush=True,
        )
    print("\nbest five by cv roc_auc:")
    for auc, sd, ll, params in sorted(results, key=lambda r: -r[0])[:5]:
        print(f"  {auc:.4f} ± {sd:.4f}  log_loss {ll:.4f}  {params}")


if __name__ == "__main__":
    main()
