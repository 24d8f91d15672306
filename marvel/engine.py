"""The one place that wires a run: build the parts the config names, run the stages it lists.

Nothing here knows about environments, models or data sources by name: they are all `_target_`s.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from marvel import stages
from marvel.context import RunContext, Tracker
from marvel.summary import print_summary

log = logging.getLogger(__name__)


def run(
    cfg: DictConfig, out_dir: Path | None = None, extra_tags: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run `cfg.stages` in order; return each stage's result by name."""
    started = time.perf_counter()
    if cfg.get("replay"):
        from marvel.replay import replay_config

        cfg = replay_config(cfg)
    preflight = instantiate(cfg.env.preflight) if cfg.env.get("preflight") else None
    if preflight is not None:
        preflight.check(cfg)
    funcs = [(name, stages.get(name)) for name in cfg.stages]  # fail on a bad stage name before any work
    if cfg.get("dry_run"):
        from marvel.plan import print_plan

        print_plan(cfg)
        return {"dry_run": True}
    out_dir = Path(out_dir or cfg.paths.outputs)
    store = instantiate(cfg.env.store)
    results: dict[str, Any] = {}
    tags = dict(extra_tags or {})
    if cfg.get("parent_run_id"):
        tags.setdefault("sweep_role", "job")
    if cfg.get("replay_of"):
        tags["replay_of"] = str(cfg.replay_of)
    with Tracker(cfg, out_dir, tags) as tracker:
        ctx = RunContext(cfg=cfg, store=store, tracker=tracker, out_dir=out_dir)
        for name, func in funcs:
            t0 = time.perf_counter()
            log.info("stage %s: start", name)
            results[name] = func(ctx)
            log.info("stage %s: done in %.1fs", name, time.perf_counter() - t0)
        results["run_id"] = tracker.run_id
    if preflight is not None and hasattr(preflight, "finish"):
        preflight.finish(cfg, results)
    results["seconds"] = time.perf_counter() - started
    print_summary(cfg, results)
    return results
