"""Table stores: read, write and version named tables.

`DeltaTableStore` keeps tables as Delta tables in a local folder (the `deltalake` package, no Spark), with
Change Data Feed on, so the monitor can read only what is new. The Spark / Unity Catalog store implements
the same `TableStore` contract, so stages never know where tables live.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from mlflow.data.delta_dataset_source import DeltaDatasetSource

from marvel.core.catalog import TableSpec
from marvel.core.errors import MarvelError

WriteMode = Literal["overwrite", "append"]
# a table by its catalog spec or, where a config renames it, by name
TableRef = str | TableSpec


class TableStore(ABC):
    """Named, versioned tables."""

    @abstractmethod
    def write(self, name: TableRef, df: pd.DataFrame, mode: WriteMode = "overwrite") -> int:
        """Write `df` to table `name` and return the new table version."""

    @abstractmethod
    def read(self, name: TableRef, version: int | None = None) -> pd.DataFrame:
        """Read table `name` (its latest version unless `version` is given)."""

    @abstractmethod
    def version(self, name: TableRef) -> int | None:
        """The table's current version, or None if it does not exist."""

    @abstractmethod
    def changes(self, name: TableRef, since_version: int) -> pd.DataFrame:
        """Rows inserted after `since_version` (exclusive), from the change data feed."""

    @abstractmethod
    def uri(self, name: TableRef) -> str:
        """Where the table lives, for lineage (a path or a catalog.schema.table name)."""

    def exists(self, name: TableRef) -> bool:
        return self.version(name) is not None

    def dataset_source(self, name: TableRef, version: int) -> DeltaDatasetSource:
        """A table version as an MLflow dataset source (lineage): the Delta table at `uri` and its version."""
        return DeltaDatasetSource(path=self.uri(name), delta_table_version=int(version))

    def ensure_schema(self) -> str | None:
        """Create the namespace tables and models go into, if the store has one (Unity Catalog); return it."""
        return None


class DeltaTableStore(TableStore):
    """Delta tables under a local folder, one sub-folder per table."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def _path(self, name: TableRef) -> Path:
        return self.root / str(name)

    def uri(self, name: TableRef) -> str:
        return str(self._path(name))

    def write(self, name: TableRef, df: pd.DataFrame, mode: WriteMode = "overwrite") -> int:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = pa.Table.from_pandas(df, preserve_index=False)
        exists = self.exists(name)
        write_deltalake(
            str(path),
            data,
            mode=mode,
            # Change Data Feed is set when the table is created, as `delta.enableChangeDataFeed` on Databricks.
            configuration=None if exists else {"delta.enableChangeDataFeed": "true"},
            # overwrite replaces the schema (a new feature set may change the columns); append may add columns
            schema_mode=("overwrite" if mode == "overwrite" else "merge") if exists else None,
        )
        version = self.version(name)
        assert version is not None
        return version

    def read(self, name: TableRef, version: int | None = None) -> pd.DataFrame:
        if not self.exists(name):
            raise MarvelError(
                f"table '{name}' does not exist in {self.root}: run the stage that writes it first "
                "(e.g. python -m marvel stages=[process])"
            )
        table = DeltaTable(str(self._path(name)), version=version)
        return table.to_pandas()

    def version(self, name: TableRef) -> int | None:
        path = self._path(name)
        if not DeltaTable.is_deltatable(str(path)):
            return None
        return DeltaTable(str(path)).version()

    def changes(self, name: TableRef, since_version: int) -> pd.DataFrame:
        current = self.version(name)
        if current is None or current <= since_version:
            return pd.DataFrame()
        reader = DeltaTable(str(self._path(name))).load_cdf(starting_version=since_version + 1)
        df = pa.RecordBatchReader.from_stream(reader).read_all().to_pandas()
        return df[df["_change_type"] == "insert"].drop(
            columns=["_change_type", "_commit_version", "_commit_timestamp"]
        )
