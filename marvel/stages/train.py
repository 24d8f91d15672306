"""Stage `train`: fit processor + model as one pipeline, score it on the test set, track, register, promote."""

from __future__ import annotations

import logging

import mlflow
import numpy as np
import pandas as pd
from mlflow.data.pandas_dataset import from_pandas

from marvel.core import catalog
from marvel.core.cards import Card
from marvel.core.context import RunContext
from marvel.core.errors import MarvelError
from marvel.core.metrics import METRICS, majority_baseline, score
from marvel.core.results import CVResult, RowCounts, TrainResult
from marvel.core.schemas import TARGET, Features
from marvel.core.tables import TableRef
from marvel.training.evaluation import plot_confusion, plot_roc
from marvel.training.pipeline import build_pipeline, split_xy
from marvel.training.registry import register_and_promote
from marvel.training.selection import cross_validate, summarise

log = logging.getLogger(__name__)


def log_table_input(ctx: RunContext, table: TableRef, df: pd.DataFrame, version: int, context: str) -> None:
    """The table and version this run read, as an MLflow dataset input (lineage in the run's UI)."""
    name = str(table)
    dataset = from_pandas(df, source=ctx.store.uri(table), name=f"{name}@v{version}", targets=TARGET)
    mlflow.log_input(dataset, context=context, tags={"table": name, "version": str(version)})


def _versions(ctx: RunContext) -> tuple[int, int]:
    """The train/test versions this run's processing wrote (a parallel sweep job may have written newer
    ones), else the latest."""
    if ctx.results.process is not None:
        v = ctx.results.process.versions
        return v.train_set, v.test_set
    found = []
    for table in (catalog.TRAIN_SET, catalog.TEST_SET):
        version = ctx.store.version(table)
        if version is None:
            raise MarvelError(
                f"table '{table}' does not exist at {ctx.store.uri(table)}: run the stage that writes it first "
                "(e.g. python -m marvel stages=[process])"
            )
        found.append(version)
    return found[0], found[1]


def _row_counts(ctx: RunContext) -> RowCounts:
    """Row accounting of the processing that made these tables (this run's, or the latest recorded)."""
    if ctx.results.process is not None:
        return ctx.results.process.rows
    stats = ctx.store.read(catalog.PROCESS_STATS).sort_values("processed_at").iloc[-1]
    counts = RowCounts(
        **{k: int(stats[k]) for k in ("rows_raw", "rows_quarantined", "rows_train", "rows_test")}
    )
    ctx.tracker.log_metrics(counts.as_dict())
    return counts


def _cross_validate(ctx: RunContext, X: pd.DataFrame, y: np.ndarray, rows: RowCounts) -> CVResult:
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
    return CVResult(
        rows=rows,
        cv=stats,
        summary=(
            f"cv {metric} {stats[f'cv_{metric}_mean']:.4f} ± {stats[f'cv_{metric}_std']:.4f} "
            f"over {cfg.cv.folds} folds (baseline {stats[f'cv_baseline_{metric}_mean']:.4f})"
        ),
    )


def run(ctx: RunContext) -> TrainResult | CVResult:
    cfg, store = ctx.cfg, ctx.store
    train_version, test_version = _versions(ctx)
    train = store.read(catalog.TRAIN_SET, train_version).sort_values("Id").reset_index(drop=True)
    log_table_input(ctx, catalog.TRAIN_SET, train, train_version, "training")
    rows = _row_counts(ctx)
    X_train, y_train = split_xy(train)
    if cfg.train.mode == "cv":
        return _cross_validate(ctx, X_train, y_train, rows)

    test = store.read(catalog.TEST_SET, test_version).sort_values("Id").reset_index(drop=True)
    log_table_input(ctx, catalog.TEST_SET, test, test_version, "testing")
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
    verdict = register_and_promote(
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
    if not np.isnan(verdict.champion_metric):
        ctx.tracker.log_metrics({f"champion_{promo.metric}": verdict.champion_metric})
    mlflow.set_tags(
        {
            "promoted": str(verdict.promoted).lower(),
            "model_version_basic": verdict.basic_version,
            "model_version_custom": verdict.custom_version,
        }
    )

    card = Card("train", f"Training: {cfg.model.name} with {cfg.features._target_.rsplit('.', 1)[-1]}")
    card.table("Rows", rows.as_dict())
    card.grid(
        "Test metrics",
        ["metric", "model", "always-majority", "champion (same rows)"],
        [[m, metrics[m], baseline[m], verdict.champion_metric if m == promo.metric else ""] for m in METRICS],
    )
    card.table(
        "Registry",
        {
            cfg.env.model_basic: f"v{verdict.basic_version}",
            cfg.env.model_custom: f"v{verdict.custom_version}",
            f"alias {promo.alias}": "moved" if verdict.promoted else f"stays on v{verdict.champion_version}",
            "promotion rule": f"{promo.metric} not worse than champion",
        },
    )
    card.image("ROC curve", roc_png).image("Confusion matrix", cm_png)
    ctx.tracker.log_card(card)
    return TrainResult(rows=rows, metrics=metrics, baseline=baseline, promotion=verdict)
