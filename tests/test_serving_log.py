"""The inference-table writer on its own: size and time flushes, close, schema failures, nothing lost."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
from serving_kit import wait_for

from marvel.core.tables import DeltaTableStore
from marvel.serving.inference_log import InferenceLogWriter, make_row

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def row(i: int, **overrides: object) -> dict:
    return {
        **make_row(
            timestamp_ms=T0 + i,
            status_code=200,
            execution_duration_ms=3,
            request=json.dumps({"dataframe_records": [{"Id": str(i)}]}),
            response={"predictions": {"Survival prediction": ["alive"]}},
            served_model_name="m",
            served_model_version="1",
            variant="A",
        ),
        **overrides,
    }


def rows_in(store: DeltaTableStore, table: str = "payload") -> int:
    return len(store.read(table)) if store.exists(table) else 0


@pytest.mark.slow
def test_flushes_on_size_on_time_and_on_close(tmp_path: Path) -> None:
    store = DeltaTableStore(tmp_path / "lake")
    writer = InferenceLogWriter(store, "payload", max_rows=5, max_seconds=3600, fallback_dir=tmp_path)
    for i in range(12):
        writer.submit(row(i))
    assert wait_for(
        lambda: rows_in(store) == 10, timeout=10
    )  # two full batches, without waiting for the clock
    time.sleep(0.3)
    assert rows_in(store) == 10  # the 2 left wait for size, time or close
    writer.close()
    assert rows_in(store) == 12
    assert writer.pending == 0

    timed = InferenceLogWriter(store, "payload", max_rows=1000, max_seconds=0.2, fallback_dir=tmp_path)
    timed.submit(row(100))
    assert wait_for(lambda: rows_in(store) == 13, timeout=5)  # the time bound flushed a batch of one
    timed.close()
    written = store.read("payload")
    assert sorted(written["timestamp_ms"] - T0) == [*range(12), 100]
    assert (written["date"] == pd.Timestamp("2026-01-01")).all()


def test_null_only_batch_does_not_fix_text_columns_to_null(tmp_path: Path) -> None:
    """A first batch whose nullable columns are all None must not make later text values unwritable."""
    store = DeltaTableStore(tmp_path / "lake")
    writer = InferenceLogWriter(store, "payload", max_rows=1, max_seconds=60, fallback_dir=tmp_path)
    writer.submit(
        row(0, client_request_id=None, served_model_name=None, served_model_version=None, variant=None)
    )
    assert writer.flush()
    writer.submit(row(1, client_request_id="abc"))
    writer.close()
    assert writer.fallback == 0
    assert store.read("payload").sort_values("timestamp_ms")["client_request_id"].tolist() == [None, "abc"]


def test_rows_failing_the_schema_go_to_the_fallback_file_not_nowhere(tmp_path: Path) -> None:
    store = DeltaTableStore(tmp_path / "lake")
    writer = InferenceLogWriter(store, "payload", max_rows=100, max_seconds=60, fallback_dir=tmp_path)
    writer.submit(row(0))
    writer.submit(row(1, status_code=42))  # not an HTTP status: fails InferenceLog
    writer.submit(row(2))
    writer.close()
    assert rows_in(store) == 2
    kept = [json.loads(line) for line in (tmp_path / "payload.unwritten.jsonl").read_text().splitlines()]
    assert [r["status_code"] for r in kept] == [42]
    assert writer.written + writer.fallback == writer.submitted == 3


def test_a_failed_write_is_retried_not_dropped(tmp_path: Path) -> None:
    blocker = tmp_path / "lake"
    blocker.write_text("a file where the lake folder should be")  # every write fails while this is here
    store = DeltaTableStore(blocker)
    writer = InferenceLogWriter(store, "payload", max_rows=2, max_seconds=0.1, fallback_dir=tmp_path)
    writer.submit(row(0))
    writer.submit(row(1))
    time.sleep(0.3)
    assert writer.written == 0
    assert writer.pending == 2
    blocker.unlink()  # the store recovers; the next flush writes the waiting rows
    writer.submit(row(2))
    assert wait_for(lambda: writer.written == 3, timeout=10)
    writer.close()
    assert rows_in(store) == 3
    assert writer.fallback == 0


def test_rows_the_table_refuses_are_repaired_or_set_aside_alone(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A lone surrogate once made Arrow refuse every later batch; now such rows are repaired, oversize text is
    truncated with a marker, and a row that still fails is set aside alone: the others are written."""
    import marvel.serving.mover as mover

    monkeypatch.setattr(mover, "MAX_TEXT_BYTES", 1000)
    store = DeltaTableStore(tmp_path / "lake")
    writer = InferenceLogWriter(store, "payload", max_rows=100, max_seconds=60, fallback_dir=tmp_path)
    writer.submit(row(0, client_request_id="\ud800"))
    writer.submit(row(1, request='{"Id": "x\udc80y"}'))
    writer.submit(row(2, request="z" * 5000))
    writer.submit(row(3, status_code=42))
    for i in range(4, 10):
        writer.submit(row(i, client_request_id=f"ok-{i}"))
    writer.close()
    written = store.read("payload").set_index("timestamp_ms")
    assert len(written) == 9
    assert written.loc[T0 + 0, "client_request_id"] == "\ufffd"
    assert written.loc[T0 + 1, "request"] == '{"Id": "x\ufffdy"}'
    assert written.loc[T0 + 2, "request"].startswith("z" * 1000)
    assert written.loc[T0 + 2, "request"].endswith("[truncated: 5000 bytes]")
    aside = [json.loads(line) for line in (tmp_path / "payload.unwritten.jsonl").read_text().splitlines()]
    assert [r["status_code"] for r in aside] == [42]
    assert "status_code" in aside[0]["_reason"]
    assert writer.written + writer.fallback == writer.submitted == 10


def _journal_rows(directory: Path, n: int) -> list[dict]:
    from marvel.serving.journal import Journal

    journal = Journal(directory)
    rows = [{k: v for k, v in row(i).items() if k != "date"} for i in range(n)]
    for r in rows:
        journal.append(r)
    journal.commit()
    journal.close()
    journal.release()  # as a crash would leave it: the files, no lock holder
    return rows


def test_a_move_interrupted_after_the_table_commit_is_not_repeated(tmp_path: Path) -> None:
    """The crash that hurts most: the batch reached the table, the checkpoint saying so did not."""

    from marvel.serving.journal import Checkpoint, read_lines
    from marvel.serving.mover import recover, to_table_frame

    store = DeltaTableStore(tmp_path / "lake")
    directory = tmp_path / "journal" / "payload"
    rows = _journal_rows(directory, 10)
    segment = next(directory.glob("*.jsonl"))
    _, ends = read_lines(segment, 0, 100)
    Checkpoint(0, ends[5], store.version("payload")).write(segment)  # "moving rows 0..5, table at None"
    store.write("payload", to_table_frame(rows[:6])[0], mode="append")  # ...which committed; then the crash
    assert recover(store, "payload", tmp_path / "journal") == 10
    written = store.read("payload")
    assert len(written) == 10
    assert written["databricks_request_id"].is_unique
    assert not list(directory.glob("*.jsonl*"))

    # the same crash before the commit: the batch is moved, once
    other = tmp_path / "journal2" / "payload"
    more = _journal_rows(other, 4)
    segment = next(other.glob("*.jsonl"))
    _, ends = read_lines(segment, 0, 100)
    Checkpoint(0, ends[1], store.version("payload")).write(segment)
    assert recover(store, "payload", tmp_path / "journal2") == 4
    assert len(store.read("payload")) == 14
    assert set(store.read("payload")["databricks_request_id"]) >= {r["databricks_request_id"] for r in more}


def test_a_live_journal_is_never_taken_over(tmp_path: Path) -> None:
    from marvel.serving.mover import recover

    store = DeltaTableStore(tmp_path / "lake")
    writer = InferenceLogWriter(store, "payload", max_rows=1000, max_seconds=3600, fallback_dir=tmp_path)
    writer.submit(row(0))
    assert recover(store, "payload", tmp_path / "journal") == 0  # its owner holds the lock
    assert rows_in(store) == 0
    writer.close()
    assert rows_in(store) == 1


def test_a_full_journal_answers_503_and_logs_it(tmp_path: Path) -> None:
    from marvel.core.variants import Variant
    from marvel.serving.app import ServingApp
    from marvel.serving.routing import Router

    blocker = tmp_path / "lake"
    blocker.write_text("the store is down")
    store = DeltaTableStore(blocker)
    writer = InferenceLogWriter(
        store, "payload", max_rows=1, max_seconds=0.05, fallback_dir=tmp_path, max_backlog_rows=3
    )
    app = ServingApp(
        endpoint_name="e", models={}, router=Router([Variant("A", "m", "a", None, 100)]), writer=writer
    )
    for i in range(3):
        writer.submit(row(i))
    answer = app.invoke(json.dumps({"dataframe_records": [{"Height": 1.0}]}).encode(), {})
    app.commit(answer)
    assert answer.status == 503
    assert answer.body["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert writer.backlog == 4  # the refusal is logged too (without its body)
    blocker.unlink()
    assert writer.flush(60)  # wakes the mover out of its backoff
    assert writer.written == 4
    writer.close()
    refused = store.read("payload").set_index("status_code").loc[503]
    assert refused["request"] == ""


def test_fsync_commits_are_shared_by_concurrent_requests(tmp_path: Path) -> None:
    import threading

    store = DeltaTableStore(tmp_path / "lake")
    writer = InferenceLogWriter(
        store, "payload", max_rows=1000, max_seconds=60, fallback_dir=tmp_path, fsync=True
    )
    start = threading.Barrier(8)

    def client(c: int) -> None:
        start.wait()
        for i in range(40):
            writer.submit(row(c * 1000 + i))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert writer.journal.writes < 320  # group commit: one write + fsync served several requests
    writer.close()
    assert rows_in(store) == 320
