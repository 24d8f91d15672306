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
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from marvel.cli.help import help_text
from marvel.core.config import CONFIG_DIR
from marvel.core.errors import MarvelError


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _fail(message: str, code: int) -> None:
    print(f"marvel: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def _debug() -> bool:
    return os.environ.get("MARVEL_DEBUG") == "1"


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def _app(cfg: DictConfig) -> float | None:
    # imported here, not at the top: `--help` and a bad override answer without loading MLflow, pandas and
    # scikit-learn (seconds)
    from marvel.core.engine import run
    from marvel.core.results import TrainResult

    try:
        hydra_cfg = HydraConfig.get()
        tags = {"overrides": " ".join(hydra_cfg.overrides.task)}
        results = run(cfg, out_dir=Path(hydra_cfg.runtime.output_dir), extra_tags=tags)
    except MarvelError as exc:
        # exit here, inside the job: past this point Hydra would add its own "Error executing job" line
        if _debug():
            raise
        _fail(_one_line(exc), exc.exit_code)
    # a sweep's optimiser reads the returned value; plain runs ignore it
    train = results.train
    return train.metrics.get(cfg.promotion.metric) if isinstance(train, TrainResult) else None


def main() -> None:
    if any(a in ("--help", "-h") for a in sys.argv[1:]):
        print(help_text(CONFIG_DIR))
        return
    # we report errors ourselves, as one line
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        _app()
    except MarvelError as exc:
        if _debug():
            raise
        _fail(_one_line(exc), exc.exit_code)
    except (HydraException, OmegaConfBaseException) as exc:
        if _debug():
            raise
        _fail(f"bad configuration: {_one_line(exc)} (python -m marvel --help lists the options)", 2)
