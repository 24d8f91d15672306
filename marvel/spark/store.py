"""`SparkTableStore`: the `TableStore` contract through Spark, on Delta tables in both layouts.

- ``catalog`` set (Databricks): Unity Catalog tables ``<catalog>.<schema>.<name>``, created with
  ``delta.enableChangeDataFeed=true`` (and column mapping, because the raw Kaggle columns contain spaces
  and parentheses); the schema is created if missing (``CREATE SCHEMA IF NOT EXISTS``) before the first write.
  Versions, time travel and changes come from Delta itself.
- no ``catalog`` (``+env=spark``): real Delta tables in a local folder ``<root>/<name>/``. Delta's Spark jars
  cannot be fetched here, so the ``deltalake`` package writes them (Change Data Feed on, as in Unity
  Catalog) and Spark reads exactly the data files of the requested version; versions, time travel and the
  change feed are Delta's own. Limits: writes go through the driver as Arrow (the table must fit in its
  memory), and the tables have no column mapping (deltalake cannot write it, and accepts the raw names
  without it).

`read` returns pandas (what the stages use); `frame` returns the Spark DataFrame for Spark-side work.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from mlflow.data.delta_dataset_source import DeltaDatasetSource
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from marvel.core.errors import MarvelError
from marvel.core.tables import TableRef, TableStore, WriteMode
from marvel.spark.session import get_spark

CDF_COLUMNS = ["_change_type", "_commit_version", "_commit_timestamp"]


def arrow_table(df: pd.DataFrame) -> pa.Table:
    """A pandas frame as the Arrow table Spark would make of it: timestamps UTC (the session is UTC),
    categories as strings, all-missing columns as strings (Delta has no null type)."""
    df = df.copy(deep=False)
    df.attrs = {}  # a frame from Spark Connect's toPandas carries plan metrics there, which Arrow cannot keep
    return _delta_types(pa.Table.from_pandas(df, preserve_index=False))


def _delta_types(table: pa.Table) -> pa.Table:
    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_timestamp(t):
            t = pa.timestamp("us", tz="UTC")
        elif pa.types.is_dictionary(t):
            t = t.value_type
        elif pa.types.is_null(t) or pa.types.is_large_string(t):
            t = pa.string()
        fields.append(pa.field(f.name, t, nullable=True))
    return table.cast(pa.schema(fields))


def to_spark(spark: Any, df: Any) -> Any:
    """A Spark DataFrame as is; a pandas frame through Arrow, with explicit types (empty frames too)."""
    if isinstance(df, pd.DataFrame):
        table = arrow_table(df)
        if table.num_rows == 0:  # nothing to infer types from: the Arrow schema says them
            return spark.createDataFrame([], from_arrow_schema(table.schema))
        return spark.createDataFrame(table)
    return df


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class SparkTableStore(TableStore):
    def __init__(
        self,
        catalog: str | None = None,
        schema: str | None = None,
        root: str | None = None,
        format: str = "delta",
        table_properties: Mapping[str, str] | None = None,
        spark: Mapping[str, Any] | None = None,
    ) -> None:
        self.catalog = catalog
        self.schema = schema
        self.format = format
        self.table_properties = dict(table_properties or {})
        self.spark_settings = dict(spark or {})
        if not catalog and not root:
            raise MarvelError(
                "SparkTableStore needs env.catalog (Unity Catalog) or env.store.root (a folder)"
            )
        # with a catalog, tables live in Unity Catalog; `root` (inherited from the local env block) is ignored
        self.root = None if catalog else Path(str(root)).expanduser().resolve()
        self._schema_ready = False

    @property
    def spark(self) -> Any:
        return get_spark(self.spark_settings)

    # -- naming ------------------------------------------------------------------------------------------
    def uri(self, name: TableRef) -> str:
        if self.catalog:
            return f"{self.catalog}.{self.schema}.{name}"
        assert self.root is not None
        return str(self.root / str(name))

    def dataset_source(self, name: TableRef, version: int) -> DeltaDatasetSource:
        if self.catalog:  # a Unity Catalog name and version: the lineage the MLflow UI and UC show
            return DeltaDatasetSource(delta_table_name=self.uri(name), delta_table_version=int(version))
        return DeltaDatasetSource(path=self.uri(name), delta_table_version=int(version))

    def ensure_schema(self) -> str | None:
        """``CREATE SCHEMA IF NOT EXISTS <catalog>.<schema>`` once per store; a missing catalog or a
        schema this identity may not create is one line saying what to do."""
        if not self.catalog:
            return None
        namespace = f"{self.catalog}.{self.schema}"
        if self._schema_ready:
            return namespace
        try:
            self.spark.sql(
                f"CREATE SCHEMA IF NOT EXISTS {_quoted(str(self.catalog))}.{_quoted(str(self.schema))}"
            )
        except Exception as exc:  # the Connect client raises AnalysisException / SparkConnectGrpcException
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise MarvelError(
                f"cannot create schema {namespace} ({first[:200]}): ask a metastore admin to create catalog "
                f"{self.catalog} and grant you USE CATALOG and CREATE SCHEMA on it, or deploy the bundle "
                "(databricks bundle deploy -t <target>), which declares the schema"
            ) from None
        self._schema_ready = True
        return namespace

    # -- the contract --------------------------------------------------------------------------------------
    def write(self, name: TableRef, df: Any, mode: WriteMode = "overwrite") -> int:
        if self.catalog:
            self.ensure_schema()
            self._write_catalog(name, to_spark(self.spark, df), mode)
        else:
            self._write_folder(name, df, mode)
        version = self.version(name)
        assert version is not None
        return version

    def read(self, name: TableRef, version: int | None = None) -> pd.DataFrame:
        return self.frame(name, version).toPandas()

    def frame(self, name: TableRef, version: int | None = None) -> Any:
        """Table `name` (at `version`) as a Spark DataFrame."""
        if not self.exists(name):
            raise MarvelError(
                f"table '{name}' does not exist at {self.uri(name)}: run the stage that writes it first "
                "(e.g. python -m marvel stages=[process])"
            )
        if self.catalog:
            reader = self.spark.read
            if version is not None:
                reader = reader.option("versionAsOf", int(version))
            return reader.table(self.uri(name))
        return self._read_folder(name, version)

    def version(self, name: TableRef) -> int | None:
        if self.catalog:
            if not self.spark.catalog.tableExists(self.uri(name)):
                return None
            return int(self.spark.sql(f"DESCRIBE HISTORY {self.uri(name)} LIMIT 1").first()["version"])
        path = self.uri(name)
        return DeltaTable(path).version() if DeltaTable.is_deltatable(path) else None

    def changes(self, name: TableRef, since_version: int) -> pd.DataFrame:
        current = self.version(name)
        if current is None or current <= since_version:
            return pd.DataFrame()
        if self.catalog:
            cdf = (
                self.spark.read.option("readChangeFeed", "true")
                .option("startingVersion", since_version + 1)
                .table(self.uri(name))
            )
            return cdf.filter(F.col("_change_type") == "insert").drop(*CDF_COLUMNS).toPandas()
        reader = DeltaTable(self.uri(name)).load_cdf(starting_version=since_version + 1)
        df = pa.RecordBatchReader.from_stream(reader).read_all().to_pandas()
        df = df[df["_change_type"] == "insert"].drop(columns=CDF_COLUMNS).reset_index(drop=True)
        for col in df.columns:  # as Spark's toPandas gives them: naive UTC
            if isinstance(df[col].dtype, pd.DatetimeTZDtype):
                df[col] = df[col].dt.tz_convert("UTC").dt.tz_localize(None)
        return df

    # -- Unity Catalog / Delta ---------------------------------------------------------------------------
    def _write_catalog(self, name: TableRef, sdf: Any, mode: WriteMode) -> None:
        full = self.uri(name)
        if not self.spark.catalog.tableExists(full):
            # table properties (Change Data Feed, column mapping) must be set when the table is created
            writer = sdf.writeTo(full).using(self.format)
            for key, value in self.table_properties.items():
                writer = writer.tableProperty(key, str(value))
            writer.create()
            return
        writer = sdf.write.format(self.format).mode(mode)
        if mode == "overwrite":
            writer = writer.option("overwriteSchema", "true")  # a new feature set may change the columns
        else:
            writer = writer.option("mergeSchema", "true")
        writer.saveAsTable(full)

    # -- local folder: Delta tables written by deltalake, read by Spark ---------------------------------
    def _write_folder(self, name: TableRef, df: Any, mode: WriteMode) -> None:
        path = self.uri(name)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        data = arrow_table(df) if isinstance(df, pd.DataFrame) else _delta_types(df.toArrow())
        exists = DeltaTable.is_deltatable(path)
        write_deltalake(
            path,
            data,
            mode=mode,
            # Change Data Feed is a creation-time property, as `delta.enableChangeDataFeed` in Unity Catalog
            configuration=None if exists else {"delta.enableChangeDataFeed": "true", **self.table_properties},
            # overwrite replaces the schema (a new feature set may change the columns); append may add columns
            schema_mode=("overwrite" if mode == "overwrite" else "merge") if exists else None,
        )

    def _read_folder(self, name: TableRef, version: int | None) -> Any:
        path = self.uri(name)
        try:
            table = DeltaTable(path, version=version)
        except Exception:  # deltalake raises its own error types for a version that is not in the log
            latest = DeltaTable(path).version()
            raise MarvelError(f"table '{name}' has no version {version} (versions 0..{latest})") from None
        schema = pa.schema(table.schema().to_arrow())
        columns = [_quoted(f.name) for f in schema]
        files = table.file_uris()
        if not files:
            empty = _delta_types(pa.Table.from_batches([], schema=schema))
            return self.spark.createDataFrame([], from_arrow_schema(empty.schema))
        # exactly the files of this version; older files may lack columns added since (null there)
        return self.spark.read.option("mergeSchema", "true").parquet(*files).select(*columns)
