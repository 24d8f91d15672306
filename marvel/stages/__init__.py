"""Stages by name. `stages=[...]` in the config picks which run, in order; adding a stage is adding an entry."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

# name -> "module:function"; imported lazily so `stages=[deploy]` does not pay for training imports
STAGES: dict[str, str] = {
    "process": "marvel.stages.process:run",
    "train": "marvel.stages.train:run",
    "deploy": "marvel.stages.deploy:run",
    "monitor": "marvel.stages.monitor:run",
    "score": "marvel.stages.score:run",
    "simulate": "marvel.stages.simulate:run",
}


def get(name: str) -> Callable[[Any], dict]:
    from marvel.errors import MarvelError

    if name not in STAGES:
        raise MarvelError(
            f"unknown stage '{name}': choose from {sorted(STAGES)}, e.g. stages=[process,train]"
        )
    module, func = STAGES[name].split(":")
    return getattr(import_module(module), func)
