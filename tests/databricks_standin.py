"""A strict stand-in Databricks workspace on loopback, for the real databricks-sdk (and MLflow's UC client).

Strict where Databricks is strict, so a stand-in more forgiving than the real thing cannot hide a bug:

- every request body is checked against the SDK's own types for that call: the keyword parameters of the
  SDK method (e.g. ``ServingEndpointsAPI.create``) or the dataclass it sends as the body (``Monitor``,
  ``Refresh``), recursively through nested dataclasses (``EndpointCoreConfigInput``, ``ServedEntityInput``,
  ``AiGatewayConfig`` ...). An unknown field, a wrong type, a value outside an enum, or a missing required
  field answers 400 ``INVALID_PARAMETER_VALUE``, as the API does;
- state answers as the API does: a second create of an endpoint or a monitor (409 / 400 ALREADY_EXISTS), a
  config update while another rolls out (409 RESOURCE_CONFLICT), moving an inference table that is enabled
  (400), routes that name no served entity or do not add up to 100 (400); ``put_ai_gateway`` replaces the
  whole gateway config, so what a caller leaves out is gone.

Every request is recorded, so tests assert what would reach a real workspace.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import re
import threading
import types
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from databricks.sdk.service import catalog, dataquality, serving


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _check(tp: Any, value: Any, path: str) -> None:
    """Raise ApiError(400) unless `value` (parsed JSON) has the SDK type `tp`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return
        return _check(args[0], value, path)
    if tp is Any or (value is None and tp is type(None)):
        return
    if origin in (list, typing.List):  # noqa: UP006 (the SDK's annotations)
        if not isinstance(value, list):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{path}: expected an array")
        for i, item in enumerate(value):
            _check(typing.get_args(tp)[0], item, f"{path}[{i}]")
        return
    if origin in (dict, typing.Dict):  # noqa: UP006
        if not isinstance(value, dict):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{path}: expected an object")
        for k, item in value.items():
            _check(typing.get_args(tp)[1], item, f"{path}.{k}")
        return
    if dataclasses.is_dataclass(tp):
        return check_body(tp, value, path)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if value not in {e.value for e in tp}:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{path}: {value!r} is not one of {tp.__name__}")
        return
    ok = {
        str: isinstance(value, str),
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
    }.get(tp, True)
    if not ok:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{path}: expected {tp.__name__}, got {value!r}")


def check_body(cls: type, body: Any, path: str = "") -> None:
    """`body` must be exactly an instance of SDK dataclass `cls` as JSON: known fields, right types, enums,
    every required (default-less) field present."""
    if not isinstance(body, dict):
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{path or 'body'}: expected an object")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in body:
        if key not in fields:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"unknown field {path}{key} in {cls.__name__}")
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if body.get(name) is None:
            if required:
                raise ApiError(400, "INVALID_PARAMETER_VALUE", f"missing required field {path}{name}")
            continue
        _check(hints[name], body[name], f"{path}{name}.")


def check_call(method: Callable[..., Any], body: Any, path_params: tuple[str, ...]) -> None:
    """`body` must be what SDK `method` sends: its parameters (less those in the URL), typed as annotated."""
    if not isinstance(body, dict):
        raise ApiError(400, "INVALID_PARAMETER_VALUE", "body: expected an object")
    sig = inspect.signature(method)
    hints = typing.get_type_hints(method)
    params = {n: p for n, p in sig.parameters.items() if n != "self" and n not in path_params}
    for key in body:
        if key not in params:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"unknown field {key} for {method.__qualname__}")
    for name, p in params.items():
        if body.get(name) is None:
            if p.default is inspect.Parameter.empty:
                raise ApiError(400, "INVALID_PARAMETER_VALUE", f"missing required field {name}")
            continue
        _check(hints[name], body[name], f"{name}.")


@dataclass
class Workspace:
    """State and request log of the stand-in workspace."""

    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    polls_until_ready: int = 1  # GETs answered "updating" after each create/update
    pending: dict[str, int] = field(default_factory=dict)
    tables: set[str] = field(default_factory=set)  # UC tables that exist (by full name)
    monitors: dict[str, dict[str, Any]] = field(default_factory=dict)  # by table id (data_quality)
    legacy_monitors: dict[str, dict[str, Any]] = field(default_factory=dict)  # by table name
    data_quality_available: bool = True
    refreshes: int = 0
    aliases: dict[tuple[str, str], str] = field(default_factory=dict)
    host: str = ""

    def calls(self, method: str, fragment: str = "") -> list[dict[str, Any]]:
        return [body for m, p, body in self.requests if m == method and fragment in p]

    @staticmethod
    def table_id(full_name: str) -> str:
        return "tid-" + re.sub(r"[^a-z0-9]", "-", full_name.lower())

    # -- serving endpoints -----------------------------------------------------------------------------
    def endpoint_view(self, name: str, poll: bool = True) -> dict[str, Any]:
        """The endpoint as GET returns it; each polling GET moves a pending update one step nearer done."""
        ep = self.endpoints[name]
        updating = self.pending.get(name, 0) > 0
        if updating and poll:
            self.pending[name] -= 1
        view: dict[str, Any] = {
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
        }
        if ep.get("ai_gateway"):
            view["ai_gateway"] = ep["ai_gateway"]
        return view

    def _check_routes(self, config: dict[str, Any]) -> None:
        names = [e["name"] for e in config.get("served_entities") or []]
        routes = (config.get("traffic_config") or {}).get("routes") or []
        for route in routes:
            if route["served_model_name"] not in names:
                raise ApiError(
                    400, "INVALID_PARAMETER_VALUE", f"route to {route['served_model_name']}: no such entity"
                )
        if routes and sum(r["traffic_percentage"] for r in routes) != 100:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "traffic percentages must add up to 100")

    def _check_gateway_move(self, name: str, new: dict[str, Any]) -> None:
        old = (self.endpoints[name].get("ai_gateway") or {}).get("inference_table_config") or {}
        new_table = new.get("inference_table_config") or {}
        keys = ("catalog_name", "schema_name", "table_name_prefix")
        moved = any(old.get(k) != new_table.get(k) for k in keys)
        if old.get("enabled") and new_table and moved:
            raise ApiError(
                400,
                "INVALID_PARAMETER_VALUE",
                "cannot change the inference table's catalog, schema or prefix while it is enabled; "
                "disable it first",
            )

    def serving(self, method: str, parts: list[str], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        api = serving.ServingEndpointsAPI
        if method == "POST" and len(parts) == 3:
            check_call(api.create, body, ())
            name = body["name"]
            if name in self.endpoints:
                raise ApiError(400, "RESOURCE_ALREADY_EXISTS", f"endpoint {name} already exists")
            self._check_routes(body.get("config") or {})
            self.endpoints[name] = {
                "served_entities": body["config"]["served_entities"],
                "traffic_config": body["config"]["traffic_config"],
                "ai_gateway": body.get("ai_gateway"),
                "version": 1,
            }
            self.pending[name] = self.polls_until_ready
            return 200, self.endpoint_view(name, poll=False)
        name = parts[3]
        tail = parts[4] if len(parts) > 4 else ""
        if name not in self.endpoints:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"endpoint {name} does not exist")
        updating = self.pending.get(name, 0) > 0
        if method == "GET" and not tail:
            return 200, self.endpoint_view(name)
        if method == "PUT" and tail == "config":
            check_call(api.update_config, body, ("name",))
            if updating:
                raise ApiError(409, "RESOURCE_CONFLICT", f"endpoint {name} is being updated; wait for it")
            self._check_routes(body)
            ep = self.endpoints[name]
            ep.update(served_entities=body["served_entities"], traffic_config=body["traffic_config"])
            ep["version"] += 1
            self.pending[name] = self.polls_until_ready
            return 200, self.endpoint_view(name, poll=False)
        if method == "PUT" and tail == "ai-gateway":
            check_call(api.put_ai_gateway, body, ("name",))
            if updating:
                raise ApiError(409, "RESOURCE_CONFLICT", f"endpoint {name} is being updated; wait for it")
            self._check_gateway_move(name, body)
            self.endpoints[name]["ai_gateway"] = body  # the whole gateway config is replaced
            return 200, body
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"no {method} {'/'.join(parts)}")

    # -- Unity Catalog ---------------------------------------------------------------------------------
    def unity_catalog(
        self, method: str, parts: list[str], body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        kind, full = parts[3], parts[4] if len(parts) > 4 else ""
        if kind == "schemas" and method == "GET":
            return 200, {"full_name": full, "schema_id": "sid-" + full.replace(".", "-")}
        if kind == "tables" and method == "GET" and len(parts) == 5:
            if full not in self.tables:
                raise ApiError(404, "TABLE_DOES_NOT_EXIST", f"table {full} does not exist")
            return 200, {"full_name": full, "table_id": self.table_id(full)}
        if kind == "tables" and "monitor" in parts:  # legacy quality_monitors
            qm = catalog.QualityMonitorsAPI
            if parts[-1] == "refreshes" and method == "POST":
                if full not in self.legacy_monitors:
                    raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"no monitor on {full}")
                self.refreshes += 1
                return 200, {"refresh_id": self.refreshes, "state": "PENDING", "start_time_ms": 1}
            if method == "GET":
                if full not in self.legacy_monitors:
                    raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"no monitor on {full}")
                return 200, self.legacy_monitors[full]
            if method == "POST":
                check_call(qm.create, body, ("table_name",))
                if full in self.legacy_monitors:
                    raise ApiError(409, "RESOURCE_ALREADY_EXISTS", f"monitor on {full} already exists")
                self.legacy_monitors[full] = {**body, "table_name": full, "status": "MONITOR_STATUS_PENDING"}
                return 200, self.legacy_monitors[full]
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"no {method} {'/'.join(parts)}")

    def data_quality(
        self, method: str, parts: list[str], body: dict[str, Any], query: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        if not self.data_quality_available:
            raise ApiError(404, "ENDPOINT_NOT_FOUND", "data quality monitoring is not available here")
        rest = parts[4:]  # after api/data-quality/v1/monitors
        if method == "POST" and not rest:
            check_body(dataquality.Monitor, body)
            key = body["object_id"]
            if key in self.monitors:
                raise ApiError(409, "RESOURCE_ALREADY_EXISTS", f"a monitor on {key} already exists")
            if key not in {self.table_id(t) for t in self.tables}:
                raise ApiError(404, "TABLE_DOES_NOT_EXIST", f"no table with id {key}")
            config = dict(body["data_profiling_config"])
            config["status"] = "DATA_PROFILING_STATUS_PENDING"
            self.monitors[key] = {**body, "data_profiling_config": config}
            return 200, self.monitors[key]
        object_type, key = rest[0], rest[1]
        if object_type != "table" or key not in self.monitors:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"no monitor on {object_type} {key}")
        if method == "GET" and len(rest) == 2:
            return 200, self.monitors[key]
        if method == "PATCH" and len(rest) == 2:
            check_body(dataquality.Monitor, body)
            mask = query.get("update_mask")
            if not mask:
                raise ApiError(400, "INVALID_PARAMETER_VALUE", "update_mask is required")
            config = self.monitors[key]["data_profiling_config"]
            for path in mask.split(","):
                leaf = path.strip().removeprefix("data_profiling_config.")
                config[leaf] = body["data_profiling_config"].get(leaf)
            return 200, self.monitors[key]
        if method == "POST" and rest[2:] == ["refreshes"]:
            check_body(dataquality.Refresh, body)
            self.refreshes += 1
            return 200, {
                "object_type": "table",
                "object_id": key,
                "refresh_id": self.refreshes,
                "state": "MONITOR_REFRESH_STATE_PENDING",
            }
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"no {method} {'/'.join(parts)}")

    # -- dispatch ----------------------------------------------------------------------------------------
    def handle(self, method: str, url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        parsed = urlparse(url)
        parts = parsed.path.strip("/").split("/")
        query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        if parts[:3] == ["api", "2.0", "serving-endpoints"]:
            return self.serving(method, parts, body)
        if parts[:3] == ["api", "2.1", "unity-catalog"]:
            return self.unity_catalog(method, parts, body)
        if parts[:4] == ["api", "data-quality", "v1", "monitors"]:
            return self.data_quality(method, parts, body, query)
        if parsed.path.endswith("/mlflow/unity-catalog/registered-models/alias") and method == "GET":
            version = self.aliases.get((query.get("name", ""), query.get("alias", "")))
            if version is None:
                raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", "alias")
            return 200, {
                "model_version": {"name": query["name"], "version": version, "aliases": [query["alias"]]}
            }
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"no stand-in for {method} {parsed.path}")


def _handler(ws: Workspace, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
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

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            except ValueError:
                return self._reply(400, {"error_code": "MALFORMED_REQUEST", "message": "body is not JSON"})
            if urlparse(self.path).path == "/.well-known/databricks-config":  # the SDK's host probe
                return self._reply(404, {"error_code": "NOT_FOUND", "message": "no host metadata"})
            with lock:
                ws.requests.append((method, urlparse(self.path).path, body))
                if self.headers.get("Authorization") != "Bearer x":  # the SDK must send the token
                    return self._reply(401, {"error_code": "UNAUTHENTICATED", "message": "no token"})
                try:
                    status, answer = ws.handle(method, self.path, body)
                except ApiError as err:
                    status, answer = err.status, {"error_code": err.code, "message": err.message}
            self._reply(status, answer)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def do_PATCH(self) -> None:
            self._handle("PATCH")

    return Handler


@contextmanager
def standin_workspace() -> Iterator[Workspace]:
    """Serve a `Workspace` on a free loopback port until the block ends."""
    ws = Workspace()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ws, threading.Lock()))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ws.host = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield ws
    finally:
        server.shutdown()
        server.server_close()
