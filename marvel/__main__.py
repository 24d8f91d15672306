"""`python -m marvel [overrides]`: a thin entry point; `marvel.engine.run` does the work."""

from __future__ import annotations

import os
import sys

from marvel.conf import CONFIG_DIR


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _fail(message: str, code: int) -> None:
    print(f"marvel: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def main() -> None:
    if any(a in ("--help", "-h") for a in sys.argv[1:]):
        from marvel.help import help_text

        print(help_text(CONFIG_DIR))
        return
    import hydra
    from hydra.errors import HydraException
    from omegaconf import DictConfig
    from omegaconf.errors import OmegaConfBaseException

    from marvel.errors import MarvelError

    # We report errors ourselves, as one line (MARVEL_DEBUG=1 shows the traceback).
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    debug = os.environ.get("MARVEL_DEBUG") == "1"

    @hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
    def _app(cfg: DictConfig) -> float | None:
        from hydra.core.hydra_config import HydraConfig

        from marvel.engine import run

        try:
            hydra_cfg = HydraConfig.get()
            tags = {"overrides": " ".join(hydra_cfg.overrides.task)}
            results = run(cfg, out_dir=hydra_cfg.runtime.output_dir, extra_tags=tags)
        except MarvelError as exc:
            # exit here, inside the job: past this point Hydra would add its own "Error executing job" line
            if debug:
                raise
            _fail(_one_line(exc), exc.exit_code)
        # a sweep's optimiser reads the returned value; plain runs ignore it
        train = results.get("train") or {}
        return (train.get("metrics") or {}).get(cfg.promotion.metric)

    try:
        _app()
    except MarvelError as exc:
        if debug:
            raise
        _fail(_one_line(exc), exc.exit_code)
    except (HydraException, OmegaConfBaseException) as exc:
        if debug:
            raise
        _fail(f"bad configuration: {_one_line(exc)} (python -m marvel --help lists the options)", 2)


if __name__ == "__main__":
    main()
