"""Stage `simulate`: synthetic traffic with injected drift, sent over HTTP to the local endpoint.

An undrifted stream, then a drifted one (the `simulate.drift` options of the synthetic generator), each
request stamped with a time inside its window (X-Marvel-Request-Time, honoured with accept_request_time),
so a few seconds of traffic fill many monitoring windows. The labels of the records sent are written to
`labels`, as ground truth arriving later would be. The endpoint is stopped at the end, which flushes the
inference table for the `monitor` stage that follows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig

from marvel.core.context import RunContext
from marvel.core.errors import MarvelError
from marvel.core.results import SimulateResult, TrainResult
from marvel.core.schemas import Labels
from marvel.core.sources import PartitionedSource
from marvel.monitoring.payload import raw_to_records
from marvel.monitoring.windows import parse_granularity
from marvel.serving.client import Client

log = logging.getLogger(__name__)


def timeline(start: str | None, windows: int, step: pd.Timedelta) -> pd.Timestamp:
    """Start of the first window: given, or aligned so the last window is the one containing now."""
    if start is not None:
        return pd.Timestamp(start).tz_localize(None) if pd.Timestamp(start).tzinfo else pd.Timestamp(start)
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    return now.floor(step) - step * (windows - 1)


def sources(cfg: DictConfig, drift: Mapping[str, Any]) -> tuple[PartitionedSource, PartitionedSource]:
    """The configured data source, undrifted and drifted: it must generate rows in partitions."""
    clean = instantiate(cfg.data, _convert_="all")
    if not isinstance(clean, PartitionedSource):
        raise MarvelError(
            f"simulate draws fresh rows per window from a generating data source; {type(clean).__name__} "
            "cannot (use data=synthetic)"
        )
    try:
        drifted = instantiate(cfg.data, drift=dict(drift), _convert_="all")
    except Exception as exc:  # Hydra wraps the constructor's TypeError/MarvelError
        cause = exc.__cause__ or exc
        if isinstance(cause, MarvelError):
            raise cause from None
        raise MarvelError(f"simulate: data source {type(clean).__name__} cannot drift ({cause})") from None
    return clean, drifted


def streams(cfg: DictConfig, s: DictConfig) -> list[tuple[int, bool, pd.DataFrame]]:
    """(window index, drifted?, raw rows) per window; each window its own generator partition (unique Ids)."""
    clean, drifted = sources(cfg, s.drift)
    n_clean = int(s.windows_undrifted)
    out = []
    for w in range(n_clean + int(s.windows_drifted)):
        src = drifted if w >= n_clean else clean
        out.append((w, w >= n_clean, src.generate(int(s.records_per_window), int(s.seed), partition=w)))
    return out


def served(ctx: RunContext) -> dict[str, Any]:
    """`simulate.serve`: "deploy" serves what the deploy config names; "trained" serves the version this run
    trained (what a drift experiment is about), whatever the champion is."""
    how = str(ctx.cfg.simulate.get("serve", "deploy"))
    if how == "deploy":
        return {}
    train = ctx.results.train
    if how != "trained" or not isinstance(train, TrainResult) or train.promotion is None:
        raise MarvelError(
            f"simulate.serve={how}: 'trained' serves the model this run trained (put train before simulate in "
            "stages), 'deploy' what the deploy config names"
        )
    p = train.promotion
    variant = {"name": "A", "model": p.custom_name, "version": p.custom_version, "traffic_percentage": 100}
    return {"variants": [variant]}


def run(ctx: RunContext) -> SimulateResult:
    s = ctx.cfg.simulate
    step = parse_granularity(ctx.cfg.monitor.get("granularity", "30 minutes"))
    windows = int(s.windows_undrifted) + int(s.windows_drifted)
    first = timeline(s.start, windows, step)
    per_request = int(s.records_per_request)
    data = streams(ctx.cfg, s)

    # the configured endpoint, started in the background on a free port, trusting our request times
    deployer = instantiate(
        ctx.cfg.deploy,
        block=False,
        port=0,
        accept_request_time=True,
        return_probabilities=True,
        **served(ctx),
        _convert_="all",
    )
    endpoint = deployer.deploy(ctx)
    client = Client(endpoint.invocations_url, token=getattr(deployer, "token", None))
    sent = failed = 0
    labels: list[pd.DataFrame] = []
    rng = np.random.default_rng(int(s.seed))
    try:
        for w, _, raw in data:
            records = raw_to_records(raw)
            starts = range(0, len(records), per_request)
            n_req = len(starts)
            for i, lo in enumerate(starts):
                # spread the window's requests evenly over it
                at = first + step * w + step * (i + 0.5) / n_req
                try:
                    client.predict(
                        records.iloc[lo : lo + per_request],
                        return_probabilities=True,
                        request_time_ms=at.value // 1_000_000,
                    )
                    sent += 1
                except Exception as exc:  # a failed request is logged by the server too; count and go on
                    failed += 1
                    log.warning("simulate: request failed: %s", exc)
            known = rng.random(len(raw)) < float(s.label_share)
            labels.append(
                pd.DataFrame(
                    {
                        "Id": raw["PageID"][known].to_numpy(),
                        "label": (raw["Alive"][known] == "Alive").astype(int).to_numpy(),
                    }
                )
            )
    finally:
        client.close()
        endpoint.stop()  # flushes the inference table
    if sent == 0:
        raise MarvelError(f"simulate: every request to {endpoint.invocations_url} failed; see the log")
    table = pd.concat(labels, ignore_index=True)
    table["labelled_at"] = pd.Timestamp.now(tz="UTC").tz_localize(None)
    table = Labels.validate(table)
    name = str(s.labels_table)
    ctx.store.write(name, table, mode="append" if ctx.store.exists(name) else "overwrite")
    n_clean = int(s.windows_undrifted)
    drift_start = first + step * n_clean
    summary = (
        f"{sent} requests ({sent * per_request} records) over {windows} windows from {first:%Y-%m-%d %H:%M}; "
        f"drift {dict(s.drift)} from {drift_start:%Y-%m-%d %H:%M}; {len(table)} labels"
        + (f"; {failed} failed" if failed else "")
    )
    print(f"simulate: {summary}", flush=True)
    ctx.tracker.log_metrics(
        {"simulate_requests": sent, "simulate_failed": failed, "simulate_labels": len(table)}
    )
    return SimulateResult(
        requests=sent,
        failed=failed,
        labels=len(table),
        windows=windows,
        first_window=first,
        drift_start=drift_start,
        summary=summary,
    )
