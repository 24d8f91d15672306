"""Serving overhead on loopback: the endpoint against calling the same registered model in-process.

    MARVEL_HOME=/tmp/srv uv run python benchmarks/bench_serving.py [--seconds 10] [--threads 4]

Needs a registered model in MARVEL_HOME (python -m marvel ... trains one). Starts the real server as
`python -m marvel stages=[deploy] deploy.port=0` in a subprocess (so client and server do not share a GIL),
measures single-record latency (p50/p99) and throughput, sequential and with concurrent clients, and a
100-record batch; every number is printed with its ratio to the in-process baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import requests

from marvel.serving.examples import RAW_EXAMPLE

REPO = Path(__file__).resolve().parents[1]
RECORD = RAW_EXAMPLE


def percentiles(samples: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return q[49] * 1000, q[98] * 1000


def timed(fn, seconds: float) -> list[float]:  # type: ignore[no-untyped-def]
    samples: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return samples


def baseline(home: str, seconds: float) -> tuple[list[float], float]:
    import mlflow

    from marvel.features.records import to_records

    uri = f"sqlite:///{home}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = mlflow.pyfunc.load_model("models:/marvel_character_model_custom@latest-model")
    one = to_records(pd.DataFrame([RECORD]))
    batch = to_records(pd.DataFrame([dict(RECORD, Id=f"c{i}") for i in range(100)]))
    model.predict(one)
    single = timed(lambda: model.predict(one), seconds)
    batch_s = statistics.median(timed(lambda: model.predict(batch), seconds / 2))
    return single, batch_s


def start_server(home: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "MARVEL_HOME": home, "PYTHONUNBUFFERED": "1"}
    env.pop("MARVEL_SERVING_TOKEN", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "marvel",
            "stages=[deploy]",
            "deploy.port=0",
            "deploy.inference_table=payload_bench",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for line in proc.stdout:  # type: ignore[union-attr]
        if m := re.search(r"serving \S+ at (http://\S+)", line):
            return proc, m.group(1) + "/invocations"
    raise SystemExit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    home = str(Path(os.environ.get("MARVEL_HOME", ".marvel")).resolve())

    base_single, base_batch = baseline(home, args.seconds)
    proc, url = start_server(home)
    try:
        session = requests.Session()
        body = {"dataframe_records": [RECORD]}
        session.post(url, json=body).raise_for_status()
        seq = timed(lambda: session.post(url, json=body).raise_for_status(), args.seconds)
        # the endpoint without the model: HTTP round trip, and parsing + validation + logging of a refusal
        ping = timed(lambda: session.get(url.replace("/invocations", "/ping")), args.seconds / 4)
        refused = timed(
            lambda: session.post(url, json={"dataframe_records": [{"Height": 1.0}]}), args.seconds / 4
        )

        def worker(_: int) -> int:
            s = requests.Session()
            n, end = 0, time.perf_counter() + args.seconds
            while time.perf_counter() < end:
                s.post(url, json=body).raise_for_status()
                n += 1
            return n

        with ThreadPoolExecutor(args.threads) as pool:
            concurrent_rps = sum(pool.map(worker, range(args.threads))) / args.seconds
        batch_body = {"dataframe_records": [dict(RECORD, Id=f"c{i}") for i in range(100)]}
        batch = statistics.median(
            timed(lambda: session.post(url, json=batch_body).raise_for_status(), args.seconds / 2)
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)

    b50, b99 = percentiles(base_single)
    s50, s99 = percentiles(seq)
    base_rps, seq_rps = 1 / statistics.mean(base_single), 1 / statistics.mean(seq)
    print(f"cores: {os.cpu_count()}, {args.seconds:g}s per measurement")
    print(f"{'':34} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    print(f"{'in-process pyfunc.predict (1 rec)':34} {b50:8.1f} {b99:8.1f} {base_rps:8.1f}")
    print(f"{'HTTP sequential (1 rec)':34} {s50:8.1f} {s99:8.1f} {seq_rps:8.1f}")
    print(f"{f'HTTP {args.threads} clients (1 rec)':34} {'':8} {'':8} {concurrent_rps:8.1f}")
    for label, samples in (("HTTP GET /ping", ping), ("HTTP refused request (400, logged)", refused)):
        p50, p99 = percentiles(samples)
        print(f"{label:34} {p50:8.2f} {p99:8.2f} {1 / statistics.mean(samples):8.0f}")
    print(
        f"ratios vs in-process: p50 x{s50 / b50:.2f}, p99 x{s99 / b99:.2f}, sequential throughput x{seq_rps / base_rps:.2f}, concurrent throughput x{concurrent_rps / base_rps:.2f}"
    )
    print(
        f"100-record batch: in-process {base_batch * 1000:.1f} ms, HTTP {batch * 1000:.1f} ms (x{batch / base_batch:.2f}); {100 / batch:.0f} records/s over HTTP"
    )


if __name__ == "__main__":
    main()
