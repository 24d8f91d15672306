"""Stage `process`: load raw rows, validate, quarantine what fails, split into train_set / test_set."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path

import mlflow
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from sklearn.model_selection import train_test_split

import marvel
from marvel.core import catalog
from marvel.core.cards import Card
from marvel.core.context import RunContext
from marvel.core.errors import MarvelError, one_line
from marvel.core.locks import exclusive
from marvel.core.results import ProcessResult, RowCounts, TableVersions
from marvel.core.schemas import LABELS, TARGET, ProcessStats, SplitTable
from marvel.core.sources import DataSource, Lineage

log = logging.getLogger(__name__)


def fingerprint(cfg: DictConfig, source: DataSource) -> str:
    """Equal for runs whose train/test tables would be equal: same data and split config, same code."""
    spec = {
        "data": OmegaConf.to_container(cfg.data, resolve=True),
        "split": OmegaConf.to_container(cfg.split, resolve=True),
        "source": source.fingerprint(),
        "marvel": marvel.__version__,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _reuse(ctx: RunContext, fp: str) -> ProcessResult | None:
    """The counts and versions of an earlier processing with this fingerprint, if the store has one."""
    if not ctx.store.exists(catalog.PROCESS_STATS):
        return None
    stats = ctx.store.read(catalog.PROCESS_STATS)
    if "fingerprint" not in stats.columns:
        return None
    hits = stats[stats["fingerprint"] == fp].sort_values("processed_at")
    if hits.empty:
        return None
    hit = hits.iloc[-1]
    lineage = Lineage.from_tags(hit.to_dict(), prefix="lineage_")
    rows = RowCounts(**{k: int(hit[k]) for k in ("rows_raw", "rows_quarantined", "rows_train", "rows_test")})
    versions = TableVersions(
        **{k: int(hit[f"version_{k}"]) for k in ("raw", "train_set", "test_set", "quarantine")}
    )
    return ProcessResult(
        rows=rows,
        versions=versions,
        lineage=lineage,
        reused_from=str(hit["run_id"]),
        summary=f"reused the processing of run {hit['run_id']}",
    )


def check(cfg: DictConfig) -> None:
    """Before any MLflow run opens: the data source can be read (a missing CSV costs no run)."""
    source: DataSource = instantiate(cfg.data, _convert_="all")
    source.check()


def run(ctx: RunContext) -> ProcessResult:
    """Process once per distinct data+split config within a sweep; always in a plain run."""
    cfg = ctx.cfg
    source: DataSource = instantiate(cfg.data, _convert_="all")
    fp = fingerprint(cfg, source)
    if not cfg.get("parent_run_id"):
        return _process(ctx, source, fp)
    # sweep jobs (maybe in parallel processes) share one processing: the first computes, the others reuse
    waiting = "process: another job is processing the same data and split; waiting to reuse its tables"
    with exclusive(Path(cfg.paths.root) / "locks" / f"process-{fp}.lock", waiting):
        hit = _reuse(ctx, fp)
        if hit is None:
            return _process(ctx, source, fp)
    ctx.tracker.log_metrics(hit.rows.as_dict())
    mlflow.set_tag("process_reused_from", hit.reused_from)
    log.info("reusing processed tables of run %s (same data and split config)", hit.reused_from)
    return hit


def _process(ctx: RunContext, source: DataSource, fp: str) -> ProcessResult:
    cfg, store, compute = ctx.cfg, ctx.store, ctx.compute
    lineage = source.lineage()
    log.info("loading raw rows from %s on %s", type(source).__name__, compute.name)
    raw = compute.load(source)
    rows_raw = compute.count(raw)
    raw_version = store.write(catalog.RAW, raw)

    rows, quarantined = compute.validate(raw, ctx.run_id)
    # quarantined rows are written before anything else can fail, so they are never lost
    if len(quarantined):
        quarantine_version = store.write(catalog.QUARANTINE, quarantined, mode="append")
    else:
        found = store.version(catalog.QUARANTINE)
        quarantine_version = -1 if found is None else found
    if len(rows) < 10 or rows[TARGET].nunique() < 2:
        top = quarantined["reason"].value_counts().index[0] if len(quarantined) else "none"
        raise MarvelError(
            f"only {len(rows)} of {rows_raw} rows are valid, too few to train ({len(quarantined)} quarantined, "
            f"most often for {top!r}); fix the input, the rows are in {store.uri(catalog.QUARANTINE)}"
        )

    try:
        train, test = train_test_split(
            rows,
            test_size=cfg.split.test_size,
            random_state=cfg.split.seed,
            stratify=rows[TARGET] if cfg.split.stratify else None,
        )
    except ValueError as exc:  # too few rows of a class for a stratified split, or for the test size
        names = {v: k for k, v in LABELS.items()}
        classes = ", ".join(f"{n} {names.get(v, v)}" for v, n in rows[TARGET].value_counts().items())
        raise MarvelError(
            f"cannot split {len(rows)} valid rows ({classes}) with split.test_size={cfg.split.test_size}"
            f"{' and split.stratify=true' if cfg.split.stratify else ''}: {one_line(exc)}; use more rows"
        ) from exc
    train = train.sort_values("Id").reset_index(drop=True)
    test = test.sort_values("Id").reset_index(drop=True)
    versions = TableVersions(
        raw=raw_version,
        train_set=store.write(catalog.TRAIN_SET, SplitTable.validate(train)),
        test_set=store.write(catalog.TEST_SET, SplitTable.validate(test)),
        quarantine=quarantine_version,
    )
    counts = RowCounts(
        rows_raw=rows_raw, rows_quarantined=len(quarantined), rows_train=len(train), rows_test=len(test)
    )
    assert counts.rows_raw == counts.rows_quarantined + counts.rows_train + counts.rows_test, counts
    record = pd.DataFrame(
        [
            {
                **counts.as_dict(),
                **{f"version_{k}": v for k, v in versions.as_dict().items()},
                "run_id": ctx.run_id,
                "fingerprint": fp,
                "source": source.description or type(source).__name__,
                **{f"lineage_{k}": v for k, v in asdict(lineage).items()},
                "processed_at": pd.Timestamp.now(tz="UTC").tz_localize(None),
            }
        ]
    )
    store.write(catalog.PROCESS_STATS, ProcessStats.validate(record), mode="append")

    card = Card("process", "Processing: raw rows to train and test tables")
    card.table("Rows", {**counts.as_dict(), "alive rate (train)": round(float(train[TARGET].mean()), 4)})
    card.table(
        "Table versions",
        {k: f"{store.uri(catalog.BY_NAME[k])} @ v{v}" for k, v in versions.as_dict().items()},
    )
    if len(quarantined):
        reasons = quarantined["reason"].str.split(": ").str[0].value_counts().to_dict()
        card.table("Quarantined rows by column", reasons)
        card.text(
            "First quarantined rows", quarantined[["row_index", "reason"]].head(20).to_string(index=False)
        )
    ctx.tracker.log_card(card)
    ctx.tracker.log_metrics(counts.as_dict())
    log.info("%s", counts.line())
    return ProcessResult(rows=counts, versions=versions, lineage=lineage)
