"""Moving journal rows into the inference table: exactly once, and never held up by one bad row.

A batch is recorded as "being moved, table at version v" before it is written, so a crash between the table
commit and the checkpoint is resolved by looking at what the table received since v: every row reaches the
table exactly once (`databricks_request_id` is the key). A row the table cannot take never holds up the
others: text Arrow refuses (lone surrogates) is repaired, oversize text is truncated with a marker, and a row
that still fails the `InferenceLog` schema is set aside alone, with the reason, in
``<fallback_dir>/<table>.unwritten.jsonl``. A store that fails (down, full) raises: the rows stay in the
journal for the next attempt.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
import pyarrow

from marvel.core.schemas import InferenceLog
from marvel.core.tables import TableStore
from marvel.serving.journal import Checkpoint, orphans, read_lines, try_lock, unlock

log = logging.getLogger(__name__)

COLUMNS: list[str] = list(InferenceLog.to_schema().columns)
# text columns get an explicit string dtype: a batch where a nullable column is all None would otherwise be
# typed `null` by Arrow, and the table created from it would refuse every later batch with text there
TEXT_COLUMNS: list[str] = [n for n, c in InferenceLog.to_schema().columns.items() if str(c.dtype) == "str"]
MS_PER_DAY = 86_400_000
MAX_TEXT_BYTES = 4 << 20  # a request/response cell longer than this is truncated, with a marker
_SURROGATES = re.compile("[\ud800-\udfff]")


# -- rows the table can take --------------------------------------------------------------------------
def repair(row: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The row with text Arrow can store (lone surrogates -> U+FFFD, oversize text truncated with a marker),
    and what was repaired."""
    fixed = dict(row)
    notes: list[str] = []
    for col in TEXT_COLUMNS:
        value = fixed.get(col)
        if value is None:
            continue
        if not isinstance(value, str):
            value = str(value)
        if _SURROGATES.search(value):
            value = _SURROGATES.sub("\ufffd", value)
            notes.append(f"{col}: lone surrogates replaced")
        size = len(value.encode("utf-8"))
        if size > MAX_TEXT_BYTES:
            value = value.encode("utf-8")[:MAX_TEXT_BYTES].decode("utf-8", "ignore")
            value += f"...[truncated: {size} bytes]"
            notes.append(f"{col}: truncated from {size} bytes")
        fixed[col] = value
    return fixed, notes


def frame_of(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=COLUMNS)
    ts = pd.to_numeric(frame["timestamp_ms"], errors="coerce")
    frame["date"] = pd.to_datetime(ts - ts % MS_PER_DAY, unit="ms")
    return frame


def to_table_frame(rows: list[dict[str, Any]]) -> tuple[pd.DataFrame, list[tuple[dict[str, Any], str]]]:
    """Rows -> a frame the store can append (validated, Arrow-convertible), and the rows set aside with why."""
    rows = [repair(r)[0] for r in rows]
    aside: list[tuple[dict[str, Any], str]] = []
    try:
        frame = InferenceLog.validate(frame_of(rows), lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        bad: dict[int, str] = {}
        for _, case in cases.iterrows():
            if pd.notna(case["index"]):
                bad.setdefault(
                    int(case["index"]), f"{case['column']}: {case['check']} (got {case['failure_case']!r})"
                )
        if not bad:  # a failure not tied to a row: judge each row alone
            bad = {i: reason for i, r in enumerate(rows) if (reason := _row_problem(r))}
        aside = [(rows[i], f"InferenceLog schema: {reason}") for i, reason in sorted(bad.items())]
        rows = [r for i, r in enumerate(rows) if i not in bad]
        if not rows:
            return frame_of([]), aside
        frame = InferenceLog.validate(frame_of(rows))
    frame = frame.astype(dict.fromkeys(TEXT_COLUMNS, "string"))
    try:
        pyarrow.Table.from_pandas(frame, preserve_index=False)
    except (pyarrow.ArrowException, ValueError, TypeError, OverflowError):
        keep = []
        for r in rows:
            if (reason := _row_problem(r)) is None:
                keep.append(r)
            else:
                aside.append((r, reason))
        frame = InferenceLog.validate(frame_of(keep)).astype(dict.fromkeys(TEXT_COLUMNS, "string"))
    return frame, aside


def _row_problem(row: dict[str, Any]) -> str | None:
    """Why one row cannot be written on its own, or None."""
    try:
        frame = InferenceLog.validate(frame_of([row])).astype(dict.fromkeys(TEXT_COLUMNS, "string"))
        pyarrow.Table.from_pandas(frame, preserve_index=False)
    except pa.errors.SchemaError as exc:
        return f"InferenceLog schema: {exc}".splitlines()[0]
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None


def decode(line: bytes) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except ValueError as exc:  # a torn line cannot be committed (only whole lines are read); kept anyway
        return {"databricks_request_id": None, "request": line.decode("utf-8", "replace"), "_error": str(exc)}
    return row if isinstance(row, dict) else {"request": str(row), "_error": "not a JSON object"}


# -- moving journal rows into the table -----------------------------------------------------------------
class Mover:
    """Moves journal segments into `store`'s table `table`, exactly once, setting aside what cannot go."""

    def __init__(self, store: TableStore, table: str, fallback_path: Path, fsync: bool = False) -> None:
        self.store = store
        self.table = table
        self.fallback_path = fallback_path
        self.fsync = fsync
        self.written = 0
        self.set_aside = 0
        self.commits = 0

    def move(self, segment: Path, max_rows: int, limit: int | None = None) -> int:
        """Move up to `limit` rows (None: all) of `segment` in batches of at most `max_rows`; returns the rows
        moved. Raises when the store fails (nothing is lost: the checkpoint says what is left)."""
        moved = 0
        checkpoint = Checkpoint.read(segment)
        if checkpoint.batch_end is not None:  # a move that may have committed before a crash
            moved += self._resume(segment, checkpoint)
            checkpoint = Checkpoint.read(segment)
        while limit is None or moved < limit:
            want = max_rows if limit is None else min(max_rows, limit - moved)
            lines, ends = read_lines(segment, checkpoint.offset, want)
            if not lines:
                break
            rows = [decode(line) for line in lines]
            version = self.store.version(self.table)
            Checkpoint(checkpoint.offset, ends[-1], version).write(segment, self.fsync)
            self._write(rows)
            checkpoint = Checkpoint(ends[-1])
            checkpoint.write(segment, self.fsync)
            moved += len(rows)
        return moved

    def _resume(self, segment: Path, checkpoint: Checkpoint) -> int:
        """Finish a batch a crash interrupted: the rows the table did not receive since the version noted."""
        assert checkpoint.batch_end is not None
        size = checkpoint.batch_end - checkpoint.offset
        lines, ends = read_lines(segment, checkpoint.offset, 1 << 30)
        keep = [(line, end) for line, end in zip(lines, ends, strict=True) if end <= checkpoint.batch_end]
        rows = [decode(line) for line, _ in keep]
        since = -1 if checkpoint.table_version is None else int(checkpoint.table_version)
        present: set[str] = set()
        if self.store.exists(self.table):
            changes = self.store.changes(self.table, since)
            if "databricks_request_id" in changes:
                present = set(changes["databricks_request_id"].dropna().astype(str))
        todo = [r for r in rows if str(r.get("databricks_request_id")) not in present]
        log.info(
            "%s: resuming an interrupted move of %d rows (%d bytes); %d were already in the table",
            segment.name,
            len(rows),
            size,
            len(rows) - len(todo),
        )
        if todo:
            self._write(todo)
        Checkpoint(checkpoint.batch_end).write(segment, self.fsync)
        return len(rows)  # every row of the batch is now in the table (or set aside)

    def _write(self, rows: list[dict[str, Any]]) -> None:
        frame, aside = to_table_frame(rows)
        if aside:
            self._set_aside(aside)
        if len(frame):
            self.store.write(self.table, frame, mode="append")
            self.written += len(frame)
            self.commits += 1

    def _set_aside(self, rows: list[tuple[dict[str, Any], str]]) -> None:
        self.fallback_path.parent.mkdir(parents=True, exist_ok=True)
        with self.fallback_path.open("a", encoding="utf-8") as fh:
            for row, reason in rows:
                fh.write(json.dumps({**row, "_reason": reason}, default=str) + "\n")
        self.set_aside += len(rows)
        log.error("%d inference log row(s) set aside in %s: %s", len(rows), self.fallback_path, rows[0][1])

    def finish(self, segment: Path) -> bool:
        """Delete a fully moved segment (and then its checkpoint); False when rows are left."""
        checkpoint = Checkpoint.read(segment)
        try:
            size = segment.stat().st_size
        except FileNotFoundError:
            size = 0
        if checkpoint.batch_end is not None or checkpoint.offset < size:
            lines, _ = read_lines(segment, checkpoint.offset, 1)
            if lines or checkpoint.batch_end is not None:
                return False
        segment.unlink(missing_ok=True)
        Checkpoint.path(segment).unlink(missing_ok=True)
        done = Checkpoint.path(segment)
        done.with_name(done.name + ".tmp").unlink(missing_ok=True)  # a checkpoint a crash cut short
        return True


def recover(
    store: TableStore,
    table: str,
    journal_dir: str | Path,
    fallback_dir: str | Path | None = None,
    live: set[str] | None = None,
    max_rows: int = 5000,
) -> int:
    """Move every row that dead owners left in ``<journal_dir>/<table>`` into the table, exactly once; owners
    still alive (holding their lock) are left alone. Returns the rows moved."""
    directory = Path(journal_dir) / table
    mover = Mover(store, table, Path(fallback_dir or directory) / f"{table}.unwritten.jsonl")
    moved = 0
    for owner, segments in orphans(directory, live or set()).items():
        lock_path = directory / f"{owner}.lock"
        fd = try_lock(lock_path)
        if fd is None:
            continue  # alive
        try:
            for segment in segments:
                moved += mover.move(segment, max_rows)
                mover.finish(segment)
            if not any(directory.glob(f"{owner}-*")):
                lock_path.unlink(missing_ok=True)
        finally:
            unlock(fd)
    if moved:
        log.warning("moved %d inference log rows left by a stopped server into %s", moved, table)
    return moved
