"""Helpers for the serving tests: real endpoints from the real config, the CLI server in its own process, the
inference table read back from the lake."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from conftest import clone_home
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from mlflow import MlflowClient
from omegaconf import DictConfig
from processes import Marvel

from marvel.core.compute import PandasCompute
from marvel.core.config import CONFIG_DIR
from marvel.core.context import RunContext
from marvel.core.tables import DeltaTableStore
from marvel.core.tracking import configure
from marvel.serving.deployer import LocalEndpoint

REPO = Path(__file__).resolve().parents[1]
ENDPOINT = "marvel-character-model-serving"


def home_with_challenger(trained_home: Path, dst: Path) -> Path:
    """A copy of the session's trained home (v1 at alias latest-model) plus a second version of the custom
    model at alias challenger, so A/B variants are different versions."""
    home = clone_home(trained_home, dst)
    configure(config(home))
    client = MlflowClient()
    name = "marvel_character_model_custom"
    v1 = client.get_model_version_by_alias(name, "latest-model")
    v2 = client.create_model_version(name, source=v1.source, run_id=v1.run_id, tags=v1.tags)
    client.set_registered_model_alias(name, "challenger", v2.version)
    return home


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def config(home: Path, *overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(
            config_name="config",
            overrides=[f"paths.root={home}", f"paths.outputs={home}/out", "deploy.port=0", *overrides],
        )


@contextmanager
def serve(home: Path, *overrides: str) -> Iterator[LocalEndpoint]:
    """A real endpoint from the real config (`deploy.block=false`), stopped (and flushed) afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MARVEL_SERVING_TOKEN", raising=False)
        cfg = config(home, "deploy.block=false", *overrides)
        configure(cfg)
        ctx = RunContext(
            cfg=cfg,
            store=instantiate(cfg.env.store),
            tracker=None,
            out_dir=home / "out",
            compute=PandasCompute(),
        )  # type: ignore[arg-type]
        endpoint = instantiate(cfg.deploy, _convert_="all").deploy(ctx)
    try:
        yield endpoint
    finally:
        endpoint.stop()


def post(url: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(
        url, data=data, headers={"Content-Type": "application/json", **(headers or {})}, timeout=30
    )


def table(home: Path, name: str) -> pd.DataFrame:
    return DeltaTableStore(home / "lake").read(name)


class CliServer:
    """`python -m marvel stages=[deploy] ...` in its own process (forked warm: `processes.Marvel`), its output
    collected by a reader thread."""

    def __init__(self, home: Path, *overrides: str, env: dict[str, str] | None = None) -> None:
        env = {**os.environ, "MARVEL_HOME": str(home), "PYTHONUNBUFFERED": "1", **(env or {})}
        if "MARVEL_SERVING_TOKEN" not in (env or {}):
            env.pop("MARVEL_SERVING_TOKEN", None)
        # outside the home: the secrets test reads every file there
        output = Path(tempfile.mkdtemp(prefix="marvel-server-")) / "output.log"
        self.proc = Marvel(["stages=[deploy]", "deploy.port=0", *overrides], cwd=REPO, env=env, output=output)
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.output: list[str] = []

    def _read(self) -> None:
        for line in self.proc.lines():
            self._lines.put(line)

    def wait_for_url(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.output.append(self._lines.get(timeout=1))
            except queue.Empty:
                assert self.proc.poll() is None, self.text
                continue
            if m := re.search(r"serving \S+ at (http://\S+)", self.output[-1]):
                return m.group(1)
        raise AssertionError(f"no URL within {timeout}s:\n{self.text}")

    def terminate(self, timeout: float = 120) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self._ended(timeout)

    def kill(self) -> int:
        """SIGKILL: no handler runs, nothing is flushed."""
        self.proc.kill()
        return self._ended(30)

    def _ended(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        while not self._lines.empty():
            self.output.append(self._lines.get())
        return code

    @property
    def text(self) -> str:
        return "".join(self.output)

    def __enter__(self) -> CliServer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:  # a failed test must not leave its server behind
            self.proc.kill()
            self.proc.wait(timeout=30)
