"""`LocalDeployer(**cfg.deploy).deploy(ctx) -> LocalEndpoint`: registered models behind a local HTTP endpoint.

With ``block: true`` (the CLI) `deploy` serves until SIGINT/SIGTERM, then stops cleanly (in-flight requests
finish, the inference log is moved into the table) and returns the stopped endpoint. With ``block: false`` it
returns the running endpoint, for tests and simulations that send real HTTP requests and then call `stop()`.

``workers: 1`` serves from this process (uvicorn on a background thread). ``workers: N`` starts N worker
processes on one port (`marvel.serving.workers`), each with the models loaded and its own journal; the
variants' aliases are resolved here, once, so every worker serves the same versions.
"""

from __future__ import annotations

import atexit
import errno
import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

from omegaconf import OmegaConf

from marvel.core.catalog import INFERENCE_LOG
from marvel.core.context import RunContext
from marvel.core.errors import MarvelError
from marvel.core.settings import Between
from marvel.core.variants import Variant, check_distinct, validate_variants
from marvel.serving import models as model_loading
from marvel.serving.app import ServingApp
from marvel.serving.http import bind
from marvel.serving.inference_log import InferenceLogWriter
from marvel.serving.routing import Router
from marvel.serving.runtime import Instance, Settings, SignalFlag, brief, databricks_view
from marvel.serving.workers import WorkerPool

log = logging.getLogger(__name__)

TOKEN_ENV = "MARVEL_SERVING_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class LocalEndpoint:
    """A running (or stopped) local serving endpoint."""

    def __init__(
        self,
        *,
        settings: Settings,
        refs: dict[str, model_loading.ModelRef],
        url: str,
        table_uri: str,
        instance: Instance | None = None,
        pool: WorkerPool | None = None,
    ) -> None:
        self.settings = settings
        self.refs = refs
        self.name = settings.endpoint_name
        self.instance = instance
        self.pool = pool
        self.variants: list[Variant] = list(settings.variants)
        self.table_uri = table_uri
        self.url = url
        self.host, _, port = url.removeprefix("http://").rpartition(":")
        self.port = int(port)
        self.invocations_url = f"{self.url}/serving-endpoints/{self.name}/invocations"
        self.started_ms = instance.started_ms if instance else pool.started_ms if pool else 0
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()

    # one process: its app and inference log, for tests and simulations that look inside
    @property
    def app(self) -> ServingApp:
        if self.instance is None:
            raise AttributeError("a multi-worker endpoint has no app in this process (see describe())")
        return self.instance.app

    @property
    def writer(self) -> InferenceLogWriter:
        if self.instance is None:
            raise AttributeError("a multi-worker endpoint has no inference log in this process")
        return self.instance.writer

    @property
    def running(self) -> bool:
        if self._stopped.is_set():
            return False
        return self.instance.http.running if self.instance else bool(self.pool and self.pool.running)

    def stats(self) -> dict[str, Any]:
        return self.instance.app.stats() if self.instance else self.pool.stats() if self.pool else {}

    def describe(self) -> dict[str, Any]:
        """The endpoint in brief: state, served entities, inference table, request counts."""
        workers = self.pool.size if self.pool else 1
        return brief(self.settings, self.refs, self.url, self.table_uri, self.running, workers, self.stats())

    def describe_databricks(self) -> dict[str, Any]:
        """The endpoint as Databricks' REST API shows one (GET /api/2.0/serving-endpoints/<name>)."""
        return databricks_view(self.settings, self.refs, self.url, self.running, self.started_ms)

    def flush(self, timeout: float = 60.0) -> bool:
        """Move every logged request into the inference table now (the endpoint keeps running)."""
        if self.instance is not None:
            return self.instance.writer.flush(timeout)
        return bool(self.pool and self.pool.flush(timeout))

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting requests, let in-flight ones finish, move the inference log into the table."""
        with self._stop_lock:
            if self._stopped.is_set():
                return
            self._stopped.set()
        if self.instance is not None:
            if not self.instance.stop():
                log.warning("requests still running after the graceful timeout; stopped anyway")
        elif self.pool is not None:
            self.pool.stop()
        log.info("endpoint %s stopped: %s", self.name, self.stats())

    def wait(self, stop: SignalFlag | None = None) -> None:
        """Block until `stop` is set (by SIGINT/SIGTERM, see `stop_on_signals`) or `stop()` is called from
        another thread, then stop."""
        stop = stop or SignalFlag()
        try:
            while not stop.is_set() and not self._stopped.is_set():
                stop.wait(0.5)
                if self.pool is not None:
                    self.pool.keep_alive()
        finally:
            self.stop()


@contextmanager
def stop_on_signals(*signals: signal.Signals) -> Iterator[SignalFlag]:
    """SIGINT/SIGTERM (or `signals`) set the yielded flag instead of killing the process, so the endpoint
    can stop cleanly.

    Installed before the server starts: a signal that arrives while the URL is being printed is not lost.
    Only the main thread may install handlers; elsewhere the flag is only set by `stop()`.
    """
    stop = SignalFlag()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in signals or (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda signum, frame: stop.set())
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


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
        max_body_bytes: Annotated[int, Between(1, None)] = 1 << 20,
        max_batch_records: Annotated[int, Between(1, None)] = 1000,
        accept_request_time: bool = False,
        inference_table: str = INFERENCE_LOG.name,
        flush: dict[str, Any] | None = None,
        variants: list[dict[str, Any]] | None = None,
        workers: Annotated[int, Between(1, None)] = 1,
        fast_path_max_records: Annotated[int, Between(0, None)] = 1000,
        body_timeout: Annotated[float, Between(0.001, None)] = 30.0,
        header_timeout: Annotated[float, Between(0.001, None)] = 10.0,
        keep_alive: Annotated[float, Between(0.0, None)] = 5.0,
        graceful_timeout: Annotated[float, Between(0.0, None)] = 30.0,
        max_connections: Annotated[int, Between(1, None)] = 1000,
        max_inflight: Annotated[int, Between(1, None)] = 256,
        journal: dict[str, Any] | None = None,
    ) -> None:
        if not variants:
            raise MarvelError("deploy.variants is empty: name at least one registered model to serve")
        checked = validate_variants([_plain(v) for v in variants])
        self.router = Router(checked, salt=endpoint_name)  # validates the traffic split early
        self.variants = self.router.variants
        self.host = host
        self.port = int(port)
        self.block = block
        self.workers = int(workers)
        if self.workers < 1:
            raise MarvelError(f"deploy.workers must be at least 1, got {workers}")
        flush = {"max_rows": 500, "max_seconds": 5.0, **(_plain(flush) or {})}
        journal = {
            "dir": None,
            "fsync": False,
            "max_backlog_rows": 100_000,
            "segment_mb": 64,
            **(_plain(journal) or {}),
        }
        self.settings = Settings(
            endpoint_name=endpoint_name,
            variants=tuple(self.variants),
            token=token or os.environ.get(TOKEN_ENV) or None,
            return_probabilities=bool(return_probabilities),
            max_body_bytes=int(max_body_bytes),
            max_batch_records=int(max_batch_records),
            accept_request_time=bool(accept_request_time),
            inference_table=str(inference_table or INFERENCE_LOG.name),
            flush_rows=int(flush["max_rows"]),
            flush_seconds=float(flush["max_seconds"]),
            fast_path_max_records=int(fast_path_max_records),
            body_timeout=float(body_timeout),
            header_timeout=float(header_timeout),
            keep_alive=float(keep_alive),
            graceful_timeout=float(graceful_timeout),
            max_connections=int(max_connections),
            max_inflight=int(max_inflight),
        )
        self._journal = journal

    # kept for callers that read these off the deployer
    @property
    def endpoint_name(self) -> str:
        return self.settings.endpoint_name

    @property
    def token(self) -> str | None:
        return self.settings.token

    @property
    def inference_table(self) -> str:
        return self.settings.inference_table

    def deploy(self, ctx: RunContext) -> LocalEndpoint:
        if not self.block:
            return self._start(ctx)
        with stop_on_signals() as stop:
            endpoint = self._start(ctx)
            print(
                "  Ctrl+C (SIGINT) or SIGTERM stops it and moves the inference log into the table", flush=True
            )
            endpoint.wait(stop)
        return endpoint

    def _settings(self, ctx: RunContext) -> Settings:
        journal = dict(self._journal)
        default_dir = (
            Path(str(ctx.cfg.paths.root)) / "journal" if "paths" in ctx.cfg else Path(".marvel/journal")
        )
        directory = journal.get("dir") or default_dir
        return replace(
            self.settings,
            journal_dir=str(Path(str(directory)).expanduser().resolve()),
            fsync=bool(journal.get("fsync", False)),
            max_backlog_rows=int(journal.get("max_backlog_rows", 100_000)),
            segment_bytes=int(float(journal.get("segment_mb", 64)) * (1 << 20)),
        )

    def _start(self, ctx: RunContext) -> LocalEndpoint:
        settings = self._settings(ctx)
        refs = {v.name: model_loading.resolve(v) for v in self.router.variants}
        check_distinct(self.router.variants, {name: str(ref.version) for name, ref in refs.items()})
        if self.host not in LOOPBACK and not settings.token:
            log.warning("serving on %s without a token: anyone who can reach it can score", self.host)
        try:
            sock = bind(self.host, self.port)
        except OSError as exc:
            # taken or privileged: another port helps; an address this machine does not have: another host
            fix = (
                "try deploy.port=0" if exc.errno in (errno.EADDRINUSE, errno.EACCES) else "check deploy.host"
            )
            raise MarvelError(f"cannot listen on {self.host}:{self.port} ({exc}); {fix}") from None
        host, port = sock.getsockname()[:2]
        url = f"http://{host}:{port}"
        table_uri = ctx.store.uri(settings.inference_table)
        endpoint: LocalEndpoint | None = None
        if self.workers == 1:
            instance = Instance(
                settings,
                refs,
                ctx.store,
                ctx.out_dir,
                sock,
                describe=lambda: endpoint.describe() if endpoint else {},
            ).start()
            endpoint = LocalEndpoint(
                settings=settings, refs=refs, url=url, table_uri=table_uri, instance=instance
            )
        else:
            pool = WorkerPool(settings, refs, ctx, sock, self.workers).start()
            endpoint = LocalEndpoint(settings=settings, refs=refs, url=url, table_uri=table_uri, pool=pool)
        atexit.register(endpoint.stop)  # an interpreter that exits without stop() still moves the log
        entities = ", ".join(
            f"{v.name}={refs[v.name].name} v{refs[v.name].version} ({v.traffic_percentage:g}%)"
            for v in self.router.variants
        )
        workers = f", {self.workers} workers" if self.workers > 1 else ""
        print(f"serving {settings.endpoint_name} at {endpoint.url} [{entities}]{workers}", flush=True)
        print(f"  POST {endpoint.invocations_url}", flush=True)
        return endpoint
