"""Stage `score`: batch-score a table with the registered model, on the run's compute engine.

python -m marvel stages=[score]                      # test_set by the champion (alias latest-model)
python -m marvel stages=[score] score.table=raw score.alias=challenger
"""

from __future__ import annotations

import logging

import pandas as pd

from marvel.core.context import RunContext
from marvel.core.errors import MarvelError
from marvel.core.registry import alias_version
from marvel.core.results import ScoreResult
from marvel.core.schemas import Predictions

log = logging.getLogger(__name__)
SAMPLE = 1000  # rows checked against the Predictions contract


def run(ctx: RunContext) -> ScoreResult:
    cfg, compute = ctx.cfg, ctx.compute
    spec = cfg.score
    name = cfg.env.model_basic
    found = alias_version(name, spec.alias)
    if found is None:
        raise MarvelError(f"no model {name} at alias '{spec.alias}': train one first (python -m marvel)")
    version = str(found.version)
    # raw rows carry the Kaggle id column; the model takes either names, but scores are keyed by Id
    frame = compute.rename(compute.read(ctx.store, spec.table), {"PageID": "Id"})
    scored_at = pd.Timestamp.now(tz="UTC").tz_localize(None)
    constants = {"model_name": name, "model_version": version, "scored_at": scored_at}
    out = compute.predictions(
        f"models:/{name}/{version}", frame, float(cfg.model.get("threshold", 0.5)), constants
    )
    Predictions.validate(compute.head(out, SAMPLE))
    table_version = ctx.store.write(spec.output, out)
    rows = compute.count(compute.read(ctx.store, spec.output, table_version))
    ctx.tracker.log_metrics({"rows_scored": rows})
    summary = f"scored {rows} rows of {spec.table} with {name} v{version} -> {spec.output} v{table_version}"
    log.info(summary)
    return ScoreResult(rows=rows, model_version=version, table_version=table_version, summary=summary)
