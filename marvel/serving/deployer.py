"""`LocalDeployer(**cfg.deploy).deploy(ctx) -> LocalEndpoint`: registered models behind a local HTTP endpoint.

With ``block: true`` (the CLI) `deploy` serves until SIGINT/SIGTERM, then stops cleanly (in-flight requests
finish, the inference log is flushed) and returns the stopped endpoint. With ``block: false`` it returns the
running endpoint (server in a background thread), for tests and simulations that send real HTTP requests
and then call `stop()`.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from marvel.core.context import RunContext
from marvel.core.errors import MarvelError
from marvel.core.settings import Between
from marvel.core.variants import Variant, validate_variants
from marvel.serving import models as model_loading
from marvel.serving.app import ServingApp
from marvel.serving.inference_log import InferenceLogWriter
from marvel.serving.routing import Router
from marvel.serving.server import ServingServer

log = logging.getLogger(__name__)

TOKEN_ENV = "MARVEL_SERVING_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class LocalEndpoint:
    """A running (or stopped) local serving endpoint."""

    def __init__(
        self,
        *,
        name: str,
        server: ServingServer,
        app: ServingApp,
        writer: InferenceLogWriter,
        variants: list[Variant],
        table_uri: str,
    ) -> None:
        self.name = name
        self.server = server
        self.app = app
        self.writer = writer
        self.variants = variants
        self.table_uri = table_uri
        host, port = server.server_address[:2]
        self.host, self.port = str(host), int(port)
        self.url = f"http://{self.host}:{self.port}"
        self.invocations_url = f"{self.url}/serving-endpoints/{name}/invocations"
        self._thread = threading.Thread(target=server.serve_forever, name=f"serve-{name}", daemon=True)
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()

    def start(self) -> LocalEndpoint:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stopped.is_set()

    def describe(self) -> dict[str, Any]:
        """The endpoint as Databricks' GET /api/2.0/serving-endpoints/<name> would describe it (in brief)."""
        return {
            "name": self.name,
            "state": {"ready": "READY" if self.running else "NOT_READY"},
            "url": self.url,
            "invocations_url": self.invocations_url,
            "auth": "bearer" if self.server.token else "none",
            "served_entities": [
                {
                    "variant": v.name,
                    "entity_name": self.app.models[v.name].name,
                    "entity_version": self.app.models[v.name].version,
                    "alias": v.alias,
                    "flavor": self.app.models[v.name].flavor,
                    "traffic_percentage": v.traffic_percentage,
                }
                for v in self.variants
                if v.name in self.app.models
            ],
            "inference_table": {"name": self.writer.table, "uri": self.table_uri},
            "stats": self.app.stats(),
        }

    def flush(self, timeout: float = 60.0) -> bool:
        """Write every logged request to the inference table now (the endpoint keeps running)."""
        return self.writer.flush(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting requests, let in-flight ones finish, flush and close the inference log."""
        with self._stop_lock:
            if self._stopped.is_set():
                return
            self._stopped.set()
        if self._thread.is_alive():
            self.server.shutdown()  # the accept loop ends; connections already open keep their thread
        if not self.server.drain(timeout):
            log.warning("requests still running after %.0fs; stopping anyway", timeout)
        self.server.server_close()
        self.writer.close()
        log.info("endpoint %s stopped: %s", self.name, self.app.stats())

    def wait(self, stop: threading.Event | None = None) -> None:
        """Block until `stop` is set (by SIGINT/SIGTERM, see `stop_on_signals`) or `stop()` is called from
        another thread, then stop."""
        stop = stop or threading.Event()
        try:
            while not stop.is_set() and not self._stopped.is_set():
                stop.wait(0.5)
        finally:
            self.stop()


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT/SIGTERM set the yielded event instead of killing the process, so the endpoint can flush.

    Installed before the server starts: a signal that arrives while the URL is being printed is not lost.
    Only the main thread may install handlers; elsewhere the event is only set by `stop()`.
    """
    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda signum, frame: stop.set())
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class LocalDeployer:
    """Serves the configured variants (registered model + alias or version, traffic %) on this machine."""

    def __init__(
        self,
        endpoint_name: str = "marvel-character-model-serving",
        host: str = "127.0.0.1",
        port: Annotated[int, Between(0, 65535)] = 8080,
        block: bool = True,
        token: str | None = None,
        return_probabilities: bool = False,
        max_body_bytes: int = 1 << 20,
        max_batch_records: int = 1000,
        accept_request_time: bool = False,
        inference_table: str = "custom_model_payload",
        flush: dict[str, Any] | None = None,
        variants: list[dict[str, Any]] | None = None,
    ) -> None:
        self.endpoint_name = endpoint_name
        self.host = host
        self.port = int(port)
        self.block = block
        self.token = token or os.environ.get(TOKEN_ENV) or None
        self.return_probabilities = bool(return_probabilities)
        self.max_body_bytes = int(max_body_bytes)
        self.max_batch_records = int(max_batch_records)
        self.accept_request_time = bool(accept_request_time)
        self.inference_table = inference_table
        self.flush = {"max_rows": 500, "max_seconds": 5.0, **(flush or {})}
        if not variants:
            raise MarvelError("deploy.variants is empty: name at least one registered model to serve")
        self.variants = validate_variants(variants)
        self.router = Router(self.variants, salt=endpoint_name)  # validates the traffic split early

    def deploy(self, ctx: RunContext) -> LocalEndpoint:
        if not self.block:
            return self._start(ctx)
        with stop_on_signals() as stop:
            endpoint = self._start(ctx)
            print("  Ctrl+C (SIGINT) or SIGTERM stops it and flushes the inference table", flush=True)
            endpoint.wait(stop)
        return endpoint

    def _start(self, ctx: RunContext) -> LocalEndpoint:
        cache: dict[tuple[str, str], model_loading.ServedModel] = {}
        models = {v.name: model_loading.load(v, cache) for v in self.router.variants}
        writer = InferenceLogWriter(
            ctx.store,
            self.inference_table,
            max_rows=self.flush["max_rows"],
            max_seconds=self.flush["max_seconds"],
            fallback_dir=ctx.out_dir,
        )
        app = ServingApp(
            endpoint_name=self.endpoint_name,
            models=models,
            router=self.router,
            writer=writer,
            return_probabilities=self.return_probabilities,
            max_batch_records=self.max_batch_records,
            accept_request_time=self.accept_request_time,
        )
        if self.host not in LOOPBACK and not self.token:
            log.warning("serving on %s without a token: anyone who can reach it can score", self.host)
        endpoint: LocalEndpoint | None = None
        try:
            server = ServingServer(
                (self.host, self.port),
                app,
                token=self.token,
                max_body_bytes=self.max_body_bytes,
                describe=lambda: endpoint.describe() if endpoint else {},
            )
        except OSError as exc:
            writer.close()
            raise MarvelError(
                f"cannot listen on {self.host}:{self.port} ({exc}); try deploy.port=0"
            ) from None
        endpoint = LocalEndpoint(
            name=self.endpoint_name,
            server=server,
            app=app,
            writer=writer,
            variants=self.router.variants,
            table_uri=ctx.store.uri(self.inference_table),
        ).start()
        atexit.register(endpoint.stop)  # an interpreter that exits without stop() still flushes the log
        entities = ", ".join(
            f"{v.name}={models[v.name].name} v{models[v.name].version} ({v.traffic_percentage:g}%)"
            for v in self.router.variants
        )
        print(f"serving {self.endpoint_name} at {endpoint.url} [{entities}]", flush=True)
        print(f"  POST {endpoint.invocations_url}", flush=True)
        return endpoint
