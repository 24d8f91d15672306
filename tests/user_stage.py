"""A stage as a user adds one (docs/architecture.md, 'a stage'): a module outside marvel and a config line."""

from __future__ import annotations

from marvel.core import catalog
from marvel.core.context import RunContext
from marvel.core.results import StageResult


def run(ctx: RunContext) -> StageResult:
    rows = ctx.store.read(catalog.TRAIN_SET)
    return StageResult(summary=f"{len(rows)} training rows, {int(rows['Alive'].sum())} alive")
