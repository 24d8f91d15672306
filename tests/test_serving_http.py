"""The endpoint as an HTTP server, tried with raw sockets: framing that could smuggle a request is refused,
slow and aborted clients cost nothing and leave no phantom rows, timeouts and shutdown answer (and log) what
they cut short, and every request that reached a scoring route is exactly one row."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import requests
from serving_kit import ENDPOINT, home_with_challenger, post, serve, table, wait_for

from marvel.core.schemas import INPUT_REQUIRED
from marvel.core.tables import DeltaTableStore
from marvel.serving.deployer import LocalEndpoint
from marvel.serving.examples import RAW_EXAMPLE

TABLE = "payload_http"
GOOD = {"dataframe_records": [RAW_EXAMPLE]}
PATH = f"/serving-endpoints/{ENDPOINT}/invocations"


@pytest.fixture(scope="module")
def home(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return home_with_challenger(trained_home, tmp_path_factory.mktemp("http") / "marvel_home")


@pytest.fixture(scope="module")
def endpoint(home: Path) -> Iterator[LocalEndpoint]:
    with serve(
        home,
        f"deploy.inference_table={TABLE}",
        "deploy.flush.max_seconds=0.2",
        "deploy.header_timeout=1.0",
        "deploy.body_timeout=1.0",
        "deploy.max_body_bytes=4096",
        "deploy.max_connections=40",
    ) as ep:
        yield ep


def connect(ep: LocalEndpoint) -> socket.socket:
    sock = socket.create_connection((ep.host, ep.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_all(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection (or `timeout`)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def request_bytes(body: bytes, *headers: str, path: str = PATH) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: test", "Content-Type: application/json", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def rows(ep: LocalEndpoint, home: Path) -> pd.DataFrame:
    assert ep.flush()
    if not DeltaTableStore(home / "lake").exists(TABLE):
        return pd.DataFrame(columns=["client_request_id", "status_code", "databricks_request_id"])
    return table(home, TABLE)


def answered(ep: LocalEndpoint) -> int:
    return int(ep.app.stats()["requests"])


def test_framing_that_could_smuggle_a_request_is_refused(endpoint: LocalEndpoint, home: Path) -> None:
    body = json.dumps({**GOOD, "client_request_id": "outer"}).encode()
    smuggled = request_bytes(
        json.dumps({**GOOD, "client_request_id": "smuggled"}).encode(), "Content-Length: 200"
    )
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    before = answered(endpoint)
    cases = {
        # both framings: a proxy reading Content-Length would see the smuggled request as a second one
        "te+cl": request_bytes(
            chunked + smuggled, f"Content-Length: {len(chunked)}", "Transfer-Encoding: chunked"
        ),
        "duplicate": request_bytes(body, f"Content-Length: {len(body)}", f"Content-Length: {len(body)}"),
        "list": request_bytes(body, f"Content-Length: {len(body)}, {len(body)}"),
        "conflicting": request_bytes(body + smuggled, f"Content-Length: {len(body)}", "Content-Length: 5"),
        "double te": request_bytes(chunked, "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"),
    }
    for name, raw in cases.items():
        with connect(endpoint) as sock:
            sock.sendall(raw)
            answer = read_all(sock)
        status = answer.split(b" ", 2)[1] if answer else b""
        assert status in (b"400", b"501"), (name, answer[:200])
        assert answer.count(b"HTTP/1.1") == 1, (name, answer)  # one answer, then the connection closed
    assert answered(endpoint) == before  # nothing reached the app: no scoring, no row
    logged = rows(endpoint, home)
    assert not logged["client_request_id"].isin(["outer", "smuggled"]).any()


def test_chunked_and_keep_alive_requests_work(endpoint: LocalEndpoint) -> None:
    body = json.dumps({**GOOD, "client_request_id": "chunked-1"}).encode()
    chunked = (
        b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (body[:10], body[10:])) + b"0\r\n\r\n"
    )
    with connect(endpoint) as sock:
        sock.sendall(request_bytes(chunked, "Transfer-Encoding: chunked"))
        sock.sendall(request_bytes(body, f"Content-Length: {len(body)}", "Connection: close"))
        answer = read_all(sock)
    assert answer.count(b"HTTP/1.1 200") == 2, answer  # two pipelined requests on one connection


@pytest.mark.slow
def test_slow_and_aborted_clients_leave_no_phantom_rows(endpoint: LocalEndpoint, home: Path) -> None:
    before_rows, before = len(rows(endpoint, home)), answered(endpoint)
    # trickled headers: closed after header_timeout, before any request
    with connect(endpoint) as sock:
        sock.sendall(f"POST {PATH} HTTP/1.1\r\nHost: t\r\n".encode())
        started = time.monotonic()
        closed = read_all(sock, timeout=10)
        assert closed == b""
        assert time.monotonic() - started < 5
    # a connection that sends nothing at all: closed too
    with connect(endpoint) as sock:
        assert read_all(sock, timeout=10) == b""
    # a body cut short by the client: not a request, so no row
    body = json.dumps(GOOD).encode()
    with connect(endpoint) as sock:
        sock.sendall(request_bytes(body[:20], f"Content-Length: {len(body)}"))
        time.sleep(0.2)
    # a request aborted before its headers were complete
    with connect(endpoint) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nContent-Le")
    time.sleep(0.5)
    assert answered(endpoint) == before
    assert len(rows(endpoint, home)) == before_rows


def test_a_body_that_does_not_arrive_in_time_is_a_logged_408(endpoint: LocalEndpoint, home: Path) -> None:
    body = json.dumps(GOOD).encode()
    with connect(endpoint) as sock:
        sock.sendall(
            request_bytes(body[:20], f"Content-Length: {len(body)}", "X-Client-Request-Id: slow-body")
        )
        answer = read_all(sock, timeout=10)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b'"REQUEST_TIMEOUT"' in answer
    logged = rows(endpoint, home).set_index("client_request_id")
    assert logged.loc["slow-body", "status_code"] == 408
    assert logged.loc["slow-body", "request"] == ""


def test_oversized_bodies_get_413_and_one_row_each(endpoint: LocalEndpoint, home: Path) -> None:
    big = json.dumps({"dataframe_records": [dict(RAW_EXAMPLE, Name="x" * 5000)]}).encode()
    with requests.Session() as s:  # drained: the keep-alive connection carries on
        first = s.post(
            endpoint.invocations_url, data=big, headers={"X-Client-Request-Id": "big-1"}, timeout=10
        )
        second = s.post(endpoint.invocations_url, json=GOOD, timeout=10)
    assert (first.status_code, second.status_code) == (413, 200)
    # a declared size far beyond the limit is answered without reading it, and the connection closed
    with connect(endpoint) as sock:
        sock.sendall(request_bytes(b"{", "Content-Length: 100000000", "X-Client-Request-Id: huge-1"))
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer
    logged = rows(endpoint, home).set_index("client_request_id")
    assert logged.loc[["big-1", "huge-1"], "status_code"].tolist() == [413, 413]


def test_many_connections_cost_no_thread_each_and_the_bound_holds(endpoint: LocalEndpoint) -> None:
    threads_before = threading.active_count()
    idle = []
    try:
        for _ in range(60):  # over deploy.max_connections=40: the extra ones are closed on accept
            sock = socket.create_connection((endpoint.host, endpoint.port), timeout=10)
            idle.append(sock)
        time.sleep(0.3)
        closed = 0
        for sock in idle:
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                closed += sock.recv(1) == b""
        assert closed >= 15, closed
        assert threading.active_count() <= threads_before + 2  # asyncio: connections are not threads
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.2)
    assert post(endpoint.invocations_url, GOOD).status_code == 200


def test_probes_version_csv_and_unknown_routes(endpoint: LocalEndpoint) -> None:
    head = requests.head(f"{endpoint.url}/ping", timeout=5)
    assert head.status_code == 200
    assert head.content == b""
    import mlflow

    assert requests.get(f"{endpoint.url}/version", timeout=5).text == mlflow.__version__
    record = {**RAW_EXAMPLE, "Height": None}
    columns = [*INPUT_REQUIRED, "Id"]
    csv = ",".join(columns) + "\n" + ",".join("" if record[c] is None else str(record[c]) for c in columns)
    as_csv = requests.post(
        f"{endpoint.url}/invocations", data=csv, headers={"Content-Type": "text/csv"}, timeout=10
    )
    as_json = post(f"{endpoint.url}/invocations", {"dataframe_records": [record]})
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.json() == as_json.json()
    bad_csv = requests.post(
        endpoint.invocations_url, data=b"Height\n\xff", headers={"Content-Type": "text/csv"}, timeout=10
    )
    assert bad_csv.status_code == 400
    missing = requests.get(f"{endpoint.url}/nope", timeout=5)
    assert (missing.status_code, missing.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    wrong = requests.put(endpoint.invocations_url, data=b"{}", timeout=5)
    assert (wrong.status_code, wrong.json()["error_code"]) == (405, "METHOD_NOT_ALLOWED")
    slash = post(f"{endpoint.url}/invocations/", GOOD)
    assert slash.status_code == 200


def test_rows_equal_requests(endpoint: LocalEndpoint, home: Path) -> None:
    """After everything above: one row per request that reached a scoring route, no more, no less."""
    logged = rows(endpoint, home)
    stats = endpoint.app.stats()
    assert len(logged) == stats["requests"]
    assert {str(k): v for k, v in logged["status_code"].value_counts().items()} == stats["by_status"]
    assert logged["databricks_request_id"].is_unique


@pytest.mark.slow
def test_shutdown_answers_a_body_still_arriving_with_a_logged_503(home: Path) -> None:
    with serve(
        home, "deploy.inference_table=payload_shutdown", "deploy.graceful_timeout=2", "deploy.body_timeout=60"
    ) as ep:
        assert post(ep.invocations_url, GOOD).status_code == 200
        body = json.dumps(GOOD).encode()
        sock = connect(ep)
        sock.sendall(
            request_bytes(body[:10], f"Content-Length: {len(body)}", "X-Client-Request-Id: cut-short")
        )
        time.sleep(0.3)
        stopper = threading.Thread(target=ep.stop)
        stopper.start()
        answer = read_all(sock, timeout=20)
        stopper.join(30)
        sock.close()
    assert answer.startswith(b"HTTP/1.1 503"), answer
    logged = table(home, "payload_shutdown").set_index("client_request_id")
    assert len(logged) == 2
    assert logged.loc["cut-short", "status_code"] == 503
    assert wait_for(lambda: not ep.running)
