"""The monitor's Delta operations: idempotent writes, MERGE, change data feed, reads by time range.

Every write of refresh N carries Delta's application transaction ``(app_id, N)`` (the ``txn`` action
Structured Streaming uses for exactly-once sinks). A rerun after a crash asks each table whether refresh N
already committed there (`done`) and skips that write, so nothing is written twice and nothing is lost.

``MARVEL_MONITOR_HOLD_AFTER_COMMIT=k`` makes the process stop moving right after its k-th commit (it sleeps
for `HOLD_SECONDS`, then goes on): the fault tests set it and send ``kill -9`` there, between two commits,
where a crash hurts most, without waiting at the commits before it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import CommitProperties, DeltaTable, Transaction, WriterProperties, write_deltalake

from marvel.core.errors import MarvelError
from marvel.core.tables import TableStore

log = logging.getLogger(__name__)
CDF = {"delta.enableChangeDataFeed": "true"}
# row groups small enough that a read of a few windows skips the rest by their timestamp statistics
ROW_GROUP = 32_768
HOLD_ENV = "MARVEL_MONITOR_HOLD_AFTER_COMMIT"
HOLD_SECONDS = 600.0
CDF_COLUMNS = ["_change_type", "_commit_version", "_commit_timestamp"]


def _hold_after() -> int:
    """The commit to hold after (0: none), from HOLD_ENV."""
    text = os.environ.get(HOLD_ENV, "").strip()
    try:
        count = int(text or 0)
    except ValueError:
        count = -1
    if count < 0:
        raise MarvelError(f"{HOLD_ENV} must be a commit count (a whole number), got {text!r}: unset it")
    return count


def literal(ts: pd.Timestamp) -> str:
    """A timestamp as a Delta (DataFusion) SQL literal."""
    return f"CAST('{pd.Timestamp(ts).isoformat()}' AS TIMESTAMP)"


class Lake:
    """Delta tables of one store, written by one application (`app_id`)."""

    def __init__(self, store: TableStore, app_id: str) -> None:
        self.store = store
        self.app_id = app_id
        self.hold_after = _hold_after()
        self.commits: list[str] = []  # tables this process committed to, in order

    # -- reading ----------------------------------------------------------------------------------------
    def path(self, name: str) -> str:
        return self.store.uri(name)

    def exists(self, name: str) -> bool:
        return DeltaTable.is_deltatable(self.path(name))

    def version(self, name: str) -> int:
        """The table's version, -1 when it does not exist."""
        return DeltaTable(self.path(name)).version() if self.exists(name) else -1

    def table(self, name: str, version: int | None = None) -> DeltaTable:
        try:
            return DeltaTable(self.path(name), version=version)
        except Exception as exc:  # deltalake raises its own error kinds for a missing version
            raise MarvelError(f"table '{name}' has no version {version}: {exc}") from None

    def columns(self, name: str) -> list[str]:
        return [f.name for f in self.table(name).schema().fields] if self.exists(name) else []

    def read(
        self,
        name: str,
        version: int | None = None,
        columns: Sequence[str] | None = None,
        where: ds.Expression | None = None,
        match: tuple[str, Sequence[str]] | None = None,
    ) -> pa.Table:
        """Rows where `where` holds (pushed down: files and row groups are skipped by their statistics)
        and whose `match[0]` column is one of `match[1]` (applied after reading: files a MERGE wrote keep
        strings as string views, which Arrow cannot compare with plain strings in a pushed-down filter)."""
        dataset = self.table(name, version).to_pyarrow_dataset()
        found = dataset.to_table(columns=list(columns) if columns else None, filter=where)
        if match is not None:
            column, values = match
            keep = pc.is_in(
                pc.cast(found[column], pa.string()), value_set=pa.array(list(values), pa.string())
            )
            found = found.filter(keep)
        return found

    def changes(self, name: str, after: int, upto: int) -> pd.DataFrame:
        """Rows inserted in versions (after, upto] (the change data feed; a full read when `after` is -1)."""
        if after < 0:
            return self.read(name, upto).to_pandas()
        if upto <= after:
            return self.read(name, upto).schema.empty_table().to_pandas()
        reader = self.table(name).load_cdf(starting_version=after + 1, ending_version=upto)
        found = pa.RecordBatchReader.from_stream(reader).read_all().to_pandas()
        inserts = found[found["_change_type"].astype(str) == "insert"]
        return inserts.drop(columns=CDF_COLUMNS).reset_index(drop=True)

    def done(self, name: str, refresh: int, step: str = "") -> bool:
        """Whether refresh `refresh` already committed its write (`step`, when a refresh writes the table
        more than once) to table `name`."""
        if not self.exists(name):
            return False
        found = DeltaTable(self.path(name)).transaction_version(self._app(step))
        return found is not None and found >= refresh

    # -- writing ----------------------------------------------------------------------------------------
    def _app(self, step: str) -> str:
        return f"{self.app_id}/{step}" if step else self.app_id

    def _props(self, refresh: int, step: str = "") -> CommitProperties:
        return CommitProperties(app_transactions=[Transaction(self._app(step), refresh)])

    def _committed(self, name: str) -> None:
        self.commits.append(name)
        log.debug("refresh commit to %s", name)
        if len(self.commits) == self.hold_after:
            time.sleep(HOLD_SECONDS)

    def write(
        self, name: str, data: pa.Table, refresh: int, mode: str = "append", check: bool = True
    ) -> bool:
        """Append or overwrite, once per refresh; False when this refresh had already written it.

        `check=False` writes anyway (the state table, whose rows say themselves what was done)."""
        if check and self.done(name, refresh):
            return False
        exists = self.exists(name)
        write_deltalake(
            self.path(name),
            data,
            mode="overwrite" if mode == "overwrite" else "append",
            configuration=None if exists else CDF,
            schema_mode="overwrite" if (exists and mode == "overwrite") else None,
            writer_properties=WriterProperties(max_row_group_size=ROW_GROUP),
            commit_properties=self._props(refresh),
        )
        self._committed(name)
        return True

    def replace_windows(
        self, name: str, data: pa.Table, windows: Sequence[pd.Timestamp], keys: Sequence[str], refresh: int
    ) -> bool:
        """Make the rows of `windows` exactly `data`, in one MERGE: matched rows updated, new ones inserted,
        rows of those windows that `data` no longer has deleted. Other windows are not touched."""
        if self.done(name, refresh):
            return False
        if not self.exists(name):
            return self.write(name, data, refresh)
        on = " AND ".join(
            f"(t.{k} IS NOT DISTINCT FROM s.{k})"
            if k.startswith("slice_") or "." not in k
            else f"t.{k} = s.{k}"
            for k in keys
        )
        scope = "t.window.start IN (" + ", ".join(literal(w) for w in sorted(set(windows))) + ")"
        (
            self.table(name)
            .merge(
                data,
                predicate=f"{on} AND {scope}",
                source_alias="s",
                target_alias="t",
                writer_properties=WriterProperties(max_row_group_size=ROW_GROUP),
                commit_properties=self._props(refresh),
            )
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .when_not_matched_by_source_delete(scope)
            .execute()
        )
        self._committed(name)
        return True

    def upsert(self, name: str, data: pa.Table, keys: Sequence[str], refresh: int) -> bool:
        """MERGE rows by key: update matched, insert new (nothing deleted)."""
        if self.done(name, refresh):
            return False
        if not self.exists(name):
            return self.write(name, data, refresh)
        on = " AND ".join(f"(t.{k} IS NOT DISTINCT FROM s.{k})" for k in keys)
        (
            self.table(name)
            .merge(data, on, source_alias="s", target_alias="t", commit_properties=self._props(refresh))
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )
        self._committed(name)
        return True

    def set_labels(
        self, name: str, labels: pa.Table, lo: pd.Timestamp, hi: pd.Timestamp, refresh: int
    ) -> dict[str, Any] | None:
        """MERGE labels (`Id`, `label`) into the monitoring rows of [lo, hi): only rows whose label changes
        are rewritten, and files outside the time range are skipped by their statistics."""
        if self.done(name, refresh, "labels"):
            return None
        metrics: dict[str, Any] = (
            self.table(name)
            .merge(
                labels,
                predicate=(f"t.Id = s.Id AND t.timestamp >= {literal(lo)} AND t.timestamp < {literal(hi)}"),
                source_alias="s",
                target_alias="t",
                writer_properties=WriterProperties(max_row_group_size=ROW_GROUP),
                commit_properties=self._props(refresh, "labels"),
            )
            .when_matched_update({"label": "s.label"}, predicate="t.label IS NULL OR t.label <> s.label")
            .execute()
        )
        self._committed(name)
        return metrics


def in_windows(column: str, windows: Sequence[pd.Timestamp], step: pd.Timedelta) -> ds.Expression | None:
    """A filter for rows whose `column` falls in any of `windows` (consecutive windows become one range)."""
    if not len(windows):
        return None
    spans: list[list[pd.Timestamp]] = []
    for w in sorted(set(windows)):
        if spans and spans[-1][1] == w:
            spans[-1][1] = w + step
        else:
            spans.append([w, w + step])
    field = ds.field(column)
    expr: ds.Expression | None = None
    for lo, hi in spans:
        part = (field >= pa.scalar(lo, pa.timestamp("us"))) & (field < pa.scalar(hi, pa.timestamp("us")))
        expr = part if expr is None else expr | part
    return expr
