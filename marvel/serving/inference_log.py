"""The inference table (`custom_model_payload`): one `InferenceLog` row per scoring request.

Rows are written off the request path: handlers put a finished row on a queue and return; one background
thread batches rows and appends them to the table store when `max_rows` are waiting or the oldest waiting
row is `max_seconds` old, and on `close()`. A batch is validated with pandera before it is written. Nothing
is dropped: a failed write is retried on the next flush, and whatever still cannot be written at close (or
fails the schema, which would be a bug) goes to a JSON-lines file beside the run's outputs, with an error
in the log.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa

from marvel.core.schemas import InferenceLog
from marvel.core.tables import TableStore

log = logging.getLogger(__name__)

COLUMNS: list[str] = list(InferenceLog.to_schema().columns)
# text columns get an explicit string dtype: a batch where a nullable column is all None would otherwise be
# typed `null` by Arrow, and the table created from it would refuse every later batch with text there
TEXT_COLUMNS: list[str] = [n for n, c in InferenceLog.to_schema().columns.items() if str(c.dtype) == "str"]
MS_PER_DAY = 86_400_000


def make_row(
    *,
    timestamp_ms: int,
    status_code: int,
    execution_duration_ms: int,
    request: str,
    response: dict[str, Any],
    databricks_request_id: str | None = None,
    client_request_id: str | None = None,
    served_model_name: str | None = None,
    served_model_version: str | None = None,
    variant: str | None = None,
) -> dict[str, Any]:
    """A complete row: every column set at once, so no partial row can ever reach the table."""
    return {
        "databricks_request_id": databricks_request_id or str(uuid.uuid4()),
        "client_request_id": client_request_id,
        # the request's UTC day, like Databricks' DATE column (midnight, tz-naive UTC)
        "date": pd.Timestamp(timestamp_ms - timestamp_ms % MS_PER_DAY, unit="ms"),
        "timestamp_ms": int(timestamp_ms),
        "status_code": int(status_code),
        "execution_duration_ms": max(0, int(execution_duration_ms)),
        "request": request,
        "response": json.dumps(response, separators=(",", ":")),
        "served_model_name": served_model_name,
        "served_model_version": served_model_version,
        "variant": variant,
    }


@dataclass
class _Flush:
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False


_STOP = object()


class InferenceLogWriter:
    """Buffered, validated appends of `InferenceLog` rows to `store`'s table `table`."""

    def __init__(
        self,
        store: TableStore,
        table: str = "custom_model_payload",
        max_rows: int = 500,
        max_seconds: float = 5.0,
        fallback_dir: str | Path | None = None,
    ) -> None:
        self.store = store
        self.table = table
        self.max_rows = max(1, int(max_rows))
        self.max_seconds = max(0.0, float(max_seconds))
        self.fallback_path = Path(fallback_dir or ".") / f"{table}.unwritten.jsonl"
        self.submitted = 0
        self.written = 0
        self.fallback = 0
        self.flushes = 0
        self._queue: queue.Queue[Any] = queue.Queue()
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name=f"inference-log-{table}", daemon=True)
        self._thread.start()

    # -- request side ---------------------------------------------------------------------------------
    def submit(self, row: dict[str, Any]) -> None:
        with self._lock:
            self.submitted += 1
            if self._closed:
                # a row after close cannot be queued; write it straight away rather than lose it
                self._write([row], final=True)
                return
            self._queue.put(row)

    def flush(self, timeout: float | None = 60.0) -> bool:
        """Write everything submitted so far; True when it was written before `timeout`."""
        if self._closed:
            return True
        marker = _Flush()
        self._queue.put(marker)
        return marker.done.wait(timeout) and marker.ok

    def close(self, timeout: float | None = 120.0) -> None:
        """Flush and stop the writer thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("inference log writer did not finish within %ss", timeout)

    @property
    def pending(self) -> int:
        return self.submitted - self.written - self.fallback

    # -- writer thread --------------------------------------------------------------------------------
    def _loop(self) -> None:
        buffer: list[dict[str, Any]] = []
        deadline = float("inf")  # when the oldest waiting row has waited max_seconds
        failing = False  # the last write failed: retry on the clock only, not on every new row
        while True:
            wait = None if not buffer else max(0.0, deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                item = None
            if item is _STOP:
                self._write(buffer, final=True)
                return
            if isinstance(item, _Flush):
                buffer = self._write(buffer)
                failing = bool(buffer)
                item.ok = not failing
                item.done.set()
            elif item is not None:
                if not buffer:
                    deadline = time.monotonic() + self.max_seconds
                buffer.append(item)
            full = len(buffer) >= self.max_rows and not failing
            if buffer and (full or time.monotonic() >= deadline):
                buffer = self._write(buffer)
                failing = bool(buffer)
                deadline = time.monotonic() + max(self.max_seconds, 1.0)

    def _write(self, rows: list[dict[str, Any]], final: bool = False) -> list[dict[str, Any]]:
        """Validate and append `rows`; return those still to be written (a failed write, retried later)."""
        if not rows:
            return []
        frame = pd.DataFrame(rows, columns=COLUMNS)
        try:
            frame = InferenceLog.validate(frame, lazy=True)
        except pa.errors.SchemaErrors as exc:
            bad = set(exc.failure_cases["index"].dropna().astype(int))
            log.error("%d inference log rows fail the InferenceLog schema:\n%s", len(bad), exc.failure_cases)
            self._to_fallback([r for i, r in enumerate(rows) if i in bad or not bad])
            rows = [r for i, r in enumerate(rows) if bad and i not in bad]
            if not rows:
                return []
            frame = InferenceLog.validate(pd.DataFrame(rows, columns=COLUMNS))
        frame = frame.astype(dict.fromkeys(TEXT_COLUMNS, "string"))
        try:
            self.store.write(self.table, frame, mode="append")
        except Exception:
            log.exception("could not append %d rows to %s", len(rows), self.table)
            if final:
                self._to_fallback(rows)
                return []
            return rows
        self.written += len(rows)
        self.flushes += 1
        return []

    def _to_fallback(self, rows: list[dict[str, Any]]) -> None:
        self.fallback_path.parent.mkdir(parents=True, exist_ok=True)
        with self.fallback_path.open("a", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, default=str) + "\n")
        self.fallback += len(rows)
        log.error("%d inference log rows kept in %s", len(rows), self.fallback_path)
