"""Checks an environment makes before a run touches anything (``env.preflight``)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from marvel.core.errors import MarvelError
from marvel.core.results import RunResult


class Preflight:
    """What an environment checks before a run (`check`) and does after it (`finish`)."""

    def check(self, cfg: DictConfig) -> None:
        """Raise `MarvelError` with what to do when the environment cannot run `cfg`."""

    def plan_lines(self, cfg: DictConfig) -> list[str]:
        """What this environment would set up, for a dry run's plan (read from config, nothing touched)."""
        return []

    def finish(self, cfg: DictConfig, result: RunResult) -> None:
        """Hand the run's verdicts to whatever runs next (a job's next task); nothing by default."""


class LocalPreflight(Preflight):
    """Local runs need nothing but a writable folder."""

    def check(self, cfg: DictConfig) -> None:
        root = Path(cfg.paths.root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MarvelError(
                f"cannot create {root} ({exc.strerror}); set paths.root or MARVEL_HOME"
            ) from None
