"""The one place that wires a run: build the parts the config names, run the stages it lists.

Nothing here knows about environments, models, data sources or stages by name: parts are `_target_`s and
stages are the functions `stage_runners` names (a new stage is a module and one line of config).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

from marvel.core import settings
from marvel.core.compute import Compute
from marvel.core.context import RunContext
from marvel.core.errors import MarvelError
from marvel.core.plan import print_plan
from marvel.core.preflight import Preflight
from marvel.core.replay import replay_config
from marvel.core.results import RunResult, StageResult
from marvel.core.tables import TableStore
from marvel.core.tracking import Tracker

log = logging.getLogger(__name__)

StageRunner = Callable[[RunContext], StageResult]


def stage_check(runner: StageRunner) -> Callable[[DictConfig], None] | None:
    """A stage module's optional `check(cfg)`: what it can verify before the run opens anything (a missing
    input file must not cost an MLflow run)."""
    module = inspect.getmodule(runner)
    check: Callable[[DictConfig], None] | None = getattr(module, "check", None)
    return check


def stage_runner(cfg: DictConfig, name: str) -> StageRunner:
    runners = cfg.get("stage_runners") or {}
    if name not in runners:
        raise MarvelError(
            f"unknown stage '{name}': choose from {sorted(runners)}, e.g. stages=[process,train]"
        )
    runner: StageRunner = settings.function_at(f"stage_runners.{name}", str(runners[name]))
    return runner


def run(
    cfg: DictConfig,
    out_dir: Path | None = None,
    extra_tags: dict[str, str] | None = None,
    overrides: Sequence[str] = (),
) -> RunResult:
    """Run `cfg.stages` in order; return every stage's result. `overrides` are the command line's (a replay
    applies them to the logged config)."""
    started = time.perf_counter()
    settings.check(cfg)  # before anything: a misspelt key fails here, in one line
    if cfg.get("replay"):
        cfg = replay_config(cfg, overrides)
        settings.check(cfg)
    preflight: Preflight = instantiate(cfg.env.preflight)
    preflight.check(cfg)
    runners = [(name, stage_runner(cfg, name)) for name in cfg.stages]  # a bad name fails before any work
    result = RunResult(stages=list(cfg.stages))
    if cfg.get("dry_run"):
        print_plan(cfg, preflight.plan_lines(cfg))
        result.dry_run = True
        return result
    for _, runner in runners:
        check = stage_check(runner)
        if check is not None:
            check(cfg)
    out_dir = Path(out_dir or cfg.paths.outputs)
    store: TableStore = instantiate(cfg.env.store)
    compute: Compute = instantiate(cfg.env.compute, _convert_="all")
    tags = dict(extra_tags or {})
    if cfg.get("parent_run_id"):
        tags.setdefault("sweep_role", "job")
    if cfg.get("replay_of"):
        tags["replay_of"] = str(cfg.replay_of)
        if cfg.get("replay_overrides"):
            tags["replay_overrides"] = str(cfg.replay_overrides)
    with Tracker(cfg, out_dir, tags) as tracker:
        ctx = RunContext(
            cfg=cfg, store=store, tracker=tracker, out_dir=out_dir, compute=compute, results=result
        )
        for name, runner in runners:
            t0 = time.perf_counter()
            log.info("stage %s: start", name)
            result.results[name] = runner(ctx)
            log.info("stage %s: done in %.1fs", name, time.perf_counter() - t0)
        result.run_id = tracker.run_id
    preflight.finish(cfg, result)
    result.seconds = time.perf_counter() - started
    print(result.summary(), flush=True)
    return result
