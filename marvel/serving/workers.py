"""``deploy.workers: N``: N worker processes serving one port, for the cores a machine has.

The parent binds the socket, resolves the model versions once and starts the workers. They fork from
multiprocessing's forkserver, a fresh interpreter that only imports the serving stack (`PRELOAD`) and runs
nothing else: the parent, with its server and flush threads, is never forked (the forkserver's only threads
besides its main one are pyarrow's jemalloc background threads, which jemalloc's own fork handlers manage).
So a worker, and the replacement of a dead one, is ready without importing MLflow and pandas again (seconds
each, as with spawn). As with spawn, a worker gets the parent's working directory and `sys.path`; its
environment is the parent's when the pool was made (`WorkerSpec.environ`), not the forkserver's. Each worker
loads the models, keeps its own journal and serves with uvicorn on the shared socket (the kernel spreads
connections over the workers). A worker that dies is replaced, and the replacement moves what the dead one
left in its journal into the table. SIGTERM (or `stop()`) stops every worker gracefully; anything a worker
could not move is moved by the parent after.

Workers report their counts to files in the run's output folder (``serving-workers/<pid>.json``, every
second and at exit), which the parent and every worker's describe route add up.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
from hydra.utils import instantiate
from omegaconf import OmegaConf

from marvel.core.context import RunContext
from marvel.core.tracking import configure
from marvel.serving.inference_log import recover
from marvel.serving.models import ModelRef
from marvel.serving.runtime import Instance, Settings, SignalFlag, brief

log = logging.getLogger(__name__)
STATS = "serving-workers"
# what the forkserver imports before it forks any worker: this module's imports and the model stores'
PRELOAD = [
    "marvel.serving.workers",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
]


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs, as plain values (it is pickled to the worker process)."""

    settings: Settings
    refs: dict[str, ModelRef]
    store: dict[str, Any]  # the env's store config (`_target_` and arguments)
    tracking_uri: str
    registry_uri: str
    out_dir: str
    url: str
    table_uri: str
    workers: int
    environ: dict[str, str] = field(default_factory=dict, repr=False)  # may hold secrets: never printed


def read_stats(directory: Path) -> dict[str, Any]:
    """The workers' counts, added up."""
    total: dict[str, Any] = {"requests": 0, "by_status": Counter(), "records_by_variant": Counter()}
    for key in ("rows_written", "rows_pending", "rows_set_aside", "rows_recovered"):
        total[key] = 0
    for path in sorted(directory.glob("*.json")):
        try:
            stats = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        total["requests"] += stats.get("requests", 0)
        total["by_status"].update(stats.get("by_status", {}))
        total["records_by_variant"].update(stats.get("records_by_variant", {}))
        for key in ("rows_written", "rows_pending", "rows_set_aside", "rows_recovered"):
            total[key] += stats.get(key, 0)
    total["by_status"] = {k: v for k, v in sorted(total["by_status"].items(), key=lambda kv: int(kv[0]))}
    total["records_by_variant"] = dict(total["records_by_variant"])
    return total


def _write_stats(directory: Path, stats: dict[str, Any]) -> None:
    path = directory / f"{os.getpid()}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stats))
    os.replace(tmp, path)


def worker_main(spec: WorkerSpec, sock: socket.socket, ready: Any, parent: Any) -> None:
    """One worker process: serve until SIGTERM/SIGINT or until the parent is gone (`parent`, the read end of a
    pipe only the parent writes to, is then at EOF), then stop gracefully and move the log."""
    if spec.environ:  # the parent's environment, as a spawned process would have it
        os.environ.clear()
        os.environ.update(spec.environ)
    logging.basicConfig(
        level=logging.WARNING, format=f"[worker {os.getpid()}] %(levelname)s %(name)s: %(message)s"
    )
    mlflow.set_tracking_uri(spec.tracking_uri)
    mlflow.set_registry_uri(spec.registry_uri)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    # flags, not threading.Events: a handler may not take a lock its own thread might hold
    stop, flush = SignalFlag(), SignalFlag()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: flush.set())
    stats_dir = Path(spec.out_dir) / STATS
    stats_dir.mkdir(parents=True, exist_ok=True)
    store = instantiate(spec.store)

    def describe() -> dict[str, Any]:
        return brief(
            spec.settings,
            spec.refs,
            spec.url,
            spec.table_uri,
            not stop.is_set(),
            spec.workers,
            read_stats(stats_dir),
        )

    instance = Instance(spec.settings, spec.refs, store, Path(spec.out_dir), sock, describe).start()
    ready.set()
    flushed_at = 0.0
    while not stop.wait(1.0 if not flush.is_set() else 0.0):
        if parent.poll():  # EOF: the parent died (kill -9) without stopping us; do not serve on as an orphan
            log.warning("the serving parent is gone: stopping")
            break
        if flush.is_set():
            flush.flag = False
            asked = time.time()
            if instance.writer.flush(60):
                flushed_at = asked
        _write_stats(stats_dir, {**instance.app.stats(), "flushed_at": flushed_at})
    instance.stop()
    _write_stats(stats_dir, {**instance.app.stats(), "flushed_at": time.time(), "stopped": True})


class WorkerPool:
    """N worker processes on one socket."""

    def __init__(
        self, settings: Settings, refs: dict[str, ModelRef], ctx: RunContext, sock: socket.socket, size: int
    ) -> None:
        store_cfg = OmegaConf.to_container(ctx.cfg.env.store, resolve=True)
        assert isinstance(store_cfg, dict)
        configure(ctx.cfg)
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self.spec = WorkerSpec(
            settings=settings,
            refs=refs,
            store={str(k): v for k, v in store_cfg.items()},
            tracking_uri=mlflow.get_tracking_uri(),
            registry_uri=mlflow.get_registry_uri(),
            out_dir=str(ctx.out_dir),
            url=self.url,
            table_uri=ctx.store.uri(settings.inference_table),
            workers=size,
            environ=dict(os.environ),
        )
        self.store = ctx.store
        self.sock = sock
        self.size = size
        self.stats_dir = Path(ctx.out_dir) / STATS
        self.started_ms = time.time_ns() // 1_000_000
        self._mp = multiprocessing.get_context("forkserver")
        self._mp.set_forkserver_preload(PRELOAD)  # no effect once this process's forkserver runs
        self._procs: list[Any] = []
        # each worker's ready event, held for as long as the worker: Process.start() drops its arguments, and an
        # event nobody holds is unlinked (a named semaphore) before the new process has unpickled it, which
        # then dies with FileNotFoundError (replacements did, over and over, while this was a discarded `_`)
        self._ready: list[Any] = []
        # the workers' way to notice this process is gone: it holds the only write end; when it dies, even by
        # kill -9, the kernel closes it and each worker's read end reports EOF (before, orphaned workers went on
        # serving the port, and a restart on the same port failed)
        self._parent_r, self._parent_w = self._mp.Pipe(duplex=False)
        self._stopping = False
        self._lock = threading.Lock()

    def _spawn(self) -> tuple[Any, Any]:
        ready = self._mp.Event()
        proc = self._mp.Process(
            target=worker_main,
            args=(self.spec, self.sock, ready, self._parent_r),
            name="marvel-serving-worker",
        )
        proc.start()
        return proc, ready

    def start(self, timeout: float = 300.0) -> WorkerPool:
        started = [self._spawn() for _ in range(self.size)]
        deadline = time.monotonic() + timeout
        for proc, ready in started:
            while not ready.wait(0.2):
                if not proc.is_alive() or time.monotonic() > deadline:
                    self._procs, self._ready = [p for p, _ in started], [r for _, r in started]
                    self.stop()
                    raise RuntimeError(f"a serving worker did not start (exit code {proc.exitcode})")
        self._procs, self._ready = [p for p, _ in started], [r for _, r in started]
        return self

    @property
    def running(self) -> bool:
        return not self._stopping and any(p.is_alive() for p in self._procs)

    def keep_alive(self) -> None:
        """Replace workers that died (their journals are recovered by the new ones)."""
        with self._lock:
            if self._stopping:
                return
            for i, proc in enumerate(self._procs):
                if not proc.is_alive():
                    log.warning("serving worker %s exited with %s: starting another", proc.pid, proc.exitcode)
                    self._procs[i], self._ready[i] = self._spawn()

    def stats(self) -> dict[str, Any]:
        return read_stats(self.stats_dir)

    def flush(self, timeout: float = 60.0) -> bool:
        """Ask every worker to move its journal into the table; True when all did within `timeout`."""
        asked = time.time()
        for proc in self._procs:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        pids = {str(p.pid) for p in self._procs if p.is_alive()}
        while time.monotonic() < deadline:
            done = set()
            for pid in pids:
                try:
                    stats = json.loads((self.stats_dir / f"{pid}.json").read_text())
                except (OSError, ValueError):
                    continue
                if stats.get("flushed_at", 0) >= asked:
                    done.add(pid)
            if done == pids:
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """SIGTERM every worker, wait for them to finish, then move whatever their journals still hold."""
        with self._lock:
            self._stopping = True
        for proc in self._procs:
            if proc.is_alive():
                proc.terminate()
        grace = self.spec.settings.graceful_timeout + 60
        for proc in self._procs:
            proc.join(grace)
            if proc.is_alive():
                log.error("serving worker %s did not stop within %.0fs: killed", proc.pid, grace)
                proc.kill()
                proc.join(10)
        self.sock.close()
        settings = self.spec.settings
        moved = recover(self.store, settings.inference_table, settings.journal_dir, self.spec.out_dir)
        if moved:
            log.warning("moved %d rows the workers left in their journals", moved)
