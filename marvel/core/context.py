"""What every stage gets: the config, the table store, the compute engine, the MLflow run, a folder for its
outputs, and the results of the stages that ran before it in this run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from marvel.core.compute import Compute
from marvel.core.results import RunResult
from marvel.core.tables import TableStore
from marvel.core.tracking import Tracker


@dataclass
class RunContext:
    cfg: DictConfig
    store: TableStore
    tracker: Tracker
    out_dir: Path
    compute: Compute
    results: RunResult = field(default_factory=lambda: RunResult(stages=[]))

    @property
    def run_id(self) -> str:
        return self.tracker.run_id
