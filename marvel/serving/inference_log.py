"""The inference table (`custom_model_payload`): one `InferenceLog` row per scoring request, nothing lost.

A request's row goes to this process's journal (`marvel.serving.journal`) before its answer is sent. A
background thread reads the journal back and appends its rows to the table store in batches (when
`max_rows` wait, when the oldest has waited `max_seconds`, on `flush()` and on `close()`), exactly once
(`marvel.serving.mover`). On start it first moves what crashed processes left in their journals;
`stages=[monitor]` does the same (`marvel.serving.recovery`). A store that cannot be written (down, full) is
retried with backoff while rows wait in the journal; the journal is bounded (`max_backlog_rows`), and a full
one makes the endpoint answer 503 (`JournalFull`) rather than grow without limit.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from marvel.core.tables import TableStore
from marvel.serving.journal import Journal, JournalFull, segment_name
from marvel.serving.mover import MS_PER_DAY, Mover, recover

log = logging.getLogger(__name__)
__all__ = ["InferenceLogWriter", "JournalFull", "make_row", "recover"]


def make_row(
    *,
    timestamp_ms: int,
    status_code: int,
    execution_duration_ms: int,
    request: str,
    response: dict[str, Any] | str,
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
        "response": response if isinstance(response, str) else json.dumps(response, separators=(",", ":")),
        "served_model_name": served_model_name,
        "served_model_version": served_model_version,
        "variant": variant,
    }


class InferenceLogWriter:
    """Journaled, batched, exactly-once appends of `InferenceLog` rows to `store`'s table `table`."""

    def __init__(
        self,
        store: TableStore,
        table: str = "custom_model_payload",
        max_rows: int = 500,
        max_seconds: float = 5.0,
        fallback_dir: str | Path | None = None,
        journal_dir: str | Path | None = None,
        fsync: bool = False,
        max_backlog_rows: int = 100_000,
        segment_bytes: int = 64 << 20,
    ) -> None:
        self.store = store
        self.table = table
        self.max_rows = max(1, int(max_rows))
        self.max_seconds = max(0.0, float(max_seconds))
        self.fallback_path = Path(fallback_dir or ".") / f"{table}.unwritten.jsonl"
        self.journal_dir = Path(journal_dir) if journal_dir else Path(fallback_dir or ".") / "journal"
        self.max_backlog_rows = max(1, int(max_backlog_rows))
        self.journal = Journal(self.journal_dir / table, fsync=fsync, segment_bytes=segment_bytes)
        self.mover = Mover(store, table, self.fallback_path, fsync=fsync)
        self._late = 0  # rows submitted after close (written straight to the table)
        self.recovered = 0
        self.flushes = 0
        self._moved = 0  # rows of this journal moved or set aside
        self._oldest: float | None = None  # monotonic time of the oldest row not yet moved
        self._wake = threading.Event()
        self._flush_lock = threading.Lock()
        self._flush_requests: list[tuple[threading.Event, list[bool], int]] = []
        self._closing = False
        self._closed = False
        self._full_logged = 0.0
        self._thread = threading.Thread(target=self._loop, name=f"inference-log-{table}", daemon=True)
        self._thread.start()

    # -- request side ---------------------------------------------------------------------------------
    @property
    def backlog(self) -> int:
        """Rows in the journal, not yet in the table."""
        return self.journal.appended - self._moved

    def check_room(self) -> None:
        """Raise `JournalFull` when the journal holds as many unmoved rows as it may."""
        if self.backlog >= self.max_backlog_rows:
            now = time.monotonic()
            if now - self._full_logged > 10:
                self._full_logged = now
                log.error(
                    "inference log backlog full (%d rows not yet in %s): answering 503 until the store catches up",
                    self.backlog,
                    self.table,
                )
            raise JournalFull(f"{self.backlog} inference log rows wait for the table store")

    def append(self, row: dict[str, Any]) -> int:
        """Queue a row for the journal; `commit(seq)` makes it durable. Returns its sequence number."""
        if self._closed:
            self._write_after_close(row)
            return 0
        row = {k: v for k, v in row.items() if k != "date"}  # derived from timestamp_ms when moved
        seq = self.journal.append(row)
        if self._oldest is None:
            self._oldest = time.monotonic()
        if self.backlog >= self.max_rows:
            self._wake.set()
        return seq

    def commit(self, seq: int | None = None) -> None:
        """Return once the row `seq` (default: every row) is in the journal."""
        if seq != 0:
            self.journal.commit(seq)

    def submit(self, row: dict[str, Any]) -> None:
        """Append a row and commit it (what a request does before it is answered)."""
        self.commit(self.append(row))

    def flush(self, timeout: float | None = 60.0) -> bool:
        """Move everything submitted so far into the table; True when done within `timeout`."""
        if self._closed:
            return True
        self.journal.commit()
        done, ok = threading.Event(), [False]
        with self._flush_lock:
            self._flush_requests.append((done, ok, self.journal.appended))
        self._wake.set()
        return done.wait(timeout) and ok[0]

    def close(self, timeout: float | None = 120.0) -> None:
        """Move everything into the table and stop (idempotent). Rows that cannot be moved (the store is
        down) stay in the journal, and the next server or `stages=[monitor]` moves them."""
        if self._closing:
            return
        self._closing = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("inference log mover did not finish within %ss; rows stay in the journal", timeout)
        self._closed = True

    @property
    def submitted(self) -> int:
        return self.journal.appended + self._late

    @property
    def written(self) -> int:
        return self.mover.written

    @property
    def fallback(self) -> int:
        return self.mover.set_aside

    @property
    def pending(self) -> int:
        return self.backlog

    # -- mover thread -----------------------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            self.recovered = recover(
                self.store, self.table, self.journal_dir, self.fallback_path.parent, {self.journal.owner}
            )
        except Exception:
            log.exception(
                "could not recover leftover journal rows into %s (retried on the next start)", self.table
            )
        failures = 0
        while True:
            self._wake.wait(self._timeout(failures))
            self._wake.clear()
            closing = self._closing
            with self._flush_lock:
                requests, self._flush_requests = self._flush_requests, []
            due = self._oldest is not None and time.monotonic() - self._oldest >= self.max_seconds
            everything = closing or bool(requests) or due
            try:
                self._move(everything)
                failures = 0
                ok = True
            except Exception:
                failures += 1
                ok = False
                log.exception("could not append inference log rows to %s (attempt %d)", self.table, failures)
            for done, result, target in requests:
                result[0] = ok and self._moved >= target
                done.set()
            if closing:
                self.journal.close()
                try:
                    if ok:
                        self._move(True)
                        for segment in self.journal.segments():
                            self.mover.finish(segment)
                except Exception:
                    log.exception("inference log rows left in the journal %s", self.journal.directory)
                if self.backlog:
                    log.error(
                        "%d inference log rows stay in %s: the next server or stages=[monitor] moves them",
                        self.backlog,
                        self.journal.directory,
                    )
                self.journal.release()  # whoever comes next may take over what is left
                return

    def _timeout(self, failures: int) -> float | None:
        if failures:  # the store failed: retry with backoff, up to 30 s apart
            return min(30.0, max(self.max_seconds, 1.0) * 2 ** (failures - 1))
        if self._oldest is None:
            return 1.0
        return max(0.0, self._oldest + self.max_seconds - time.monotonic())

    def _move(self, everything: bool) -> None:
        """Move full batches (or everything) from this journal's segments, oldest first."""
        self.journal.commit()
        backlog = self.backlog
        want = backlog if everything else (backlog // self.max_rows) * self.max_rows
        if want <= 0:
            if backlog == 0:
                self._oldest = None
            return
        segments = self.journal.segments()
        for i, segment in enumerate(segments):
            moved = self.mover.move(segment, max(self.max_rows, 5000) if everything else self.max_rows, want)
            self._moved += moved
            want -= moved
            if i < len(segments) - 1 and segment.name != self._current_name():
                self.mover.finish(segment)
            if want <= 0:
                break
        self.flushes += 1
        self._oldest = time.monotonic() if self.backlog > 0 else None

    def _current_name(self) -> str:
        return segment_name(self.journal.owner, self.journal.current_segment)

    def _write_after_close(self, row: dict[str, Any]) -> None:
        """A row after close cannot be journaled by this writer: write it straight away rather than lose it."""
        self._late += 1
        try:
            self.mover._write([row])
        except Exception:
            log.exception("could not write a late inference log row")
            self.mover._set_aside([(row, "written after the log was closed, and the store failed")])
