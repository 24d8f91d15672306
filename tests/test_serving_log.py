"""The inference-table writer on its own: size and time flushes, close, schema failures, nothing lost."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

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


def wait_for(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_flushes_on_size_on_time_and_on_close(tmp_path: Path) -> None:
    store = DeltaTableStore(tmp_path / "lake")
    writer = InferenceLogWriter(store, "payload", max_rows=5, max_seconds=3600, fallback_dir=tmp_path)
    for i in range(12):
        writer.submit(row(i))
    assert wait_for(lambda: rows_in(store) == 10)  # two full batches, without waiting for the clock
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
