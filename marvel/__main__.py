"""`python -m marvel [overrides]`: a thin entry point; `marvel.engine.run` does the work."""

from __future__ import annotations

import os
import sys

from marvel.conf import CONFIG_DIR


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def main() -> None:
    import hydra
    from hydra.errors import HydraException
    from omegaconf import DictConfig
    from omegaconf.errors import OmegaConfBaseException

    from marvel.errors import MarvelError

    @hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
    def _app(cfg: DictConfig) -> float | None:
        from hydra.core.hydra_config import HydraConfig

        from marvel.engine import run

        results = run(cfg, out_dir=HydraConfig.get().runtime.output_dir)
        # a sweep's optimiser reads the returned value; plain runs ignore it
        train = results.get("train") or {}
        return (train.get("metrics") or {}).get(cfg.promotion.metric)

    # We report errors ourselves, as one line (MARVEL_DEBUG=1 shows the traceback).
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    debug = os.environ.get("MARVEL_DEBUG") == "1"
    try:
        _app()
    except MarvelError as exc:
        if debug:
            raise
        print(f"marvel: {_one_line(exc)}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (HydraException, OmegaConfBaseException) as exc:
        if debug:
            raise
        print(
            f"marvel: bad configuration: {_one_line(exc)} (python -m marvel --help lists the options)",
            file=sys.stderr,
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
