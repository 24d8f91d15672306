"""One SparkSession per process, from the ``env.spark`` block.

On a Databricks cluster the session already exists (``getOrCreate`` returns it); locally ``master: local[2]``
starts one; from a laptop against a workspace (``+env=dev`` without a cluster) Spark must come from
databricks-connect, which we only use when it is installed.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping
from typing import Any

from pyspark.sql import SparkSession

from marvel.core.errors import MarvelError


def on_databricks() -> bool:
    """True inside a Databricks runtime (jobs, notebooks), where Spark and dbutils are provided."""
    return bool(os.environ.get("DATABRICKS_RUNTIME_VERSION"))


def get_spark(settings: Mapping[str, Any] | None = None) -> Any:
    """The process's SparkSession, created on first use with ``master``/``app_name``/``conf`` from settings."""
    settings = dict(settings or {})
    conf: dict[str, Any] = dict(settings.get("conf") or {})
    master = settings.get("master")

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if on_databricks():
        spark = SparkSession.builder.getOrCreate()
    elif master:
        # executors must run this interpreter (the venv), not whatever `python3` is first on PATH
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        builder = SparkSession.builder.master(str(master)).appName(str(settings.get("app_name") or "marvel"))
        for key, value in conf.items():
            builder = builder.config(key, str(value).lower() if isinstance(value, bool) else str(value))
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel(str(settings.get("log_level") or "ERROR"))
        return spark
    else:
        try:
            from databricks.connect import DatabricksSession
        except ImportError:
            raise MarvelError(
                "this env needs Spark on Databricks: run it as a job (databricks bundle run -t <target> ...), "
                "or install databricks-connect to run it from here; dry_run=true shows the plan"
            ) from None
        spark = DatabricksSession.builder.getOrCreate()
    # runtime settings (time zone, Arrow) also apply to a session we did not create
    for key, value in conf.items():
        if key.startswith("spark.sql."):
            # static or cluster-managed settings cannot change at run time; the cluster's then stand
            with contextlib.suppress(Exception):
                spark.conf.set(key, str(value).lower() if isinstance(value, bool) else str(value))
    return spark
