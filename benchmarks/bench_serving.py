"""The local endpoint against `mlflow models serve` of the same registered model, in the same run.

    MARVEL_HOME=/tmp/srv uv run python benchmarks/bench_serving.py [--seconds 10] [--workers 1]

Needs a registered model in MARVEL_HOME (`python -m marvel` trains one). Measures, with the inference log on:
- in process: one record through the pyfunc (`predict` on a frame, what MLflow serves) and through the
  endpoint's fast path (`ServedModel.predict_records`), p50/p99;
- over HTTP, for marvel's endpoint (`python -m marvel stages=[deploy]`) and MLflow's scoring server
  (`mlflow models serve -m models:/<custom>@latest-model --env-manager local`), one after the other on the
  same machine: single-record latency sequentially (p50, p99) and throughput with 1, 8 and 32 concurrent
  keep-alive clients (client processes x threads, the same load generator for both); the ratios;
- the cost of ``deploy.journal.fsync=true`` (sequential p50 and 32-client throughput);
- SIGKILL of the endpoint in the middle of 32-client load: every answered request must be in the
  inference table after the next start (rows lost must be 0).

Targets (issue 10): single-record p50 <= 0.25x MLflow's; 32-client throughput >= 2x MLflow's; in-process
single-record predict <= 0.5 ms p50; 0 rows lost. The machine's load average is printed with the numbers: on
a shared machine, read them with it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from marvel.serving.examples import RAW_EXAMPLE

REPO = Path(__file__).resolve().parents[1]
MODEL = "marvel_character_model_custom"
BODY = json.dumps({"dataframe_records": [RAW_EXAMPLE]}).encode()
HEADERS = {"Content-Type": "application/json"}


def pct(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1] * 1000


def timed(fn: Any, seconds: float) -> list[float]:
    samples: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return samples


# -- in process -----------------------------------------------------------------------------------------
def in_process(home: str, seconds: float) -> dict[str, list[float]]:
    import mlflow

    from marvel.core.variants import Variant
    from marvel.features.records import to_records
    from marvel.serving import models
    from marvel.serving.validation import parse_request

    uri = f"sqlite:///{home}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    served = models.load(models.resolve(Variant("A", MODEL, "latest-model", None, 100)))
    assert served.fast is not None, "the served model has no fast path"
    import pandas as pd

    frame = to_records(pd.DataFrame([RAW_EXAMPLE]))
    records = parse_request(BODY, 1000).records
    served.model.predict(frame)
    served.predict_records(records)
    batch = [dict(records[0], Id=f"c{i}", Height=1.0 + i / 1000) for i in range(100)]
    batch_frame = to_records(pd.DataFrame(batch))
    return {
        "pyfunc.predict on a frame (MLflow's path)": timed(lambda: served.model.predict(frame), seconds / 2),
        "fast path: predict_records": timed(lambda: served.predict_records(records), seconds / 2),
        "fast path + request parsing/validation": timed(
            lambda: served.predict_records(parse_request(BODY, 1000).records), seconds / 2
        ),
        "100 records: pyfunc.predict on a frame": timed(
            lambda: served.model.predict(batch_frame), seconds / 4
        ),
        "100 records: fast path": timed(lambda: served.predict_records(batch), seconds / 4),
    }


# -- servers ---------------------------------------------------------------------------------------------
class Server:
    def __init__(
        self, cmd: list[str], env: dict[str, str], ready: re.Pattern[str] | None, url: str | None
    ) -> None:
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self.url = url
        found = threading.Event()

        def read() -> None:
            for line in self.proc.stdout:  # type: ignore[union-attr]
                self.lines.append(line)
                if ready is not None and (m := ready.search(line)):
                    self.url = m.group(1)
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited:\n{''.join(self.lines)[-3000:]}")
            if (ready is None or found.is_set()) and self.url and self._ping():
                return
            time.sleep(0.2)
        raise SystemExit(f"server not ready:\n{''.join(self.lines)[-3000:]}")

    def _ping(self) -> bool:
        try:
            u = urlparse(self.url)
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=2)
            conn.request("GET", "/ping")
            return conn.getresponse().status == 200
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig) if sig == signal.SIGKILL else self.proc.send_signal(sig)
        return self.proc.wait(timeout=180)


def marvel_server(home: str, table: str, *overrides: str) -> Server:
    env = {**os.environ, "MARVEL_HOME": home, "PYTHONUNBUFFERED": "1"}
    env.pop("MARVEL_SERVING_TOKEN", None)
    cmd = [
        sys.executable,
        "-m",
        "marvel",
        "stages=[deploy]",
        "deploy.port=0",
        f"deploy.inference_table={table}",
    ]
    return Server([*cmd, *overrides], env, re.compile(r"serving \S+ at (http://\S+)"), None)


def mlflow_server(home: str, workers: int) -> Server:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bin_dir = str(Path(sys.executable).parent)  # mlflow starts uvicorn from PATH
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow.db",
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
    }
    cmd = [
        sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{MODEL}@latest-model",
        "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    return Server(cmd, env, None, f"http://127.0.0.1:{port}")


# -- load ------------------------------------------------------------------------------------------------
def _clients(
    args: tuple[str, str, int, float, float, bool],
) -> tuple[int, int, list[float], list[tuple[int, str]]]:
    """`threads` keep-alive clients until `end` (epoch seconds): answers, errors, latencies, (status, id)."""
    url, path, threads, start, end, keep_ids = args
    u = urlparse(url)
    done, errors, latencies, ids = [0], [0], [], []
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        while time.time() < start:
            time.sleep(0.001)
        while time.time() < end:
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, BODY, HEADERS)
                r = conn.getresponse()
                r.read()
            except (OSError, http.client.HTTPException):
                with lock:
                    errors[0] += 1
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
                time.sleep(0.01)
                continue
            took = time.perf_counter() - t0
            with lock:
                if r.status == 200:
                    done[0] += 1
                    latencies.append(took)
                else:
                    errors[0] += 1
                if keep_ids:
                    ids.append((r.status, r.getheader("x-request-id") or ""))

    pool = [threading.Thread(target=client) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return done[0], errors[0], latencies, ids


def load(url: str, path: str, clients: int, seconds: float, keep_ids: bool = False) -> dict[str, Any]:
    """`clients` concurrent clients for `seconds`, spread over up to 4 client processes."""
    procs = min(4, clients)
    per = [clients // procs + (i < clients % procs) for i in range(procs)]
    start = time.time() + 1.0
    with multiprocessing.get_context("spawn").Pool(procs) as pool:
        parts = pool.map(_clients, [(url, path, n, start, start + seconds, keep_ids) for n in per])
    latencies = [x for p in parts for x in p[2]]
    return {
        "rps": sum(p[0] for p in parts) / seconds,
        "errors": sum(p[1] for p in parts),
        "p50": pct(latencies, 50) if len(latencies) > 1 else float("nan"),
        "p99": pct(latencies, 99) if len(latencies) > 1 else float("nan"),
        "ids": [x for p in parts for x in p[3]],
    }


def sequential(url: str, path: str, seconds: float) -> list[float]:
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)

    def one() -> None:
        conn.request("POST", path, BODY, HEADERS)
        r = conn.getresponse()
        r.read()
        assert r.status == 200, r.status

    for _ in range(50):
        one()
    return timed(one, seconds)


def measure(server: Server, path: str, seconds: float) -> dict[str, Any]:
    seq = sequential(server.url or "", path, seconds)
    out: dict[str, Any] = {"p50": pct(seq, 50), "p99": pct(seq, 99), "seq_rps": len(seq) / seconds}
    for n in (1, 8, 32):
        out[n] = load(server.url or "", path, n, seconds)
    return out


# -- main ------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1, help="worker processes, for both servers")
    args = parser.parse_args()
    home = str(Path(os.environ.get("MARVEL_HOME", ".marvel")).resolve())
    s = args.seconds
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} at start, {s:g}s per measurement")

    inproc = in_process(home, s)
    print(f"\n{'in process, one record':44} {'p50 ms':>8} {'p99 ms':>8}")
    for label, samples in inproc.items():
        print(f"{label:44} {pct(samples, 50):8.3f} {pct(samples, 99):8.3f}")

    run_id = str(int(time.time()))
    ours = marvel_server(home, f"payload_bench_{run_id}", f"deploy.workers={args.workers}")
    try:
        mine = measure(ours, "/serving-endpoints/marvel-character-model-serving/invocations", s)
    finally:
        ours.stop()
    theirs_server = mlflow_server(home, args.workers)
    try:
        theirs = measure(theirs_server, "/invocations", s)
    finally:
        theirs_server.stop()
    fsynced = marvel_server(home, f"payload_bench_fsync_{run_id}", f"deploy.workers={args.workers}",
                            "deploy.journal.fsync=true")  # fmt: skip
    try:
        seq = sequential(fsynced.url or "", "/invocations", s / 2)
        fsync = {"p50": pct(seq, 50), 32: load(fsynced.url or "", "/invocations", 32, s / 2)}
    finally:
        fsynced.stop()

    print(f"\nover HTTP, one record per request ({args.workers} worker(s) each, inference log on for marvel)")
    print(f"{'':34} {'marvel':>10} {'mlflow':>10} {'ratio':>8}")
    rows = [
        ("sequential p50 ms", mine["p50"], theirs["p50"]),
        ("sequential p99 ms", mine["p99"], theirs["p99"]),
    ]
    for n in (1, 8, 32):
        rows.append((f"{n} clients, requests/s", mine[n]["rps"], theirs[n]["rps"]))
    for n in (1, 8, 32):
        rows.append((f"{n} clients, p99 ms", mine[n]["p99"], theirs[n]["p99"]))
    for label, a, b in rows:
        print(f"{label:34} {a:10.2f} {b:10.2f} {a / b:8.2f}x")
    errors = {n: (mine[n]["errors"], theirs[n]["errors"]) for n in (1, 8, 32)}
    print(f"non-200 answers or errors (marvel, mlflow) by clients: {errors}")
    print(f"p50 ratio {mine['p50'] / theirs['p50']:.2f}x (target <= 0.25x); "
          f"32-client throughput ratio {mine[32]['rps'] / theirs[32]['rps']:.2f}x (target >= 2x); "
          f"in-process fast path p50 {pct(inproc['fast path: predict_records'], 50):.3f} ms (target <= 0.5 ms)")  # fmt: skip
    print(f"journal fsync=true: sequential p50 {fsync['p50']:.2f} ms (vs {mine['p50']:.2f}), "
          f"32 clients {fsync[32]['rps']:.0f} req/s (vs {mine[32]['rps']:.0f})")  # fmt: skip

    # SIGKILL in the middle of 32-client load, then the next start moves the journal into the table
    table = f"payload_bench_kill_{run_id}"
    victim = marvel_server(home, table, f"deploy.workers={args.workers}")
    result: dict[str, Any] = {}
    loader = threading.Thread(
        target=lambda: result.update(load(victim.url or "", "/invocations", 32, s, True))
    )
    loader.start()
    time.sleep(1.0 + s / 2)
    victim.stop(signal.SIGKILL)
    loader.join()
    answered = {rid for status, rid in result["ids"] if rid}
    survivor = marvel_server(home, table, f"deploy.workers={args.workers}")
    survivor.stop()
    from marvel.core.tables import DeltaTableStore

    store = DeltaTableStore(Path(home) / "lake")
    ids = store.read(table)["databricks_request_id"] if store.exists(table) else []
    in_table = set(ids)
    lost = answered - in_table
    print(f"\nSIGKILL after {s / 2:g}s of 32-client load: {len(answered)} requests answered, {len(ids)} rows "
          f"({len(ids) - len(in_table)} duplicates), rows lost after SIGKILL: {len(lost)}")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
