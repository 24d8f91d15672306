"""`python -m marvel [overrides]`: a thin entry point; `marvel.core.engine.run` does the work.

User errors (`MarvelError`, a bad override) are printed as one line and exit non-zero without a traceback;
``MARVEL_DEBUG=1`` shows it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from marvel.cli.help import help_text
from marvel.cli.keys import all_keys, composed, group_keys
from marvel.core.config import CONFIG_DIR
from marvel.core.errors import MarvelError, exit_with, one_line
from marvel.core.secrets import redact_hydra_output, redact_override, secret_values


def _user_error(exc: BaseException) -> MarvelError | None:
    """The MarvelError behind `exc`, if any: Hydra wraps what a constructor raised in its own exception."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, MarvelError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _debug() -> bool:
    return os.environ.get("MARVEL_DEBUG") == "1"


def exit_if_users(exc: Exception) -> None:
    """Exit with one line when `exc` is the user's to fix (a `MarvelError`, a configuration Hydra or OmegaConf
    refused); return when it is a bug, or under MARVEL_DEBUG=1, for the caller to re-raise with its traceback."""
    if _debug():
        return
    found = _user_error(exc)
    if found is not None:
        exit_with(one_line(found), found.exit_code)
    if isinstance(exc, MissingConfigException) and exc.options:
        # Hydra's message goes on to list the options and its search path, a line each: the options suffice
        (first, *_) = str(exc).splitlines()
        exit_with(f"bad configuration: {first}; the options are {', '.join(exc.options)}")
    if isinstance(exc, HydraException | OmegaConfBaseException):
        exit_with(f"bad configuration: {one_line(exc)} (python -m marvel --help lists the options)")


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def _app(cfg: DictConfig) -> float | None:
    # imported here, not at the top: `--help` and a bad override answer without loading MLflow, pandas and
    # scikit-learn (seconds)
    from marvel.core.engine import run
    from marvel.core.results import TrainResult

    try:
        hydra_cfg = HydraConfig.get()
        overrides = list(hydra_cfg.overrides.task)
        if hydra_cfg.output_subdir is not None:  # Hydra wrote the config and overrides there, secrets and all
            folder = Path(hydra_cfg.runtime.output_dir) / hydra_cfg.output_subdir
            redact_hydra_output(folder, secret_values(cfg, overrides))
        tags = {"overrides": " ".join(redact_override(o) for o in overrides)}
        results = run(cfg, out_dir=Path(hydra_cfg.runtime.output_dir), extra_tags=tags, overrides=overrides)
    except Exception as exc:
        # exit here, inside the job: past this point Hydra would add its own "Error executing job" line
        exit_if_users(exc)
        raise
    # a sweep's optimiser reads the returned value; plain runs ignore it
    train = results.train
    return train.metrics.get(cfg.promotion.metric) if isinstance(train, TrainResult) else None


def main() -> None:
    args = sys.argv[1:]
    if any(a in ("--help", "-h") for a in args):
        # --help: the groups, options and every key; --help deploy [deploy=ab ...]: one group's keys
        names = [a for a in args if not a.startswith("-") and "=" not in a]
        chosen = [a for a in args if "=" in a]
        try:
            if names:
                cfg = composed(CONFIG_DIR, chosen)
                print("\n\n".join(group_keys(CONFIG_DIR, name, cfg) for name in names))
            else:
                print(help_text(CONFIG_DIR))
                print("\nkeys (the chosen option of each group; python -m marvel --help <group> for one):\n")
                print(all_keys(CONFIG_DIR, chosen))
        except (HydraException, OmegaConfBaseException) as exc:
            exit_if_users(exc)
            raise
        return
    # we report errors ourselves, as one line
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        _app()
    except Exception as exc:
        exit_if_users(exc)
        raise
