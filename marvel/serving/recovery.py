"""`recover(ctx)`: move the rows a crashed local server left in its journal into the inference table.

A server moves its own journal as it runs and when it stops; after a crash (SIGKILL, power loss with
``journal.fsync``), the next server moves the leftovers when it starts, and so does `stages=[monitor]`, so the
monitor never reads an inference table that misses answered requests. Journals of servers still running are
left to them. Every row reaches the table exactly once.
"""

from __future__ import annotations

import logging
from pathlib import Path

from marvel.core.catalog import INFERENCE_LOG
from marvel.core.context import RunContext
from marvel.serving.inference_log import recover as recover_journal

log = logging.getLogger(__name__)


def journal_dir(ctx: RunContext) -> Path | None:
    """Where the configured local endpoint journals, or None when the deploy config has no journal
    (a Databricks endpoint: its AI gateway writes the inference table)."""
    deploy = ctx.cfg.get("deploy")
    journal = deploy.get("journal") if deploy is not None else None
    if journal is None:
        return None
    directory = journal.get("dir") or Path(str(ctx.cfg.paths.root)) / "journal"
    return Path(str(directory)).expanduser().resolve()


def recover(ctx: RunContext) -> int:
    """Rows moved from dead servers' journals into the configured inference table (0 when there are none)."""
    directory = journal_dir(ctx)
    if directory is None or not directory.is_dir():
        return 0
    table = str(ctx.cfg.deploy.get("inference_table") or INFERENCE_LOG.name)
    moved = recover_journal(ctx.store, table, directory, ctx.out_dir)
    if moved:
        print(
            f"inference log: moved {moved} rows a stopped server left in its journal into {table}", flush=True
        )
    return moved
