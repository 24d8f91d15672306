"""Where the Hydra configs live: `conf/` beside the package in a checkout, `marvel/_conf` in a wheel."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
CONFIG_DIR = next(
    (p for p in (_HERE.parent / "conf", _HERE / "_conf") if (p / "config.yaml").exists()),
    _HERE.parent / "conf",
)
