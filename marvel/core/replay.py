"""`+replay=<run id>`: rerun exactly the configuration an MLflow run logged."""

from __future__ import annotations

from collections.abc import Sequence

import mlflow
from hydra.core.override_parser.overrides_parser import OverridesParser
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from marvel.core.config import CONFIG_DIR
from marvel.core.errors import MarvelError
from marvel.core.secrets import restore
from marvel.core.tracking import configure


def logged_config(run_id: str) -> DictConfig:
    """The resolved config.yaml a run logged (MLflow must already point at the run's tracking store)."""
    try:
        text = mlflow.artifacts.load_text(f"runs:/{run_id}/config.yaml")
    except MlflowException:
        raise MarvelError(
            f"cannot replay run {run_id}: no such run or it logged no config.yaml in {mlflow.get_tracking_uri()}"
        ) from None
    cfg = OmegaConf.create(text)
    assert isinstance(cfg, DictConfig)
    return cfg


def replay_config(cfg: DictConfig, overrides: Sequence[str] = ()) -> DictConfig:
    """The config to run for `+replay=<id>`: the logged one, tagged as a replay, with `overrides` (other than
    the replay itself) applied on top and recorded in `replay_overrides`.

    What ran (data, features, model, split, seeds, stages) comes from the log; where it runs (`paths`, `env`:
    the lake, MLflow, the engine) is this invocation's, so a run logged elsewhere replays here. A replay
    reruns on purpose, so it always trains and registers (``train.force``). A group choice
    (``model=logistic``) cannot apply to a logged, fully resolved config and is refused with one line; keys
    (``model.params.max_depth=4``, ``stages=[train]``) apply.
    """
    configure(cfg)
    run_id = str(cfg.replay)
    replayed = restore(logged_config(run_id))  # secrets were redacted in the log: from the environment again
    applied = []
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.key_or_group
        if key == "replay":
            continue
        if "." not in key and (CONFIG_DIR / key).is_dir():
            raise MarvelError(
                f"+replay reruns the config run {run_id} logged; the group choice {override.input_line} cannot "
                f"apply to it: override its keys instead (e.g. {key}.<key>=...), or run without +replay"
            )
        if override.is_delete():
            parent, _, leaf = key.rpartition(".")
            node = OmegaConf.select(replayed, parent) if parent else replayed
            if isinstance(node, DictConfig) and leaf in node:
                del node[leaf]
        else:
            OmegaConf.update(replayed, key, override.value(), merge=False, force_add=True)
        applied.append(str(override.input_line))
    replayed.paths = cfg.paths
    replayed.env = cfg.env
    replayed.replay = None
    replayed.replay_of = run_id
    replayed.replay_overrides = " ".join(applied) or None
    replayed.parent_run_id = None
    replayed.run_name = f"replay of {run_id}"
    replayed.train.force = True
    return replayed
