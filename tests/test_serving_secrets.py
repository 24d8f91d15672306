"""The serving token never leaves the process: after deploys with a token given as an override and from the
environment, nothing under MARVEL_HOME (MLflow database and artifacts, the run folders with Hydra's record,
the lake, the journal) contains it."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from omegaconf import OmegaConf
from serving_kit import ENDPOINT, CliServer, config, home_with_challenger, post

from marvel.core.secrets import REDACTED, is_secret, redact, redact_override, restore, scrub
from marvel.core.tracking import configure
from marvel.serving.examples import RAW_EXAMPLE

OVERRIDE_TOKEN = "s3cret-override-7f3a9c"
ENV_TOKEN = "s3cret-environment-41b2"


def files_containing(root: Path, needle: str) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and needle.encode() in path.read_bytes():
            found.append(path)
    return found


@pytest.mark.slow
def test_no_token_is_written_anywhere_by_a_deploy(trained_home: Path, tmp_path: Path) -> None:
    home = home_with_challenger(trained_home, tmp_path / "marvel_home")
    runs = [
        (OVERRIDE_TOKEN, [f"deploy.token={OVERRIDE_TOKEN}"], {}),
        (ENV_TOKEN, [], {"MARVEL_SERVING_TOKEN": ENV_TOKEN}),
    ]
    for token, overrides, env in runs:
        with CliServer(home, "deploy.inference_table=payload_secret", *overrides, env=env) as server:
            url = f"{server.wait_for_url()}/serving-endpoints/{ENDPOINT}/invocations"
            assert post(url, {"dataframe_records": [RAW_EXAMPLE]}).status_code == 401
            ok = post(url, {"dataframe_records": [RAW_EXAMPLE]}, {"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200
            assert server.terminate() == 0, server.text
            assert token not in server.text
    for token, _, _ in runs:
        assert files_containing(home, token) == []
    # and what is there says a token was set, not what it was
    configure(config(home))
    deploys = mlflow.search_runs(
        search_all_experiments=True, filter_string="tags.`deploy.endpoint` = '" + ENDPOINT + "'"
    )
    assert len(deploys) == 2
    for run_id in deploys["run_id"]:
        logged = OmegaConf.create(mlflow.artifacts.load_text(f"runs:/{run_id}/config.yaml"))
        assert logged.deploy.token == REDACTED
    overrides_tags = set(deploys["tags.overrides"])
    assert any(f"deploy.token={REDACTED}" in tag for tag in overrides_tags)
    hydra_overrides = [p.read_text() for p in home.glob("runs/*/*/.hydra/overrides.yaml")]
    assert any(f"deploy.token={REDACTED}" in text for text in hydra_overrides)


def test_the_redaction_rule() -> None:
    assert all(
        is_secret(k)
        for k in ["token", "deploy.token", "api_key", "DATABRICKS_TOKEN", "db_password", "secret"]
    )
    assert not any(is_secret(k) for k in ["tokens", "max_tokens", "keyword", "monkey", "secretary"])
    data = {
        "deploy": {"token": "abc", "port": 1},
        "calibration": {"identity_secret": -0.06},
        "x": [{"api_key": "k"}],
    }
    assert redact(data) == {
        "deploy": {"token": REDACTED, "port": 1},
        "calibration": {"identity_secret": -0.06},  # a number, not a secret
        "x": [{"api_key": REDACTED}],
    }
    assert redact_override("deploy.token=abc") == f"deploy.token={REDACTED}"
    assert redact_override("deploy.token=null") == "deploy.token=null"
    assert redact_override("deploy.port=1") == "deploy.port=1"
    assert scrub("Bearer abcdef and abcdef", {"abcdef"}) == f"Bearer {REDACTED} and {REDACTED}"
    # a replayed run takes its secrets from the environment again, never from a log
    replayed = restore(OmegaConf.create({"deploy": {"token": REDACTED, "port": 1}}))
    assert replayed.deploy.token is None
