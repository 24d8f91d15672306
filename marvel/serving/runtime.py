"""One serving process's pieces, put together: loaded models, inference log, `ServingApp`, uvicorn.

The deployer builds one `Instance` in its own process (``deploy.workers: 1``) or one in each worker process
(`marvel.serving.workers`), from the same `Settings` and the same resolved model versions.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marvel.core.tables import TableStore
from marvel.core.variants import Variant
from marvel.serving import models as model_loading
from marvel.serving.app import ServingApp
from marvel.serving.http import HttpServer
from marvel.serving.inference_log import InferenceLogWriter
from marvel.serving.routing import Router
from marvel.serving.server import Scoring, build_asgi


class SignalFlag:
    """Set from a signal handler, polled by the main thread.

    Not a `threading.Event`: its `set()` takes a lock, and a handler runs on the main thread between two
    bytecodes, possibly while that thread holds the same lock inside `wait()`: a deadlock.
    """

    def __init__(self) -> None:
        self.flag = False

    def set(self) -> None:
        self.flag = True  # an assignment: safe in a handler

    def is_set(self) -> bool:
        return self.flag

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.flag and time.monotonic() < deadline:
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return self.flag


@dataclass(frozen=True)
class Settings:
    """Everything about serving that the deploy config says (plain values: they travel to worker processes)."""

    endpoint_name: str
    variants: tuple[Variant, ...]
    token: str | None = field(default=None, repr=False)
    return_probabilities: bool = False
    max_body_bytes: int = 1 << 20
    max_batch_records: int = 1000
    accept_request_time: bool = False
    inference_table: str = "custom_model_payload"
    flush_rows: int = 500
    flush_seconds: float = 5.0
    journal_dir: str = ".marvel/journal"
    fsync: bool = False
    max_backlog_rows: int = 100_000
    segment_bytes: int = 64 << 20
    fast_path_max_records: int = 1000
    body_timeout: float = 30.0
    header_timeout: float = 10.0
    keep_alive: float = 5.0
    graceful_timeout: float = 30.0
    max_connections: int = 1000
    max_inflight: int = 256


def served_entities(
    settings: Settings, refs: dict[str, model_loading.ModelRef], state: str = "READY"
) -> list[dict[str, Any]]:
    """The served entities, in brief (the local describe route, the deploy stage's tags and summary)."""
    return [
        {
            "variant": v.name,
            "entity_name": refs[v.name].name,
            "entity_version": refs[v.name].version,
            "alias": v.alias,
            "flavor": refs[v.name].flavor,
            "traffic_percentage": v.traffic_percentage,
        }
        for v in settings.variants
        if v.name in refs
    ]


def brief(
    settings: Settings,
    refs: dict[str, model_loading.ModelRef],
    url: str,
    table_uri: str,
    running: bool,
    workers: int,
    stats: dict[str, Any],
) -> dict[str, Any]:
    """The endpoint in brief (GET /serving-endpoints/<name>): state, served entities, inference table, counts."""
    return {
        "name": settings.endpoint_name,
        "state": {"ready": "READY" if running else "NOT_READY"},
        "url": url,
        "invocations_url": f"{url}/serving-endpoints/{settings.endpoint_name}/invocations",
        "auth": "bearer" if settings.token else "none",
        "workers": workers,
        "served_entities": served_entities(settings, refs),
        "inference_table": {"name": settings.inference_table, "uri": table_uri},
        "stats": stats,
    }


def databricks_view(
    settings: Settings, refs: dict[str, model_loading.ModelRef], url: str, ready: bool, started_ms: int
) -> dict[str, Any]:
    """The endpoint as Databricks' ``GET /api/2.0/serving-endpoints/{name}`` shows one
    (`ServingEndpointDetailed`), so databricks-sdk and MLflow's deploy client can read it."""
    entities = [
        {
            "name": v.name,
            "entity_name": refs[v.name].name,
            "entity_version": refs[v.name].version,
            "workload_size": "Small",
            "scale_to_zero_enabled": False,
            "creation_timestamp": started_ms,
            "state": {
                "deployment": "DEPLOYMENT_READY" if ready else "DEPLOYMENT_ABORTED",
                "deployment_state_message": "" if ready else "the endpoint is stopping",
            },
        }
        for v in settings.variants
        if v.name in refs
    ]
    return {
        "name": settings.endpoint_name,
        "id": f"local-{settings.endpoint_name}",
        "creator": "marvel",
        "creation_timestamp": started_ms,
        "last_updated_timestamp": started_ms,
        "state": {"ready": "READY" if ready else "NOT_READY", "config_update": "NOT_UPDATING"},
        "config": {
            "served_entities": entities,
            "traffic_config": {
                "routes": [
                    {"served_model_name": v.name, "traffic_percentage": round(v.traffic_percentage)}
                    for v in settings.variants
                ]
            },
            "config_version": 1,
        },
        "ai_gateway": {
            "inference_table_config": {
                "enabled": True,
                "table_name_prefix": settings.inference_table.removesuffix("_payload"),
            }
        },
        "permission_level": "CAN_QUERY",
        "endpoint_url": f"{url}/serving-endpoints/{settings.endpoint_name}/invocations",
    }


class Instance:
    """Models, inference log, app and HTTP server of one process, serving on `sock`."""

    def __init__(
        self,
        settings: Settings,
        refs: dict[str, model_loading.ModelRef],
        store: TableStore,
        out_dir: Path,
        sock: socket.socket,
        describe: Any,
    ) -> None:
        self.settings = settings
        self.refs = refs
        cache: dict[tuple[str, str], model_loading.ServedModel] = {}
        models = {
            name: model_loading.load(ref, cache, settings.fast_path_max_records) for name, ref in refs.items()
        }
        self.writer = InferenceLogWriter(
            store,
            settings.inference_table,
            max_rows=settings.flush_rows,
            max_seconds=settings.flush_seconds,
            fallback_dir=out_dir,
            journal_dir=settings.journal_dir,
            fsync=settings.fsync,
            max_backlog_rows=settings.max_backlog_rows,
            segment_bytes=settings.segment_bytes,
        )
        self.app = ServingApp(
            endpoint_name=settings.endpoint_name,
            models=models,
            router=Router(list(settings.variants), salt=settings.endpoint_name),
            writer=self.writer,
            return_probabilities=settings.return_probabilities,
            max_batch_records=settings.max_batch_records,
            accept_request_time=settings.accept_request_time,
        )
        self.started_ms = time.time_ns() // 1_000_000
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}" if ":" not in str(host) else f"http://[{host}]:{port}"
        self.scoring = Scoring(
            self.app,
            token=settings.token,
            max_body_bytes=settings.max_body_bytes,
            body_timeout=settings.body_timeout,
            max_inflight=settings.max_inflight,
            commit_in_thread=settings.fsync,
            describe=describe,
            describe_databricks=lambda: databricks_view(
                settings, refs, self.url, self.http.running, self.started_ms
            ),
        )
        self.http = HttpServer(
            self.scoring,
            build_asgi(self.scoring),
            sock,
            header_timeout=settings.header_timeout,
            keep_alive=settings.keep_alive,
            graceful_timeout=settings.graceful_timeout,
            max_connections=settings.max_connections,
        )

    def start(self) -> Instance:
        try:
            self.http.start()
        except Exception:
            self.writer.close()
            raise
        return self

    def stop(self) -> bool:
        """Stop serving (in-flight requests finish), then move every logged row into the table."""
        stopped = self.http.stop()
        self.writer.close()
        return stopped
