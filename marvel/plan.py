"""``dry_run=true``: what a run would read, write, register, serve and monitor, without touching anything."""

from __future__ import annotations

from omegaconf import DictConfig


def plan_lines(cfg: DictConfig) -> list[str]:
    env = cfg.env
    store = env.store
    where = store.get("root") or f"{env.get('catalog')}.{env.get('schema')}"
    lines = [
        f"env            {env.name}",
        f"stages         {', '.join(cfg.stages)}",
        f"data           {cfg.data._target_}",
        f"tables         {', '.join(f'{where}/{t}' if store.get('root') else f'{where}.{t}' for t in env.tables)}",
        f"tracking       {env.tracking_uri} (experiment {env.experiment_name})",
        f"registry       {env.registry_uri}",
        f"models         {env.model_basic}, {env.model_custom} (alias {cfg.promotion.alias}, rule {cfg.promotion.metric})",
        f"features       {cfg.features._target_}",
        f"model          {cfg.model.name}: {dict(cfg.model.params)}",
        f"deploy         {cfg.deploy.get('_target_', '-')} endpoint {cfg.deploy.get('endpoint_name', '-')}",
        f"monitor        {cfg.monitor.get('_target_', '-')}",
    ]
    return lines


def print_plan(cfg: DictConfig) -> None:
    print("marvel plan (dry run, nothing touched)")
    for line in plan_lines(cfg):
        print("  " + line)
