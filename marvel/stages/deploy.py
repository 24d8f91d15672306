"""Stage `deploy`: serve the registered model(s) the `deploy` config names.

`deploy=local` (default) serves alias `latest-model` on 127.0.0.1; `deploy=ab` splits traffic between the
champion and the challenger. With `deploy.block=true` the stage serves until SIGINT/SIGTERM; with false it
returns the running endpoint (in the stage's result) so later code can send it traffic.
"""

from __future__ import annotations

import logging
from typing import Any

import mlflow
from hydra.utils import instantiate

from marvel.core.context import RunContext
from marvel.core.results import DeployResult

log = logging.getLogger(__name__)


def _summary(endpoint: Any) -> str:
    d = endpoint.describe()
    entities = ", ".join(
        f"{e['variant']}={e['entity_name']} v{e['entity_version']} {e['traffic_percentage']:g}%"
        for e in d["served_entities"]
    )
    stats = d["stats"]
    state = "serving" if endpoint.running else "served"
    statuses = ", ".join(f"{code}: {n}" for code, n in stats["by_status"].items())
    return (
        f"{state} {d['name']} at {d['url']} [{entities}]; {stats['requests']} requests"
        f"{f' ({statuses})' if statuses else ''} -> {stats['rows_written']} rows in {d['inference_table']['name']}"
    )


def run(ctx: RunContext) -> DeployResult:
    deployer = instantiate(ctx.cfg.deploy, _convert_="all")
    endpoint = deployer.deploy(ctx)
    described = endpoint.describe()
    if mlflow.active_run() is not None:
        mlflow.set_tags(
            {
                "deploy.endpoint": described["name"],
                "deploy.served_entities": ", ".join(
                    f"{e['variant']}:{e['entity_name']}/{e['entity_version']}@{e['traffic_percentage']:g}%"
                    for e in described["served_entities"]
                ),
            }
        )
    return DeployResult(
        endpoint=endpoint,
        url=endpoint.url,
        invocations_url=endpoint.invocations_url,
        served_entities=described["served_entities"],
        stats=described["stats"],
        summary=_summary(endpoint),
    )
