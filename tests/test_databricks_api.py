"""The Databricks deployer and monitor with the real databricks-sdk against a loopback REST server.

The server answers like the workspace API for the calls we make (serving endpoints, Unity Catalog quality
monitors, the UC model registry's alias lookup) and records every request, so the tests assert what would be
sent to a real workspace: request bodies, the create-then-update sequence, polling until ready.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from marvel.core.errors import MarvelError
from marvel.databricks.deployer import DatabricksDeployer
from marvel.databricks.monitor import DatabricksMonitor

ENDPOINT = "marvel-character-model-serving"
MODEL = "mlops_dev.marvel_characters.marvel_character_model_custom"
MONITORED = "mlops_dev.marvel_characters.model_monitoring"


@dataclass
class FakeWorkspace:
    """State and request log of the fake workspace."""

    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    polls_until_ready: int = 1  # GETs answered "updating" after each create/update
    pending: dict[str, int] = field(default_factory=dict)
    monitors: dict[str, dict[str, Any]] = field(default_factory=dict)
    aliases: dict[tuple[str, str], str] = field(default_factory=dict)

    def calls(self, method: str, fragment: str = "") -> list[dict[str, Any]]:
        return [body for m, p, body in self.requests if m == method and fragment in p]

    def endpoint_view(self, name: str, poll: bool = True) -> dict[str, Any]:
        """The endpoint as GET returns it; each polling GET moves a pending update one step nearer done."""
        ep = self.endpoints[name]
        updating = self.pending.get(name, 0) > 0
        if updating and poll:
            self.pending[name] -= 1
        return {
            "name": name,
            "id": "ep-1",
            "state": {
                "config_update": "IN_PROGRESS" if updating else "NOT_UPDATING",
                "ready": "NOT_READY" if updating and ep["version"] == 1 else "READY",
            },
            "config": {
                "served_entities": [
                    {**e, "state": {"deployment": "DEPLOYMENT_READY"}} for e in ep["served_entities"]
                ],
                "traffic_config": ep["traffic_config"],
                "config_version": ep["version"],
            },
            "ai_gateway": ep.get("ai_gateway", {}),
        }


def _handler(ws: FakeWorkspace) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _missing(self, what: str) -> None:
            self._reply(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"{what} does not exist"})

        def _handle(self, method: str) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            if url.path == "/.well-known/databricks-config":  # the SDK's host-metadata probe: none here
                return self._reply(404, {"error_code": "NOT_FOUND", "message": "no host metadata"})
            ws.requests.append((method, url.path, body))
            if self.headers.get("Authorization") != "Bearer x":  # the SDK must send the token
                return self._reply(401, {"error_code": "UNAUTHENTICATED", "message": "no token"})
            parts = url.path.strip("/").split("/")
            # serving endpoints: /api/2.0/serving-endpoints[/<name>[/config|/ai-gateway]]
            if parts[:3] == ["api", "2.0", "serving-endpoints"]:
                name = parts[3] if len(parts) > 3 else body.get("name")
                tail = parts[4] if len(parts) > 4 else ""
                if method == "POST" and len(parts) == 3:
                    ws.endpoints[name] = {
                        "served_entities": body["config"]["served_entities"],
                        "traffic_config": body["config"]["traffic_config"],
                        "ai_gateway": body.get("ai_gateway", {}),
                        "version": 1,
                    }
                    ws.pending[name] = ws.polls_until_ready
                    return self._reply(200, ws.endpoint_view(name, poll=False))
                if name not in ws.endpoints:
                    return self._missing(f"endpoint {name}")
                if method == "GET" and not tail:
                    return self._reply(200, ws.endpoint_view(name))
                if method == "PUT" and tail == "config":
                    ep = ws.endpoints[name]
                    ep.update(served_entities=body["served_entities"], traffic_config=body["traffic_config"])
                    ep["version"] += 1
                    ws.pending[name] = ws.polls_until_ready
                    return self._reply(200, ws.endpoint_view(name, poll=False))
                if method == "PUT" and tail == "ai-gateway":
                    ws.endpoints[name]["ai_gateway"] = body
                    return self._reply(200, body)
            # quality monitors: /api/2.1/unity-catalog/tables/<table>/monitor[/refreshes]
            if parts[:4] == ["api", "2.1", "unity-catalog", "tables"] and "monitor" in parts:
                table = parts[4]
                if parts[-1] == "refreshes" and method == "POST":
                    if table not in ws.monitors:
                        return self._missing(f"monitor on {table}")
                    return self._reply(200, {"refresh_id": 7, "state": "PENDING", "start_time_ms": 1})
                if method == "GET":
                    if table not in ws.monitors:
                        return self._missing(f"monitor on {table}")
                    return self._reply(200, ws.monitors[table])
                if method == "POST":
                    ws.monitors[table] = {**body, "table_name": table, "status": "MONITOR_STATUS_PENDING"}
                    return self._reply(200, ws.monitors[table])
            # UC model registry alias lookup (MLflow's databricks-uc client)
            if url.path.endswith("/mlflow/unity-catalog/registered-models/alias") and method == "GET":
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                version = ws.aliases.get((q.get("name", ""), q.get("alias", "")))
                if version is None:
                    return self._missing("alias")
                return self._reply(
                    200, {"model_version": {"name": q["name"], "version": version, "aliases": [q["alias"]]}}
                )
            return self._reply(
                404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"no fake for {method} {url.path}"}
            )

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def do_PATCH(self) -> None:
            self._handle("PATCH")

    return Handler


@pytest.fixture
def workspace(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeWorkspace, Any]]:
    from databricks.sdk import WorkspaceClient

    ws = FakeWorkspace()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ws))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host = f"http://127.0.0.1:{server.server_address[1]}"
    for var in ("DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DATABRICKS_HOST", host)
    monkeypatch.setenv("DATABRICKS_TOKEN", "x")
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent/.databrickscfg")
    try:
        yield ws, WorkspaceClient(host=host, token="x")
    finally:
        server.shutdown()
        server.server_close()


def _deployer(variants: list[dict[str, Any]], **kw: Any) -> DatabricksDeployer:
    return DatabricksDeployer(
        endpoint_name=ENDPOINT,
        variants=variants,
        catalog="mlops_dev",
        schema="marvel_characters",
        inference_table="custom_model_payload",
        workload_size="Small",
        scale_to_zero=True,
        timeout_minutes=1,
        **kw,
    )


def test_endpoint_create_then_update_with_ab_traffic(workspace: tuple[FakeWorkspace, Any]) -> None:
    ws, client = workspace
    one = [{"name": "A", "model": MODEL, "alias": "latest-model", "version": 3, "traffic_percentage": 100}]
    endpoint = _deployer(one).deploy(client=client)

    (create,) = ws.calls("POST", "/serving-endpoints")
    assert create["name"] == ENDPOINT
    assert create["config"]["served_entities"] == [
        {
            "name": "A",
            "entity_name": MODEL,
            "entity_version": "3",
            "workload_size": "Small",
            "scale_to_zero_enabled": True,
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
    assert (
        endpoint.describe()["inference_table"]["name"] == "mlops_dev.marvel_characters.custom_model_payload"
    )

    # a new version beside the champion, 50/50: an update of the config, not a second create
    ab = [
        {"name": "A", "model": MODEL, "alias": "latest-model", "version": 3, "traffic_percentage": 50},
        {"name": "B", "model": MODEL, "alias": "challenger", "version": 4, "traffic_percentage": 50},
    ]
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


def test_alias_resolved_in_the_uc_registry(workspace: tuple[FakeWorkspace, Any]) -> None:
    ws, client = workspace
    ws.aliases[(MODEL, "latest-model")] = "5"
    one = [{"name": "A", "model": MODEL, "alias": "latest-model", "version": None, "traffic_percentage": 100}]
    _deployer(one, registry_uri="databricks-uc").deploy(client=client)
    (create,) = ws.calls("POST", "/serving-endpoints")
    assert create["config"]["served_entities"][0]["entity_version"] == "5"


def test_bad_traffic_split_is_refused_before_any_call() -> None:
    bad = [
        {"name": "A", "model": MODEL, "version": 1, "traffic_percentage": 60},
        {"name": "B", "model": MODEL, "version": 2, "traffic_percentage": 60},
    ]
    with pytest.raises(MarvelError, match="add up to 100"):
        _deployer(bad)


def test_monitor_create_then_refresh(workspace: tuple[FakeWorkspace, Any]) -> None:
    ws, client = workspace
    monitor = DatabricksMonitor(catalog="mlops_dev", schema="marvel_characters", granularities=["30 minutes"])
    first = monitor.create_or_refresh(client)
    assert first["action"] == "created"
    (create,) = ws.calls("POST", f"/tables/{MONITORED}/monitor")
    assert create["output_schema_name"] == "mlops_dev.marvel_characters"
    assert create["assets_dir"] == "/Workspace/Shared/lakehouse_monitoring/model_monitoring"
    assert create["inference_log"] == {
        "problem_type": "PROBLEM_TYPE_CLASSIFICATION",
        "prediction_col": "prediction",
        "timestamp_col": "timestamp",
        "model_id_col": "model_id",
        "label_col": "label",
        "granularities": ["30 minutes"],
    }
    second = monitor.create_or_refresh(client)
    assert second == {"action": "refreshed", "refresh_id": 7, "status": "PENDING"}
    assert len(ws.calls("POST", f"/tables/{MONITORED}/monitor/refreshes")) == 1
    assert len([p for m, p, _ in ws.requests if m == "POST" and p.endswith("/monitor")]) == 1
