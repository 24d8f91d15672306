"""``dry_run=true``: what a run would read, write, register, serve and monitor, without touching anything.

Everything is read from the resolved config (nothing is instantiated: no Spark, no client, no credentials),
so ``+env=prd dry_run=true`` works on a laptop with nothing installed but marvel.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from marvel.core import catalog


def table_name(cfg: DictConfig, table: str) -> str:
    """Where `table` lives in this env: ``catalog.schema.table`` in Unity Catalog, else a folder."""
    store = cfg.env.store
    catalog = store.get("catalog") or (cfg.env.get("catalog") if not store.get("root") else None)
    if catalog:
        return f"{catalog}.{store.get('schema') or cfg.env.get('schema')}.{table}"
    return f"{store.get('root')}/{table}"


def _target(node: Any) -> str:
    return str(node.get("_target_", "-")) if node is not None else "-"


def _deploy_lines(cfg: DictConfig) -> list[str]:
    deploy = cfg.get("deploy")
    if deploy is None:
        return ["deploy         -"]
    lines = [f"deploy         {_target(deploy)} endpoint {deploy.get('endpoint_name', '-')}"]
    for v in deploy.get("variants") or []:
        which = f"v{v.version}" if v.get("version") is not None else f"alias {v.get('alias')}"
        lines.append(f"  variant {v.name:<6} {v.model} ({which}) {v.traffic_percentage}% of traffic")
    if deploy.get("workload_size"):
        lines.append(
            f"  compute        workload {deploy.workload_size}, scale to zero {str(deploy.get('scale_to_zero')).lower()}"
        )
    if deploy.get("inference_table"):
        lines.append(f"  inference      {table_name(cfg, deploy.inference_table)}")
    return lines


def _monitor_lines(cfg: DictConfig) -> list[str]:
    monitor = cfg.get("monitor")
    if monitor is None:
        return ["monitor        -"]
    lines = [f"monitor        {_target(monitor)}"]
    if monitor.get("monitoring_table"):
        src = table_name(cfg, monitor.get("inference_table", catalog.INFERENCE_LOG.name))
        lines.append(f"  table          {table_name(cfg, monitor.monitoring_table)} (from {src})")
    grains = monitor.get("granularities") or ([monitor.granularity] if monitor.get("granularity") else [])
    if grains:
        lines.append(f"  granularity    {', '.join(str(g) for g in grains)}")
    if monitor.get("problem_type"):
        lines.append(
            f"  profile        inference log, {monitor.problem_type}: prediction {monitor.prediction_col}, "
            f"label {monitor.label_col}, timestamp {monitor.timestamp_col}, model id {monitor.model_id_col}"
        )
    return lines


def plan_lines(cfg: DictConfig) -> list[str]:
    env = cfg.env
    compute = env.get("compute")
    compute_name = _target(compute) if isinstance(compute, DictConfig) else str(compute or "pandas")
    lines = [
        f"env            {env.name}",
        f"stages         {', '.join(cfg.stages)}",
        f"data           {cfg.data._target_}",
        f"compute        {compute_name}",
        f"store          {_target(env.store)} ({env.store.get('format', 'delta')})",
        f"tables         {', '.join(table_name(cfg, t.name) for t in catalog.LIFECYCLE)}",
        f"tracking       {env.tracking_uri} (experiment {env.experiment_name}"
        + (f", custom {env.experiment_custom}" if env.get("experiment_custom") else "")
        + ")",
        f"registry       {env.registry_uri}",
        f"models         {env.model_basic}, {env.model_custom} (alias {cfg.promotion.alias}, rule {cfg.promotion.metric})",
        f"features       {cfg.features._target_}",
        f"model          {cfg.model.name}: {dict(cfg.model.params)}",
        *_deploy_lines(cfg),
        *_monitor_lines(cfg),
    ]
    return lines


def print_plan(cfg: DictConfig, extra: list[str] | None = None) -> None:
    """The plan, plus what the environment's preflight adds (`extra`: schema creation, job runtime)."""
    print("marvel plan (dry run, nothing touched)")
    for line in [*plan_lines(cfg), *(extra or [])]:
        print("  " + line)
