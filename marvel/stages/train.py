"""Stage `train`: fit processor + model as one pipeline, score it on the test set, track, register, promote."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.data.pandas_dataset import from_pandas
from mlflow.exceptions import MlflowException

import marvel
from marvel.core import catalog
from marvel.core.cards import Card
from marvel.core.context import RunContext
from marvel.core.errors import MarvelError
from marvel.core.metrics import METRICS, majority_baseline, score
from marvel.core.results import CVResult, RowCounts, TrainResult
from marvel.core.schemas import TARGET, Features
from marvel.core.sources import Lineage
from marvel.core.tables import TableRef
from marvel.core.tracking import run_tags
from marvel.training.evaluation import plot_confusion, plot_roc
from marvel.training.pipeline import build_pipeline, fingerprint, fit, split_xy
from marvel.training.registry import Names, register_and_promote, registered_with, unchanged
from marvel.training.selection import cross_validate, summarise

log = logging.getLogger(__name__)


def log_table_input(ctx: RunContext, table: TableRef, df: pd.DataFrame, version: int, context: str) -> None:
    """The table and version this run read, as an MLflow dataset input whose source is the Delta table and its
    version (a Unity Catalog name on Databricks, so UC lineage links the model to it; a path locally). The
    tags repeat table and version: the monitor resolves a model's baseline through them."""
    name = str(table)
    source = ctx.store.dataset_source(table, version)
    dataset = from_pandas(df, source=source, name=f"{name}@v{version}", targets=TARGET)
    tags = {"table": name, "version": str(version)}
    # Parallel sweep jobs log the same table version (same name and digest) into one experiment at once.
    # MLflow's SQL store looks the dataset up, then inserts it: the job that loses the race gets a unique-
    # constraint error and nothing of its attempt is kept. The dataset then exists, so a second attempt links it.
    try:
        mlflow.log_input(dataset, context=context, tags=tags)
    except MlflowException as exc:
        if "unique constraint" not in str(exc).lower():
            raise
        log.debug("dataset %s was logged by a parallel job at the same moment; linking it", dataset.name)
        mlflow.log_input(dataset, context=context, tags=tags)


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


def _lineage(ctx: RunContext, train_version: int) -> Lineage | None:
    """The data lineage of the train_set version this run reads: this run's processing, else the
    processing that wrote that version (None when it recorded none)."""
    if ctx.results.process is not None:
        return ctx.results.process.lineage
    stats = ctx.store.read(catalog.PROCESS_STATS)
    rows = stats[stats["version_train_set"] == train_version].sort_values("processed_at")
    return Lineage.from_tags(rows.iloc[-1].to_dict(), prefix="lineage_") if len(rows) else None


def _unchanged(ctx: RunContext, names: Names, rows: RowCounts, basic: Any, custom: Any) -> TrainResult:
    """This config on this data is registered already: report that version's test metrics, register nothing."""
    tags = custom.tags or {}
    metrics = {m: float(tags[m]) for m in METRICS if m in tags}
    baseline = {m: float(tags[f"baseline_{m}"]) for m in METRICS if f"baseline_{m}" in tags}
    mlflow.set_tags({"unchanged": f"v{custom.version}", "promoted": "false"})
    verdict = unchanged(names, basic, custom, str(ctx.cfg.promotion.metric))
    log.info("%s", verdict.reason)
    return TrainResult(rows=rows, metrics=metrics, baseline=baseline, promotion=verdict)


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

    names = Names(cfg.env.model_basic, cfg.env.model_custom, cfg.promotion.alias)
    lineage = _lineage(ctx, train_version)
    data = (
        asdict(lineage)
        if lineage is not None
        else {"train_set": store.uri(catalog.TRAIN_SET), "versions": [train_version, test_version]}
    )
    fp = fingerprint(cfg, data, code=f"{marvel.__version__}@{run_tags(cfg)['git_sha']}")
    mlflow.set_tag("fingerprint", fp)
    found = None if cfg.train.get("force", False) else registered_with(names, fp)
    if found is not None:
        return _unchanged(ctx, names, rows, *found)

    pipeline = build_pipeline(cfg)
    log.info("fitting %s on %d rows", cfg.model.name, len(X_train))
    fit(pipeline, X_train, y_train)
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
    ctx.store.ensure_schema()  # the models go into the tables' Unity Catalog schema: it must exist
    verdict = register_and_promote(
        pipeline,
        threshold=threshold,
        names=names,
        metric=promo.metric,
        metrics=metrics,
        baseline=baseline,
        lineage=lineage,
        margin=float(promo.min_improvement_over_baseline),
        allow_new_lineage=bool(promo.allow_new_lineage),
        X_test=X_test,
        y_test=y_test,
        tags={
            "run_id": ctx.run_id,
            "model": str(cfg.model.name),
            "fingerprint": fp,
            "train_set_version": str(train_version),
            "test_set_version": str(test_version),
            # git_sha, branch, job_run_id (and env) on every model version, as on the run
            **run_tags(cfg),
        },
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
            "verdict": verdict.reason,
        },
    )
    card.image("ROC curve", roc_png).image("Confusion matrix", cm_png)
    ctx.tracker.log_card(card)
    return TrainResult(rows=rows, metrics=metrics, baseline=baseline, promotion=verdict)
