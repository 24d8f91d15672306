"""The inference log's journal: append-only JSON-lines files a request's row is written to before its answer.

Layout, under ``<journal dir>/<table>/``:

    <owner>.lock              held (flock) by the live process that owns the journal; gone with it
    <owner>-<n>.jsonl         segments, one JSON row per line, appended by group commit
    <owner>-<n>.jsonl.done    how far a segment has been moved into the table (JSON: offset and the batch
                              being moved, with the table version before it, so a batch is never moved twice)

One owner per process (a worker). A crashed owner's lock is released by the kernel, so whoever takes it next
(a new server, or `stages=[monitor]`) moves its rows, and no one touches a live owner's files.

Durability: a row is written to the file (one ``write`` for every row committed together) before the
request is answered, so a process killed at any moment, SIGKILL included, loses nothing it answered: the
kernel has the bytes. With ``fsync`` each commit is also flushed to disk (surviving a power loss or a
kernel crash) at the cost of a disk flush per group of concurrent requests; see benchmarks/bench_serving.py.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUFFIX = ".jsonl"
DONE = ".done"
LOCK = ".lock"


def segment_name(owner: str, n: int) -> str:
    return f"{owner}-{n:06d}{SUFFIX}"


def parse_segment(path: Path) -> tuple[str, int] | None:
    """(owner, n) of a segment file name, or None for anything else."""
    if not path.name.endswith(SUFFIX):
        return None
    owner, _, n = path.name.removesuffix(SUFFIX).rpartition("-")
    return (owner, int(n)) if owner and n.isascii() and n.isdigit() else None


@dataclass
class Checkpoint:
    """How far a segment has been moved; `batch_end` / `table_version` describe a move that may have committed."""

    offset: int = 0
    batch_end: int | None = None
    table_version: int | None = None  # the table's version before that move (None: no table yet)

    @staticmethod
    def path(segment: Path) -> Path:
        return segment.with_name(segment.name + DONE)

    @classmethod
    def read(cls, segment: Path) -> Checkpoint:
        try:
            data = json.loads(cls.path(segment).read_text())
        except (FileNotFoundError, ValueError):
            return cls()
        return cls(int(data.get("offset", 0)), data.get("batch_end"), data.get("table_version"))

    def write(self, segment: Path, fsync: bool = False) -> None:
        """Atomically (write aside, then rename): a reader sees the old checkpoint or the new one."""
        target = self.path(segment)
        tmp = target.with_name(target.name + ".tmp")
        payload = {"offset": self.offset, "batch_end": self.batch_end, "table_version": self.table_version}
        with tmp.open("w") as fh:
            fh.write(json.dumps(payload))
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, target)


def read_lines(segment: Path, offset: int, max_lines: int) -> tuple[list[bytes], list[int]]:
    """Up to `max_lines` complete lines from `offset`, and the offset after each; a last line still being
    written (no newline yet) is left for later."""
    lines: list[bytes] = []
    ends: list[int] = []
    try:
        with segment.open("rb") as fh:
            fh.seek(offset)
            position = offset
            while len(lines) < max_lines:
                line = fh.readline()
                if not line.endswith(b"\n"):
                    break
                position += len(line)
                if line.strip():
                    lines.append(line)
                    ends.append(position)
                elif lines:
                    ends[-1] = position
    except FileNotFoundError:
        pass
    return lines, ends


def try_lock(path: Path) -> int | None:
    """An fd holding an exclusive lock on `path` (created if missing), or None when someone holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


class JournalFull(Exception):
    """The journal holds as many unmoved rows (or bytes) as it may; the endpoint answers 503."""


class Journal:
    """One process's journal: `append` rows, `commit` them (group commit), rotate segments.

    Thread-safe. `commit(seq)` returns once every row appended up to `seq` is in the file (and on disk with
    `fsync`); concurrent committers share one write (and one fsync): the first becomes the leader and writes
    what everyone appended, the others wait for it.
    """

    def __init__(self, directory: Path, *, fsync: bool = False, segment_bytes: int = 64 << 20) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fsync = bool(fsync)
        self.segment_bytes = max(1, int(segment_bytes))
        self.owner = f"{os.getpid()}x{time.time_ns():x}"
        lock = try_lock(self.directory / f"{self.owner}{LOCK}")
        if lock is None:  # cannot happen: the name is new
            raise RuntimeError(f"journal {self.owner} is locked by another process")
        self._lock_fd: int | None = lock
        self._cond = threading.Condition()
        self._pending: list[bytes] = []
        self._appended = 0  # rows appended (sequence numbers 1..appended)
        self._committed = 0  # rows in the file
        self._leader = False
        self._segment = 0
        self._size = 0
        self._fd: int | None = self._open(0)
        self.closed = False
        self.writes = 0  # group commits: one write (and fsync) each, however many rows

    def _open(self, n: int) -> int:
        path = self.directory / segment_name(self.owner, n)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if self.fsync:  # the new file's name must survive a crash too
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return fd

    @property
    def current_segment(self) -> int:
        return self._segment

    def segments(self) -> list[Path]:
        """This journal's segment files, oldest first."""
        found = []
        for path in self.directory.glob(f"{self.owner}-*{SUFFIX}"):
            parsed = parse_segment(path)
            if parsed and parsed[0] == self.owner:
                found.append((parsed[1], path))
        return [p for _, p in sorted(found)]

    def append(self, row: dict[str, Any]) -> int:
        """Queue one row for the next commit; returns its sequence number (not yet in the file)."""
        line = json.dumps(row, ensure_ascii=True, separators=(",", ":"), default=str).encode("ascii") + b"\n"
        with self._cond:
            if self.closed:
                raise RuntimeError("the journal is closed")
            self._pending.append(line)
            self._appended += 1
            return self._appended

    @property
    def appended(self) -> int:
        return self._appended

    def commit(self, seq: int | None = None) -> None:
        """Return when every row up to `seq` (default: all appended so far) is written (and flushed)."""
        with self._cond:
            target = self._appended if seq is None else seq
            while self._committed < target:
                if self._leader:
                    self._cond.wait()
                    continue
                self._leader = True
                data, upto = b"".join(self._pending), self._appended
                self._pending.clear()
                fd = self._fd
                self._cond.release()
                try:
                    assert fd is not None
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    if self.fsync:
                        os.fsync(fd)
                finally:
                    self._cond.acquire()
                    self._leader = False
                    self._cond.notify_all()
                self._size += len(data)
                self._committed = upto
                self.writes += 1
                if self._size >= self.segment_bytes:
                    self._rotate()

    def _rotate(self) -> None:
        """Start the next segment (under the condition lock, after a commit): the old one is complete."""
        assert self._fd is not None
        os.close(self._fd)
        self._segment += 1
        self._size = 0
        self._fd = self._open(self._segment)

    def close(self) -> None:
        """Commit what is queued, close the file and release the lock (the files stay until moved)."""
        self.commit()
        with self._cond:
            if self.closed:
                return
            self.closed = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def release(self) -> None:
        """Drop the owner's lock and lock file (after everything was moved)."""
        if self._lock_fd is not None:
            (self.directory / f"{self.owner}{LOCK}").unlink(missing_ok=True)
            unlock(self._lock_fd)
            self._lock_fd = None


def orphans(directory: Path, live: set[str]) -> dict[str, list[Path]]:
    """Segments of owners other than `live`, by owner, oldest first (whether their owner is alive is decided
    by its lock, by whoever recovers them)."""
    found: dict[str, list[tuple[int, Path]]] = {}
    if not directory.is_dir():
        return {}
    for path in directory.glob(f"*{SUFFIX}"):
        parsed = parse_segment(path)
        if parsed and parsed[0] not in live:
            found.setdefault(parsed[0], []).append((parsed[1], path))
    return {owner: [p for _, p in sorted(paths)] for owner, paths in sorted(found.items())}
