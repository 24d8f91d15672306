"""The registered custom model also serves with MLflow's own `mlflow models serve`, as MLflow users expect."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import requests

from marvel.serving.examples import RAW_EXAMPLE, SOURCE_EXAMPLE

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlflow_models_serve_answers_like_the_pyfunc(trained: Path) -> None:
    uri = f"sqlite:///{trained}/mlflow.db"
    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)  # mlflow starts uvicorn from PATH
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_REGISTRY_URI": uri,  # both, as a user would: the registry is where the model is looked up
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            "models:/marvel_character_model_custom@latest-model",
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/ping", timeout=1).ok:
                    break
            except requests.ConnectionError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                time.sleep(0.5)
        body = {"dataframe_records": [SOURCE_EXAMPLE, RAW_EXAMPLE]}
        got = requests.post(f"http://127.0.0.1:{port}/invocations", json=body, timeout=30)
        assert got.status_code == 200, got.text
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        expected = mlflow.pyfunc.load_model("models:/marvel_character_model_custom@latest-model").predict(
            pd.DataFrame([SOURCE_EXAMPLE, RAW_EXAMPLE])
        )
        assert got.json() == {"predictions": expected}
        assert len(expected["Survival prediction"]) == 2
        # what the source platform's notebook sends: integers for Teams, Weight and the flags
        ints = {**SOURCE_EXAMPLE, "Teams": 1, "Weight": 70, "Magic": 0, "Mutant": 0}
        got = requests.post(
            f"http://127.0.0.1:{port}/invocations", json={"dataframe_records": [ints]}, timeout=30
        )
        assert got.status_code == 200, got.text
        model = mlflow.pyfunc.load_model("models:/marvel_character_model_custom@latest-model")
        assert got.json() == {"predictions": model.predict(pd.DataFrame([ints]))}
    finally:
        server.terminate()
        server.wait(timeout=30)
