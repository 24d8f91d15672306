"""Nothing answered is lost: the real server (`python -m marvel stages=[deploy]`) killed with SIGKILL under
concurrent load, before its first table commit and in steady state, then recovered (by the next server, or
by `stages=[monitor]`): every answered request is in the inference table exactly once. And one poisonous
request does not stop the rows after it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from processes import wait_for
from serving_kit import ENDPOINT, CliServer, config, home_with_challenger, post, serve, table

from marvel.core.engine import run
from marvel.serving.examples import RAW_EXAMPLE
from marvel.serving.workers import STATS


@pytest.fixture(scope="module")
def home(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return home_with_challenger(trained_home, tmp_path_factory.mktemp("durability") / "marvel_home")


Answer = tuple[int, str, str]  # (status, x-request-id, client id)


def load(url: str, clients: int, stop: threading.Event, answered: list[Answer]) -> None:
    """Requests from `clients` threads until `stop`, each answer appended to `answered` as it comes."""
    lock = threading.Lock()

    def client(c: int) -> None:
        with requests.Session() as s:
            i = 0
            while not stop.is_set():
                crid = f"c{c}-{i}"
                record = dict(RAW_EXAMPLE, Id=f"char-{c}-{i}")
                if i % 5 == 4:
                    del record["Gender"]  # refused requests are traffic too
                try:
                    r = s.post(
                        url, json={"dataframe_records": [record], "client_request_id": crid}, timeout=10
                    )
                except requests.RequestException:
                    return  # the server is gone
                with lock:
                    answered.append((r.status_code, r.headers["x-request-id"], crid))
                i += 1

    with ThreadPoolExecutor(clients) as pool:
        for c in range(clients):
            pool.submit(client, c)


def commits(home: Path, table_name: str) -> int:
    return len(list((home / "lake" / table_name / "_delta_log").glob("*.json")))


def kill_under_load(
    home: Path, table_name: str, ready: Callable[[list[Answer]], bool], *overrides: str
) -> list[Answer]:
    """Serve, load with 16 clients, SIGKILL the server once `ready(answered so far)`; what was answered."""
    with CliServer(home, f"deploy.inference_table={table_name}", *overrides) as server:
        url = f"{server.wait_for_url()}/serving-endpoints/{ENDPOINT}/invocations"
        stop = threading.Event()
        answered: list[Answer] = []
        loader = threading.Thread(target=load, args=(url, 16, stop, answered))
        loader.start()
        wait_for("the load's moment to kill", lambda: ready(answered))
        assert server.kill() == -9  # mid-load: requests in flight, rows in the journal
        stop.set()
        loader.join(60)
    return answered


def assert_all_answered_rows(home: Path, table_name: str, answered: list[Answer]) -> None:
    rows = table(home, table_name)
    assert rows["databricks_request_id"].is_unique  # exactly once
    by_id = rows.set_index("databricks_request_id")
    missing = [a for a in answered if a[1] not in by_id.index]
    assert not missing, f"{len(missing)} of {len(answered)} answered requests lost: {missing[:3]}"
    for status, request_id, crid in answered:
        assert by_id.loc[request_id, "status_code"] == status
        assert by_id.loc[request_id, "client_request_id"] == crid
    assert len(rows) - len(answered) <= 32  # at most the requests in flight when it died


@pytest.mark.slow
def test_sigkill_before_the_first_commit_loses_nothing_and_the_next_server_recovers(home: Path) -> None:
    # no table commit at all before the kill: every row is only in the journal
    answered = kill_under_load(
        home,
        "payload_kill_early",
        lambda answered: len(answered) >= 200,
        "deploy.flush.max_rows=1000000",
        "deploy.flush.max_seconds=600",
    )
    assert len(answered) > 50
    assert not (home / "lake" / "payload_kill_early").exists()
    with CliServer(home, "deploy.inference_table=payload_kill_early") as server:
        server.wait_for_url()  # the new server moves the dead one's journal as it starts
        assert server.terminate() == 0, server.text
    assert_all_answered_rows(home, "payload_kill_early", answered)
    assert not list((home / "journal" / "payload_kill_early").glob("*.jsonl"))  # moved, then deleted


@pytest.mark.slow
def test_sigkill_in_steady_state_loses_nothing_and_the_monitor_stage_recovers(home: Path) -> None:
    # steady state: the table has taken several flushes, and requests keep coming
    answered = kill_under_load(
        home,
        "payload_kill_steady",
        lambda answered: len(answered) >= 300 and commits(home, "payload_kill_steady") >= 3,
        "deploy.flush.max_rows=40",
        "deploy.flush.max_seconds=0.3",
    )
    assert len(answered) > 50
    before = len(table(home, "payload_kill_steady"))
    assert before < len(answered)  # some rows were only in the journal when it died
    cfg = config(home, "stages=[monitor]", "deploy.inference_table=payload_kill_steady",
                 "monitor.inference_table=payload_kill_steady")  # fmt: skip
    run(cfg, out_dir=home / "out" / "monitor")
    assert_all_answered_rows(home, "payload_kill_steady", answered)


@pytest.mark.slow
def test_a_poisonous_request_does_not_stop_the_rows_after_it(home: Path) -> None:
    """A lone surrogate in client_request_id once made every later batch fail in Arrow."""
    with serve(home, "deploy.inference_table=payload_poison", "deploy.flush.max_seconds=0.1") as ep:
        poison = post(ep.invocations_url, b'{"dataframe_records": [' + json.dumps(RAW_EXAMPLE).encode()
                      + b'], "client_request_id": "\\ud800"}')  # fmt: skip
        assert poison.status_code == 400
        assert poison.json()["field"] == "client_request_id"
        header = post(
            ep.invocations_url,
            {"dataframe_records": [RAW_EXAMPLE]},
            {"X-Client-Request-Id": "\udcff".encode("utf-8", "surrogateescape").decode("latin-1")},
        )
        assert header.status_code == 200
        for i in range(20):
            ok = post(
                ep.invocations_url, {"dataframe_records": [RAW_EXAMPLE], "client_request_id": f"after-{i}"}
            )
            assert ok.status_code == 200
        assert ep.flush()
        stats: dict[str, Any] = ep.app.stats()
    rows = table(home, "payload_poison")
    assert len(rows) == 22 == stats["requests"]
    assert {f"after-{i}" for i in range(20)} <= set(rows["client_request_id"].dropna())
    assert stats["rows_set_aside"] == 0


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def children(pid: int) -> list[int]:
    """The worker processes of a server: the children of the forkserver it forks them from (not the forkserver
    itself, nor multiprocessing's resource tracker)."""
    found = []
    for child in _children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"multiprocessing.forkserver" in cmdline:
                found.extend(_children(child))
        except FileNotFoundError:
            continue
    return found


@contextlib.contextmanager
def two_workers(home: Path, name: str) -> Iterator[tuple[CliServer, str, list[int]]]:
    """A real server with two workers that move rows only when they stop: (server, invocations URL, worker pids)."""
    with CliServer(home, "deploy.workers=2", f"deploy.inference_table={name}", "deploy.flush.max_seconds=600",
                   "deploy.flush.max_rows=1000000") as server:  # fmt: skip
        url = f"{server.wait_for_url(timeout=300)}/serving-endpoints/{ENDPOINT}/invocations"
        workers = children(server.proc.pid)
        assert len(workers) == 2
        yield server, url, workers


@pytest.mark.slow
def test_workers_share_a_port_and_a_killed_worker_is_replaced_without_losing_rows(home: Path) -> None:
    name = "payload_workers"
    with two_workers(home, name) as (server, url, workers):
        stop = threading.Event()
        answered: list[Answer] = []
        loader = threading.Thread(target=load, args=(url, 8, stop, answered))
        loader.start()
        # 8 clients' connections spread over both workers (SO_REUSEPORT): each has answered rows by then
        wait_for("150 answers before the kill", lambda: len(answered) >= 150)
        os.kill(workers[0], signal.SIGKILL)  # its journal holds every row it answered (no move yet)
        before = len(answered)
        wait_for("150 answers after the kill", lambda: len(answered) >= before + 150)
        stop.set()
        loader.join(60)
        # the replacement is up when it has reported from its serving loop (after it loaded the models and
        # said it was ready) and is still alive; a process that only started does not count
        replacement: set[int] = set()
        deadline = time.monotonic() + 300
        while not replacement and time.monotonic() < deadline:
            reported = {int(p.stem) for p in home.rglob(f"{STATS}/*.json")}
            replacement = (reported & set(children(server.proc.pid))) - set(workers)
            time.sleep(0.5)
        assert replacement, f"no replacement worker served: {server.text[-3000:]}"
        assert "exited with 1" not in server.text  # no replacement died on its way up
        after = post(url, {"dataframe_records": [RAW_EXAMPLE], "client_request_id": "after-the-kill"})
        assert after.status_code == 200
        assert server.terminate() == 0, server.text
    answered.append((200, after.headers["x-request-id"], "after-the-kill"))
    assert len(answered) > 30
    assert_all_answered_rows(home, name, answered)


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_workers_whose_server_is_killed_stop_and_keep_their_rows(home: Path) -> None:
    """kill -9 of the serving process alone (no handler runs): its workers notice, move what they answered into
    the table and exit, instead of serving on as orphans that hold the port."""
    name = "payload_orphans"
    with two_workers(home, name) as (server, url, workers):
        answered = []
        for i in range(20):
            r = post(url, {"dataframe_records": [RAW_EXAMPLE], "client_request_id": f"o-{i}"})
            assert r.status_code == 200
            answered.append((200, r.headers["x-request-id"], f"o-{i}"))
        assert server.kill() == -9
        deadline = time.monotonic() + 120
        while any(_running(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_running(w) for w in workers), "orphaned workers still serving"
    assert_all_answered_rows(home, name, answered)  # moved by the workers as they stopped
