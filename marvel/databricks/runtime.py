"""Where this process runs, asked without importing Spark or the SDK (a dry run needs neither)."""

from __future__ import annotations

import importlib.util
import os


def on_databricks() -> bool:
    """True inside a Databricks runtime (jobs, notebooks), where Spark and dbutils are provided."""
    return bool(os.environ.get("DATABRICKS_RUNTIME_VERSION"))


def has_databricks_connect() -> bool:
    """databricks-connect is installed (Spark against a workspace from a laptop)."""
    try:
        return importlib.util.find_spec("databricks.connect") is not None
    except ModuleNotFoundError:
        return False
