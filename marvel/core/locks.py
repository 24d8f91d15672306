"""One process at a time on this machine: an exclusive file lock that the kernel drops when its holder ends,
`kill -9` included, so a crash never leaves a lock behind."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


@contextmanager
def exclusive(path: Path, waiting: str | None = None) -> Iterator[None]:
    """Hold the lock at `path` for the block; if another process holds it, log `waiting` and wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                log.info(waiting)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def machine_lock(key: str) -> Path:
    """A lock file for `key` (a table's URI, ...) shared by every process on this machine."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return Path(tempfile.gettempdir()) / "marvel-locks" / f"{digest}.lock"
