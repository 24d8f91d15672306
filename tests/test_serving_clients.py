"""The clients people already use, unmodified, against the local endpoint: databricks-sdk (`get`, `query`),
MLflow's Databricks deploy client (`get_endpoint`, `predict`) and MLflow's scoring-server client (with its
NaN for missing values)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from serving_kit import ENDPOINT, home_with_challenger, post, serve, table

from marvel.serving.deployer import LocalEndpoint
from marvel.serving.examples import RAW_EXAMPLE, SOURCE_EXAMPLE

TOKEN = "dapi-local-test-token"
TABLE = "payload_clients"


@pytest.fixture(scope="module")
def home(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return home_with_challenger(trained_home, tmp_path_factory.mktemp("clients") / "marvel_home")


@pytest.fixture(scope="module")
def endpoint(home: Path) -> Iterator[LocalEndpoint]:
    with serve(home, "deploy=ab", f"deploy.token={TOKEN}", f"deploy.inference_table={TABLE}") as ep:
        yield ep


def test_databricks_sdk_gets_and_queries_the_endpoint(
    endpoint: LocalEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    from databricks.sdk import WorkspaceClient

    for name in ("DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    w = WorkspaceClient(host=endpoint.url, token=TOKEN)
    got = w.serving_endpoints.get(ENDPOINT)
    assert got.name == ENDPOINT
    assert got.state is not None
    assert got.state.ready is not None
    assert got.state.ready.value == "READY"
    assert got.config is not None
    assert got.config.served_entities is not None
    entities = {e.name: (e.entity_name, e.entity_version) for e in got.config.served_entities}
    assert entities == {
        "A": ("marvel_character_model_custom", "1"),
        "B": ("marvel_character_model_custom", "2"),
    }
    assert got.config.traffic_config is not None
    assert got.config.traffic_config.routes is not None
    assert {r.served_model_name: r.traffic_percentage for r in got.config.traffic_config.routes} == {
        "A": 50,
        "B": 50,
    }

    answer = w.serving_endpoints.query(
        ENDPOINT, dataframe_records=[RAW_EXAMPLE], client_request_id="sdk-query-1"
    )
    direct = post(
        endpoint.invocations_url, {"dataframe_records": [RAW_EXAMPLE]}, {"Authorization": f"Bearer {TOKEN}"}
    ).json()
    assert answer.predictions == direct["predictions"]
    assert answer.served_model_name == direct["variant"]  # the served-model-name header
    assert endpoint.flush()
    logged = table(endpoint_home(endpoint), TABLE).set_index("client_request_id")
    assert logged.loc["sdk-query-1", "status_code"] == 200

    wrong = WorkspaceClient(host=endpoint.url, token="not-the-token")
    with pytest.raises(Exception, match=r"(?i)unauth|bearer|401"):
        wrong.serving_endpoints.get(ENDPOINT)


def endpoint_home(endpoint: LocalEndpoint) -> Path:
    return Path(endpoint.table_uri).parents[1]


def test_mlflow_databricks_deploy_client(endpoint: LocalEndpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.deployments import get_deploy_client

    monkeypatch.setenv("DATABRICKS_HOST", endpoint.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    client = get_deploy_client("databricks")
    described = client.get_endpoint(ENDPOINT)
    assert described["name"] == ENDPOINT
    assert described["state"]["ready"] == "READY"
    answer = client.predict(endpoint=ENDPOINT, inputs={"dataframe_records": [SOURCE_EXAMPLE]})
    assert answer["predictions"]["Survival prediction"][0] in ("alive", "dead")


def test_mlflow_scoring_client_with_nan_for_missing_values(home: Path) -> None:
    """MLflow's client sends a DataFrame as `dataframe_split` JSON with `NaN` where a value is missing."""
    import mlflow
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    frame = pd.DataFrame(
        [RAW_EXAMPLE, {**RAW_EXAMPLE, "Id": "no-height", "Height": np.nan, "Marital_Status": None}]
    )
    with serve(home, "deploy.inference_table=payload_mlflow_client") as ep:
        client = ScoringServerClient(ep.host, ep.port)
        client.wait_server_ready(timeout=10)  # MLflow's own readiness probe: GET /ping
        got = client.invoke(frame, params={"return_probabilities": True})
        assert ep.flush()
    expected = mlflow.pyfunc.load_model(ep.app.models["A"].uri).predict(
        frame.replace({np.nan: None}), params={"return_probabilities": True}
    )
    assert got["predictions"] == expected
    logged = table(home, "payload_mlflow_client")
    assert logged["status_code"].tolist() == [200]
    assert "NaN" in logged["request"].iloc[0]  # the body as received
