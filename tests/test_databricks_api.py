"""The Databricks deployer, monitor and task values with the real databricks-sdk against a strict stand-in
workspace (`tests/databricks_standin.py`): every body is checked against the SDK's own types, and state
answers as the API does, so the tests assert what a real workspace would accept."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, InvalidParameterValue, ResourceConflict

from marvel.core.errors import MarvelError
from marvel.core.results import Promotion, RunResult, TrainResult
from marvel.databricks.deployer import DatabricksDeployer
from marvel.databricks.lakehouse import granularity
from marvel.databricks.monitor import DatabricksMonitor
from marvel.databricks.preflight import DatabricksPreflight
from tests.databricks_standin import Workspace, standin_workspace

ENDPOINT = "marvel-character-model-serving"
MODEL = "mlops_dev.marvel_characters.marvel_character_model_custom"
MONITORED = "mlops_dev.marvel_characters.model_monitoring"


@pytest.fixture
def workspace(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Workspace, WorkspaceClient]]:
    with standin_workspace() as ws:
        for var in ("DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("DATABRICKS_HOST", ws.host)
        monkeypatch.setenv("DATABRICKS_TOKEN", "x")
        monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent/.databrickscfg")
        ws.tables.add(MONITORED)
        yield ws, WorkspaceClient(host=ws.host, token="x")


def _deployer(variants: list[dict[str, Any]], **kw: Any) -> DatabricksDeployer:
    settings: dict[str, Any] = {
        "endpoint_name": ENDPOINT,
        "variants": variants,
        "catalog": "mlops_dev",
        "schema": "marvel_characters",
        "inference_table": "custom_model_payload",
        "workload_size": "Small",
        "scale_to_zero": True,
        "timeout_minutes": 1,
    }
    return DatabricksDeployer(**{**settings, **kw})


def _variant(name: str, version: int, share: int, alias: str = "latest-model") -> dict[str, Any]:
    return {"name": name, "model": MODEL, "alias": alias, "version": version, "traffic_percentage": share}


@pytest.mark.slow
def test_endpoint_create_then_update_with_ab_traffic(workspace: tuple[Workspace, WorkspaceClient]) -> None:
    ws, client = workspace
    endpoint = _deployer([_variant("A", 3, 100)]).deploy(client=client)

    (create,) = ws.calls("POST", "/serving-endpoints")
    assert create["name"] == ENDPOINT
    assert create["config"]["served_entities"] == [
        {
            "name": "A",
            "entity_name": MODEL,
            "entity_version": "3",
            "workload_size": "Small",
            "scale_to_zero_enabled": True,
            # the served model reports "<name>/<version>" in every answer (model_id in the monitor)
            "environment_vars": {"MARVEL_SERVED_MODEL": f"{MODEL}/3"},
        }
    ]
    assert create["config"]["traffic_config"] == {
        "routes": [{"served_model_name": "A", "traffic_percentage": 100}]
    }
    assert create["ai_gateway"] == {
        "inference_table_config": {
            "catalog_name": "mlops_dev",
            "schema_name": "marvel_characters",
            "table_name_prefix": "custom_model",  # Databricks appends _payload
            "enabled": True,
        }
    }
    # waited: polled GET until NOT_UPDATING (one "updating" answer first), then reported READY and the URL
    gets = [p for m, p, _ in ws.requests if m == "GET" and p.endswith(ENDPOINT)]
    assert len(gets) >= 3  # existence check + "updating" + "ready"
    assert endpoint.state == "READY"
    assert endpoint.invocations_url == f"{client.config.host}/serving-endpoints/{ENDPOINT}/invocations"

    # a new version beside the champion, 50/50: an update of the config, not a second create
    ab = [_variant("A", 3, 50), _variant("B", 4, 50, alias="challenger")]
    endpoint = _deployer(ab).deploy(client=client)
    assert len(ws.calls("POST", "/serving-endpoints")) == 1
    (update,) = ws.calls("PUT", "/config")
    assert [(e["name"], e["entity_version"]) for e in update["served_entities"]] == [("A", "3"), ("B", "4")]
    assert update["traffic_config"]["routes"] == [
        {"served_model_name": "A", "traffic_percentage": 50},
        {"served_model_name": "B", "traffic_percentage": 50},
    ]
    assert not ws.calls("PUT", "/ai-gateway"), "the inference table was already configured"
    assert {e["variant"]: e["entity_version"] for e in endpoint.describe()["served_entities"]} == {
        "A": "3",
        "B": "4",
    }


def test_the_standin_refuses_what_the_api_refuses(workspace: tuple[Workspace, WorkspaceClient]) -> None:
    """Unknown fields, wrong enums, missing required fields and conflicting state: 4xx, as from Databricks."""
    ws, client = workspace
    api = client.api_client
    entity = {"name": "A", "entity_name": MODEL, "entity_version": "1", "workload_size": "Small"}
    routes = {"routes": [{"served_model_name": "A", "traffic_percentage": 100}]}
    config = {"served_entities": [entity], "traffic_config": routes}
    good = {"name": ENDPOINT, "config": {"name": ENDPOINT, **config}}
    cases = {
        "unknown field": {**good, "inference_table": "x"},
        "unknown nested field": {
            **good,
            "config": {**good["config"], "served_entities": [{**entity, "size": 1}]},
        },
        "wrong enum": {**good, "ai_gateway": {"rate_limits": [{"calls": 5, "renewal_period": "week"}]}},
        "missing required": {"config": good["config"]},
        "wrong type": {
            **good,
            "config": {**good["config"], "served_entities": [{**entity, "entity_version": 1}]},
        },
        "route to no entity": {
            **good,
            "config": {
                **good["config"],
                "traffic_config": {"routes": [{"served_model_name": "B", "traffic_percentage": 100}]},
            },
        },
    }
    for what, body in cases.items():
        with pytest.raises(DatabricksError) as err:
            api.do("POST", "/api/2.0/serving-endpoints", body=body)
        assert err.value.error_code in ("INVALID_PARAMETER_VALUE",), what
    assert not ws.endpoints
    api.do("POST", "/api/2.0/serving-endpoints", body=good)
    with pytest.raises(ResourceConflict):  # another config while the first rolls out
        api.do("PUT", f"/api/2.0/serving-endpoints/{ENDPOINT}/config", body=config)


def test_alias_resolved_in_the_uc_registry(workspace: tuple[Workspace, WorkspaceClient]) -> None:
    ws, client = workspace
    ws.aliases[(MODEL, "latest-model")] = "5"
    one = [{"name": "A", "model": MODEL, "alias": "latest-model", "version": None, "traffic_percentage": 100}]
    _deployer(one, registry_uri="databricks-uc").deploy(client=client)
    (create,) = ws.calls("POST", "/serving-endpoints")
    assert create["config"]["served_entities"][0]["entity_version"] == "5"


def test_bad_traffic_split_is_refused_before_any_call() -> None:
    with pytest.raises(MarvelError, match="add up to 100"):
        _deployer([_variant("A", 1, 60), _variant("B", 2, 60)])


def test_ab_of_one_version_twice_is_refused_before_any_call(
    workspace: tuple[Workspace, WorkspaceClient],
) -> None:
    ws, client = workspace
    with pytest.raises(MarvelError, match="A and B both serve"):
        _deployer([_variant("A", 3, 50), _variant("B", 3, 50, alias="challenger")]).deploy(client=client)
    assert ws.requests == [] or all(m == "GET" for m, _, _ in ws.requests)


@pytest.mark.slow
def test_gateway_keeps_its_settings_and_disables_the_table_before_moving_it(
    workspace: tuple[Workspace, WorkspaceClient],
) -> None:
    """put_ai_gateway replaces the whole gateway: rate limits and usage tracking set in the workspace stay;
    an enabled inference table is disabled before it moves (the API refuses to move it enabled)."""
    ws, client = workspace
    _deployer([_variant("A", 3, 100)]).deploy(client=client)
    limits = [{"calls": 100, "key": "endpoint", "renewal_period": "minute"}]
    client.api_client.do(
        "PUT",
        f"/api/2.0/serving-endpoints/{ENDPOINT}/ai-gateway",
        body={
            **ws.endpoints[ENDPOINT]["ai_gateway"],
            "rate_limits": limits,
            "usage_tracking_config": {"enabled": True},
        },
    )
    moved = {
        "catalog_name": "mlops_dev",
        "schema_name": "marvel_characters",
        "table_name_prefix": "other",
        "enabled": True,
    }
    with pytest.raises(InvalidParameterValue, match="disable it first"):  # what a naive move meets
        client.api_client.do(
            "PUT", f"/api/2.0/serving-endpoints/{ENDPOINT}/ai-gateway", body={"inference_table_config": moved}
        )
    ws.requests.clear()

    _deployer([_variant("A", 4, 100)], inference_table="other_payload").deploy(client=client)
    puts = ws.calls("PUT", "/ai-gateway")
    assert [p["inference_table_config"]["enabled"] for p in puts] == [False, True]
    assert puts[0]["inference_table_config"]["table_name_prefix"] == "custom_model"  # disabled where it was
    assert puts[1]["inference_table_config"]["table_name_prefix"] == "other"
    gateway = ws.endpoints[ENDPOINT]["ai_gateway"]
    assert gateway["rate_limits"] == limits
    assert gateway["usage_tracking_config"] == {"enabled": True}


def test_monitor_data_quality_create_update_refresh(workspace: tuple[Workspace, WorkspaceClient]) -> None:
    ws, client = workspace
    monitor = DatabricksMonitor(catalog="mlops_dev", schema="marvel_characters", granularities=["30 minutes"])
    first = monitor.create_or_refresh(client)
    assert first == {"action": "created", "api": "data_quality", "status": "DATA_PROFILING_STATUS_PENDING"}

    def creates() -> list[dict[str, Any]]:
        return [b for m, p, b in ws.requests if m == "POST" and p == "/api/data-quality/v1/monitors"]

    (create,) = creates()
    assert create["object_type"] == "table"
    assert create["object_id"] == Workspace.table_id(MONITORED)
    config = create["data_profiling_config"]
    assert config["output_schema_id"] == "sid-mlops_dev-marvel_characters"
    assert config["assets_dir"] == "/Workspace/Shared/lakehouse_monitoring/model_monitoring"
    assert config["inference_log"] == {
        "problem_type": "INFERENCE_PROBLEM_TYPE_CLASSIFICATION",
        "prediction_column": "prediction",
        "timestamp_column": "timestamp",
        "model_id_column": "model_id",
        "label_column": "label",
        "granularities": ["AGGREGATION_GRANULARITY_30_MINUTES"],
    }
    second = monitor.create_or_refresh(client)
    assert second == {
        "action": "refreshed",
        "api": "data_quality",
        "refresh_id": 1,
        "status": "MONITOR_REFRESH_STATE_PENDING",
    }
    assert len(creates()) == 1  # never a second create
    assert len(ws.calls("POST", "/refreshes")) == 1
    with pytest.raises(DatabricksError, match="already exists"):  # what a second create would meet
        client.api_client.do("POST", "/api/data-quality/v1/monitors", body=create)
    # a changed setting updates the monitor (only the inference log), then refreshes
    daily = DatabricksMonitor(catalog="mlops_dev", schema="marvel_characters", granularities=["1 day"])
    assert daily.create_or_refresh(client)["action"] == "updated and refreshed"
    (patch,) = ws.calls("PATCH", "/api/data-quality/v1/monitors/table/")
    stored = ws.monitors[Workspace.table_id(MONITORED)]["data_profiling_config"]["inference_log"]
    assert stored["granularities"] == ["AGGREGATION_GRANULARITY_1_DAY"]
    assert patch["data_profiling_config"]["output_schema_id"] == config["output_schema_id"]


def test_monitor_falls_back_to_quality_monitors_only_where_data_quality_is_unavailable(
    workspace: tuple[Workspace, WorkspaceClient],
) -> None:
    ws, client = workspace
    ws.data_quality_available = False
    monitor = DatabricksMonitor(catalog="mlops_dev", schema="marvel_characters")
    assert monitor.create_or_refresh(client)["api"] == "quality_monitors"
    (create,) = ws.calls("POST", f"/tables/{MONITORED}/monitor")
    assert create["inference_log"]["problem_type"] == "PROBLEM_TYPE_CLASSIFICATION"
    assert create["inference_log"]["granularities"] == ["30 minutes"]
    assert monitor.create_or_refresh(client) == {
        "action": "refreshed",
        "api": "quality_monitors",
        "refresh_id": 1,
        "status": "PENDING",
    }
    ws.data_quality_available = True
    ws.tables.discard(MONITORED)  # any other error is the user's, not a reason to fall back
    with pytest.raises(DatabricksError, match="does not exist"):
        monitor.create_or_refresh(client)


def test_granularities_map_to_the_data_quality_enum() -> None:
    assert granularity("30 minutes").value == "AGGREGATION_GRANULARITY_30_MINUTES"
    assert granularity("1 day").value == "AGGREGATION_GRANULARITY_1_DAY"
    assert granularity("2 weeks").value == "AGGREGATION_GRANULARITY_2_WEEKS"
    with pytest.raises(MarvelError, match="not one Databricks offers"):
        granularity("7 minutes")


@pytest.mark.slow
def test_a_whole_release_through_the_standin(
    workspace: tuple[Workspace, WorkspaceClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """create endpoint -> A/B update -> second release with a new version -> monitor create -> refresh ->
    task values, every request accepted by the strict stand-in."""
    ws, client = workspace
    _deployer([_variant("A", 1, 100)]).deploy(client=client)
    _deployer([_variant("A", 1, 50), _variant("B", 2, 50, alias="challenger")]).deploy(client=client)
    _deployer([_variant("A", 2, 100)]).deploy(client=client)  # the challenger won: release v2
    served = ws.endpoints[ENDPOINT]["served_entities"]
    assert [(e["name"], e["entity_version"], e["environment_vars"]) for e in served] == [
        ("A", "2", {"MARVEL_SERVED_MODEL": f"{MODEL}/2"})
    ]
    assert ws.endpoints[ENDPOINT]["version"] == 3
    monitor = DatabricksMonitor(catalog="mlops_dev", schema="marvel_characters")
    assert monitor.create_or_refresh(client)["action"] == "created"
    assert monitor.create_or_refresh(client)["action"] == "refreshed"
    assert not [p for m, p, _ in ws.requests if "monitor" in p and m == "POST" and "quality_monitors" in p]

    # the train task's verdict, through the SDK's runtime dbutils (what works on serverless)
    import databricks.sdk.runtime as runtime

    values: dict[str, Any] = {}
    real_set = runtime.dbutils.jobs.taskValues.set

    def record(key: str, value: Any) -> None:
        values[key] = value
        real_set(key=key, value=value)

    monkeypatch.setattr(runtime.dbutils.jobs.taskValues, "set", record)
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "client.4.0")
    promoted = Promotion(MODEL, MODEL, "2", "2", "latest-model", "roc_auc", True, "1", 0.8)
    stays = Promotion(MODEL, MODEL, "3", "3", "latest-model", "roc_auc", False, "2", 0.9)
    cfg: Any = None
    DatabricksPreflight().finish(
        cfg, RunResult(stages=["train"], results={"train": TrainResult(promotion=promoted)})
    )
    assert values == {"model_updated": 1, "model_version": "2"}
    values.clear()
    DatabricksPreflight().finish(
        cfg, RunResult(stages=["train"], results={"train": TrainResult(promotion=stays)})
    )
    assert values == {"model_updated": 0}  # latest-model did not move: no deploy, no version
