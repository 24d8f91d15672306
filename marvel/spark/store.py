"""`SparkTableStore`: the `TableStore` contract through Spark.

Two layouts, chosen by config:

- ``catalog`` set (Databricks): Unity Catalog tables ``<catalog>.<schema>.<name>`` in Delta format, created
  with ``delta.enableChangeDataFeed=true`` (and column mapping, because the raw Kaggle columns contain spaces
  and parentheses); versions, time travel and changes come from Delta itself.
- no ``catalog`` (``+env=spark``): a local warehouse folder ``<root>/<name>/``. The Delta jars cannot be
  fetched here, so the format is configurable (``parquet`` by default) and versions are kept by a small log
  (``_marvel_log.json``): every write is a new immutable part folder and every version lists the parts that
  make up the table, so reads by version and "rows inserted since version N" work as with Delta.

`read` returns pandas (what the stages use); `frame` returns the Spark DataFrame for Spark-side work.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from marvel.core.errors import MarvelError
from marvel.core.tables import TableRef, TableStore, WriteMode
from marvel.spark.session import get_spark

LOG_FILE = "_marvel_log.json"
CDF_COLUMNS = ["_change_type", "_commit_version", "_commit_timestamp"]


def to_spark(spark: Any, df: Any) -> Any:
    """A Spark DataFrame as is; a pandas frame through Arrow (timestamps are naive UTC, the session is UTC)."""
    if isinstance(df, pd.DataFrame):
        if df.empty:
            # Arrow cannot infer types of an empty object column; the pandas dtypes say enough
            from pyspark.sql import types as T

            mapping = {"int64": T.LongType(), "float64": T.DoubleType(), "bool": T.BooleanType()}
            schema = T.StructType(
                [
                    T.StructField(
                        c,
                        mapping.get(str(t), T.TimestampType() if "datetime" in str(t) else T.StringType()),
                    )
                    for c, t in df.dtypes.items()
                ]
            )
            return spark.createDataFrame([], schema)
        return spark.createDataFrame(df)
    return df


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

    @property
    def spark(self) -> Any:
        return get_spark(self.spark_settings)

    # -- naming ------------------------------------------------------------------------------------------
    def uri(self, name: TableRef) -> str:
        if self.catalog:
            return f"{self.catalog}.{self.schema}.{name}"
        assert self.root is not None
        return str(self.root / str(name))

    # -- the contract --------------------------------------------------------------------------------------
    def write(self, name: TableRef, df: Any, mode: WriteMode = "overwrite") -> int:
        sdf = to_spark(self.spark, df)
        if self.catalog:
            self._write_catalog(name, sdf, mode)
        else:
            self._write_folder(name, sdf, mode)
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
        log = self._log(name)
        entry = log[-1] if version is None else next((e for e in log if e["version"] == version), None)
        if entry is None:
            raise MarvelError(f"table '{name}' has no version {version} (versions 0..{log[-1]['version']})")
        return self._load_parts(name, entry["parts"])

    def version(self, name: TableRef) -> int | None:
        if self.catalog:
            if not self.spark.catalog.tableExists(self.uri(name)):
                return None
            return int(self.spark.sql(f"DESCRIBE HISTORY {self.uri(name)} LIMIT 1").first()["version"])
        log = self._log(name)
        return int(log[-1]["version"]) if log else None

    def changes(self, name: TableRef, since_version: int) -> pd.DataFrame:
        current = self.version(name)
        if current is None or current <= since_version:
            return pd.DataFrame()
        if self.catalog:
            from pyspark.sql import functions as F

            cdf = (
                self.spark.read.option("readChangeFeed", "true")
                .option("startingVersion", since_version + 1)
                .table(self.uri(name))
            )
            return cdf.filter(F.col("_change_type") == "insert").drop(*CDF_COLUMNS).toPandas()
        # each version's new part holds exactly the rows that version inserted (an overwrite inserts all)
        new_parts = [e["parts"][-1] for e in self._log(name) if e["version"] > since_version]
        return self._load_parts(name, new_parts).toPandas()

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

    # -- local folder with a version log -----------------------------------------------------------------
    def _log_path(self, name: TableRef) -> Path:
        assert self.root is not None
        return self.root / str(name) / LOG_FILE

    def _log(self, name: TableRef) -> list[dict[str, Any]]:
        path = self._log_path(name)
        return json.loads(path.read_text())["versions"] if path.is_file() else []

    def _write_folder(self, name: TableRef, sdf: Any, mode: WriteMode) -> None:
        log = self._log(name)
        version = int(log[-1]["version"]) + 1 if log else 0
        part = f"v{version:06d}"
        path = self._log_path(name).parent / part
        sdf.write.format(self.format).mode("overwrite").save(str(path))
        parts = [part] if (mode == "overwrite" or not log) else [*log[-1]["parts"], part]
        log.append(
            {"version": version, "mode": mode, "parts": parts, "at": pd.Timestamp.now(tz="UTC").isoformat()}
        )
        # the log is replaced atomically, so a reader never sees a version whose part is half written
        tmp = self._log_path(name).with_suffix(".tmp")
        tmp.write_text(json.dumps({"format": self.format, "versions": log}, indent=1))
        os.replace(tmp, self._log_path(name))

    def _load_parts(self, name: TableRef, parts: list[str]) -> Any:
        folder = self._log_path(name).parent
        return (
            self.spark.read.format(self.format)
            .option("mergeSchema", "true")
            .load([str(folder / p) for p in parts])
        )
