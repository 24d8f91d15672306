"""Stage `score`: batch-score a table with the registered model (pandas here, ``spark_udf`` on Spark).

python -m marvel stages=[score]                      # test_set by the champion (alias latest-model)
python -m marvel stages=[score] score.table=raw score.alias=challenger
"""

from __future__ import annotations

import logging

import pandas as pd
from mlflow import MlflowClient

from marvel.compute import compute_for
from marvel.context import RunContext
from marvel.schemas import Predictions

log = logging.getLogger(__name__)


def run(ctx: RunContext) -> dict:
    cfg = ctx.cfg
    spec = cfg.score
    name = cfg.env.model_basic
    version = str(MlflowClient().get_model_version_by_alias(name, spec.alias).version)
    compute = compute_for(cfg)
    frame = compute.read(ctx.store, spec.table)
    if spec.table == "raw":
        # raw rows carry the Kaggle names; the model takes either, but scoring output is keyed by Id
        frame = (
            frame.rename(columns={"PageID": "Id"})
            if isinstance(frame, pd.DataFrame)
            else frame.withColumnRenamed("PageID", "Id")
        )
    scored_at = pd.Timestamp.now(tz="UTC").tz_localize(None)
    constants = {"model_name": name, "model_version": version, "scored_at": scored_at}
    out = compute.predictions(
        f"models:/{name}/{version}", frame, float(cfg.model.get("threshold", 0.5)), constants
    )
    sample = out if isinstance(out, pd.DataFrame) else out.limit(1000).toPandas()
    Predictions.validate(sample)
    table_version = ctx.store.write(spec.output, out)
    rows = len(out) if isinstance(out, pd.DataFrame) else int(ctx.store.frame(spec.output).count())
    ctx.tracker.log_metrics({"rows_scored": rows})
    summary = f"scored {rows} rows of {spec.table} with {name} v{version} -> {spec.output} v{table_version}"
    log.info(summary)
    return {"rows": rows, "model_version": version, "table_version": table_version, "summary": summary}
