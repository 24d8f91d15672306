"""Shared fixtures: an isolated MARVEL_HOME per test, in-process runs from the real config, the real sample."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hypothesis import settings
from omegaconf import DictConfig

from marvel.core.config import CONFIG_DIR

REPO = Path(__file__).resolve().parents[1]

# CI sees the same examples on every run (a failure there is a real regression, not a lucky draw, and is
# reproducible); locally hypothesis explores new examples each run and remembers failures.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
# Small, fast defaults for tests: the behaviour is the same, the numbers of rows and trees are not.
FAST = ["data.n_rows=2000", "model.params.n_estimators=60"]


def real_data_path() -> Path | None:
    env = os.environ.get("MARVEL_REAL_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data" / "marvel_sample.csv")
    return next((p.resolve() for p in candidates if p.is_file()), None)


@pytest.fixture
def real_data() -> Path:
    path = real_data_path()
    if path is None:
        pytest.skip("needs the real Kaggle sample: set MARVEL_REAL_DATA (neither it nor the file was found)")
    return path


@pytest.fixture
def marvel_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "marvel_home"
    monkeypatch.setenv("MARVEL_HOME", str(home))
    monkeypatch.delenv("MARVEL_SERVING_TOKEN", raising=False)
    return home


def make_config(home: Path, overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(
            config_name="config",
            overrides=[f"paths.root={home}", f"paths.outputs={home}/out", *overrides],
        )


@pytest.fixture
def run_marvel(marvel_home: Path) -> Callable[..., dict[str, Any]]:
    """Run the engine in-process on the real config with overrides; returns the stage results."""
    from marvel.core.engine import run

    def _run(*overrides: str, fast: bool = True) -> dict[str, Any]:
        cfg = make_config(marvel_home, [*(FAST if fast else []), *overrides])
        return run(cfg, out_dir=marvel_home / "out")

    return _run


@pytest.fixture
def cli(marvel_home: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`python -m marvel ...` as a user runs it."""

    def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "MARVEL_HOME": str(marvel_home)}
        env.pop("HYDRA_FULL_ERROR", None)
        return subprocess.run(
            [sys.executable, "-m", "marvel", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return _cli


@pytest.fixture(scope="session")
def session_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("session")
