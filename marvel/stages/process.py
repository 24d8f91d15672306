"""Stage `process`: load raw rows, validate, quarantine what fails, split into train_set / test_set."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from sklearn.model_selection import train_test_split

import marvel
from marvel.cards import Card
from marvel.compute import compute_for
from marvel.context import RunContext
from marvel.data.base import DataSource
from marvel.errors import MarvelError
from marvel.quarantine import split_valid
from marvel.schemas import LABELS, RAW_NUMERIC, RAW_TO_INPUT, TARGET, RawCharacters, SplitTable

log = logging.getLogger(__name__)

PROCESS_STATS = "process_stats"


def to_split_rows(raw: pd.DataFrame) -> pd.DataFrame:
    """Valid raw rows -> train/test rows: serving names, label as 1/0."""
    rows = raw.rename(columns=RAW_TO_INPUT)[list(RAW_TO_INPUT.values())].copy()
    rows[TARGET] = raw[TARGET].map(LABELS).astype("int64")
    return rows


def validate_rows(raw: pd.DataFrame, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Raw rows -> (valid train/test rows, quarantined rows). Spark runs this same code per partition."""
    valid, quarantined = split_valid(
        raw, RawCharacters, table="raw", stage="process", run_id=run_id, numeric=RAW_NUMERIC
    )
    rows = to_split_rows(valid)
    if len(rows):
        # the split rows must satisfy the train/test contract too; whatever does not is quarantined as well
        rows, more = split_valid(rows, SplitTable, table="split", stage="process", run_id=run_id)
        quarantined = pd.concat([quarantined, more], ignore_index=True)
    return rows, quarantined


def fingerprint(cfg: DictConfig, source: DataSource) -> str:
    """Equal for runs whose train/test tables would be equal: same data and split config, same code."""
    spec = {
        "data": OmegaConf.to_container(cfg.data, resolve=True),
        "split": OmegaConf.to_container(cfg.split, resolve=True),
        "source": source.fingerprint(),
        "marvel": marvel.__version__,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _reuse(ctx: RunContext, fp: str) -> dict | None:
    """The stats and versions of an earlier processing with this fingerprint, if the store has one."""
    if not ctx.store.exists(PROCESS_STATS):
        return None
    stats = ctx.store.read(PROCESS_STATS)
    if "fingerprint" not in stats.columns:
        return None
    hits = stats[stats["fingerprint"] == fp].sort_values("processed_at")
    if hits.empty:
        return None
    hit = hits.iloc[-1]
    counts = {k: int(hit[k]) for k in ("rows_raw", "rows_quarantined", "rows_train", "rows_test")}
    versions = {k: int(hit[f"version_{k}"]) for k in ("raw", "train_set", "test_set", "quarantine")}
    return {**counts, "versions": versions, "reused_from": str(hit["run_id"])}


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run(ctx: RunContext) -> dict:
    """Process once per distinct data+split config within a sweep; always in a plain run."""
    cfg = ctx.cfg
    source: DataSource = instantiate(cfg.data, _convert_="all")
    fp = fingerprint(cfg, source)
    if not cfg.get("parent_run_id"):
        return _process(ctx, source, fp)
    # sweep jobs (maybe in parallel processes) share one processing: the first computes, the others reuse
    with _lock(Path(cfg.paths.root) / "locks" / f"process-{fp}.lock"):
        hit = _reuse(ctx, fp)
        if hit is None:
            return _process(ctx, source, fp)
    stats = {k: hit[k] for k in ("rows_raw", "rows_quarantined", "rows_train", "rows_test")}
    ctx.state["process"] = stats
    ctx.state["versions"] = hit["versions"]
    ctx.tracker.log_metrics(stats)
    mlflow.set_tag("process_reused_from", hit["reused_from"])
    log.info("reusing processed tables of run %s (same data and split config)", hit["reused_from"])
    return {**hit, "summary": f"reused the processing of run {hit['reused_from']}"}


def _process(ctx: RunContext, source: DataSource, fp: str) -> dict:
    cfg = ctx.cfg
    compute = compute_for(cfg)
    log.info("loading raw rows from %s on %s", type(source).__name__, compute.name)
    raw = compute.load(source)
    rows_raw = compute.count(raw)
    raw_version = ctx.store.write("raw", raw)

    rows, quarantined = compute.validate(raw, ctx.run_id)
    # quarantined rows are written before anything else can fail, so they are never lost
    if len(quarantined):
        quarantine_version = ctx.store.write("quarantine", quarantined, mode="append")
    else:
        quarantine_version = ctx.store.version("quarantine") if ctx.store.exists("quarantine") else -1
    if len(rows) < 10 or rows[TARGET].nunique() < 2:
        top = quarantined["reason"].value_counts().index[0] if len(quarantined) else "none"
        raise MarvelError(
            f"only {len(rows)} of {rows_raw} rows are valid, too few to train ({len(quarantined)} quarantined, "
            f"most often for {top!r}); fix the input, the rows are in {ctx.store.uri('quarantine')}"
        )

    train, test = train_test_split(
        rows,
        test_size=cfg.split.test_size,
        random_state=cfg.split.seed,
        stratify=rows[TARGET] if cfg.split.stratify else None,
    )
    train = train.sort_values("Id").reset_index(drop=True)
    test = test.sort_values("Id").reset_index(drop=True)
    versions = {
        "raw": raw_version,
        "train_set": ctx.store.write("train_set", SplitTable.validate(train)),
        "test_set": ctx.store.write("test_set", SplitTable.validate(test)),
    }
    versions["quarantine"] = quarantine_version
    stats = {
        "rows_raw": rows_raw,
        "rows_quarantined": len(quarantined),
        "rows_train": len(train),
        "rows_test": len(test),
    }
    assert stats["rows_raw"] == stats["rows_quarantined"] + stats["rows_train"] + stats["rows_test"], stats
    record = pd.DataFrame(
        [
            {
                **stats,
                **{f"version_{k}": v for k, v in versions.items()},
                "run_id": ctx.run_id,
                "fingerprint": fp,
                "source": getattr(source, "description", type(source).__name__),
                "processed_at": pd.Timestamp.now(tz="UTC").tz_localize(None),
            }
        ]
    )
    ctx.store.write(PROCESS_STATS, record, mode="append")
    ctx.state["process"] = stats
    ctx.state["versions"] = versions

    card = Card("process", "Processing: raw rows to train and test tables")
    card.table("Rows", {**stats, "alive rate (train)": round(float(train[TARGET].mean()), 4)})
    card.table("Table versions", {k: f"{ctx.store.uri(k)} @ v{v}" for k, v in versions.items()})
    if len(quarantined):
        reasons = quarantined["reason"].str.split(": ").str[0].value_counts().to_dict()
        card.table("Quarantined rows by column", reasons)
        card.text(
            "First quarantined rows", quarantined[["row_index", "reason"]].head(20).to_string(index=False)
        )
    ctx.tracker.log_card(card)
    ctx.tracker.log_metrics(stats)
    log.info(
        "rows: raw %(rows_raw)d = quarantined %(rows_quarantined)d + train %(rows_train)d + test %(rows_test)d",
        stats,
    )
    return {**stats, "versions": versions}
