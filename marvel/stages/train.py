"""Stage `train`: fit processor + model as one pipeline, score it on the test set, track, register, promote."""

from __future__ import annotations

import logging
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from sklearn.pipeline import Pipeline

from marvel.cards import Card
from marvel.context import RunContext
from marvel.evaluation import METRICS, majority_baseline, plot_confusion, plot_roc, score
from marvel.registry import register_and_promote
from marvel.schemas import INPUT_COLUMNS, TARGET, Features
from marvel.selection import cross_validate, summarise
from marvel.stages.process import PROCESS_STATS

log = logging.getLogger(__name__)


def build_pipeline(cfg: DictConfig) -> Pipeline:
    """processor + estimator, both from `_target_`; the served model is this whole pipeline."""
    processor = instantiate(cfg.features, _convert_="all")
    params: dict[str, Any] = OmegaConf.to_container(cfg.model.params, resolve=True)  # type: ignore[assignment]
    estimator = instantiate(cfg.model.estimator, **params, _convert_="all")
    return Pipeline([("processor", processor), ("model", estimator)])


def split_xy(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    return df[INPUT_COLUMNS], df[TARGET].to_numpy(dtype=int)


def log_table_input(ctx: RunContext, name: str, df: pd.DataFrame, version: int, context: str) -> None:
    """The table and version this run read, as an MLflow dataset input (lineage in the run's UI)."""
    dataset = mlflow.data.from_pandas(
        df, source=ctx.store.uri(name), name=f"{name}@v{version}", targets=TARGET
    )
    mlflow.log_input(dataset, context=context, tags={"table": name, "version": str(version)})


def _row_stats(ctx: RunContext) -> dict[str, float]:
    """Row accounting of the processing that made these tables (this run's, or the latest recorded)."""
    if "process" in ctx.state:
        return ctx.state["process"]
    stats = ctx.store.read(PROCESS_STATS).sort_values("processed_at").iloc[-1]
    keys = ("rows_raw", "rows_quarantined", "rows_train", "rows_test")
    ctx.tracker.log_metrics({k: float(stats[k]) for k in keys})
    return {k: int(stats[k]) for k in keys}


def _cross_validate(ctx: RunContext, X: pd.DataFrame, y: np.ndarray) -> dict:
    """Score this configuration on validation folds of the training rows; never touches the test set."""
    cfg = ctx.cfg
    folds = cross_validate(
        lambda: build_pipeline(cfg),
        X,
        y,
        folds=int(cfg.cv.folds),
        seed=int(cfg.cv.seed),
        threshold=float(cfg.model.get("threshold", 0.5)),
    )
    stats = {**summarise(folds["model"], "cv_"), **summarise(folds["baseline"], "cv_baseline_")}
    ctx.tracker.log_metrics(stats)
    for i, v in enumerate(folds["model"][cfg.promotion.metric]):
        mlflow.log_metric(f"cv_{cfg.promotion.metric}_fold", v, step=i)
    metric = cfg.promotion.metric
    return {
        "cv": stats,
        "summary": (
            f"cv {metric} {stats[f'cv_{metric}_mean']:.4f} ± {stats[f'cv_{metric}_std']:.4f} "
            f"over {cfg.cv.folds} folds (baseline {stats[f'cv_baseline_{metric}_mean']:.4f})"
        ),
    }


def run(ctx: RunContext) -> dict:
    cfg = ctx.cfg
    # the versions this run's processing wrote (a parallel sweep job may have written newer ones), else latest
    known = ctx.state.get("versions", {})
    versions = {name: known.get(name, ctx.store.version(name)) for name in ("train_set", "test_set")}
    train = ctx.store.read("train_set", versions["train_set"]).sort_values("Id").reset_index(drop=True)
    log_table_input(ctx, "train_set", train, versions["train_set"], "training")
    rows = _row_stats(ctx)
    X_train, y_train = split_xy(train)
    if cfg.train.mode == "cv":
        return {"rows": rows, **_cross_validate(ctx, X_train, y_train)}

    test = ctx.store.read("test_set", versions["test_set"]).sort_values("Id").reset_index(drop=True)
    log_table_input(ctx, "test_set", test, versions["test_set"], "testing")
    X_test, y_test = split_xy(test)

    pipeline = build_pipeline(cfg)
    log.info("fitting %s on %d rows", cfg.model.name, len(X_train))
    pipeline.fit(X_train, y_train)
    # the processor's output must satisfy the Features contract on both sets (transform, not fit_transform)
    Features.validate(pipeline[:-1].transform(X_train.head(2000)))
    Features.validate(pipeline[:-1].transform(X_test))

    threshold = float(cfg.model.get("threshold", 0.5))
    proba = pipeline.predict_proba(X_test)[:, 1]
    metrics = score(y_test, proba, threshold)
    baseline = score(y_test, majority_baseline(y_train, len(y_test)), threshold)
    ctx.tracker.log_metrics(metrics)
    ctx.tracker.log_metrics({f"baseline_{k}": v for k, v in baseline.items()})

    plots = ctx.out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    cm_png = plot_confusion(y_test, proba, threshold, plots / "confusion_matrix.png")
    roc_png = plot_roc(y_test, proba, plots / "roc_curve.png", label=str(cfg.model.name))

    promo = cfg.promotion
    reg = register_and_promote(
        pipeline,
        threshold=threshold,
        basic_name=cfg.env.model_basic,
        custom_name=cfg.env.model_custom,
        alias=promo.alias,
        metric=promo.metric,
        challenger_metrics=metrics,
        X_test=X_test,
        y_test=y_test,
        tags={"run_id": ctx.run_id, "model": str(cfg.model.name)},
    )
    if not np.isnan(reg.champion_metric):
        ctx.tracker.log_metrics({f"champion_{promo.metric}": reg.champion_metric})
    mlflow.set_tags(
        {
            "promoted": str(reg.promoted).lower(),
            "model_version_basic": reg.basic_version,
            "model_version_custom": reg.custom_version,
        }
    )
    ctx.state["model_updated"] = reg.promoted

    card = Card("train", f"Training: {cfg.model.name} with {cfg.features._target_.rsplit('.', 1)[-1]}")
    card.table("Rows", rows)
    card.grid(
        "Test metrics",
        ["metric", "model", "always-majority", "champion (same rows)"],
        [[m, metrics[m], baseline[m], reg.champion_metric if m == promo.metric else ""] for m in METRICS],
    )
    card.table(
        "Registry",
        {
            cfg.env.model_basic: f"v{reg.basic_version}",
            cfg.env.model_custom: f"v{reg.custom_version}",
            f"alias {promo.alias}": "moved" if reg.promoted else f"stays on v{reg.champion_version}",
            "promotion rule": f"{promo.metric} not worse than champion",
        },
    )
    card.image("ROC curve", roc_png).image("Confusion matrix", cm_png)
    ctx.tracker.log_card(card)
    return {
        "rows": rows,
        "metrics": metrics,
        "baseline": baseline,
        "promotion_metric": promo.metric,
        "champion_metric": reg.champion_metric,
        "champion_version": reg.champion_version,
        "promoted": reg.promoted,
        "basic_version": reg.basic_version,
        "custom_version": reg.custom_version,
    }
