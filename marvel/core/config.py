"""Where the Hydra configs live: `conf/` beside the package in a checkout, `marvel/_conf` in a wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]
CONFIG_DIR = next(
    (p for p in (_PACKAGE.parent / "conf", _PACKAGE / "_conf") if (p / "config.yaml").exists()),
    _PACKAGE.parent / "conf",
)
