"""Job task values: how one task of a Databricks job tells the next what happened.

Set through ``databricks.sdk.runtime.dbutils``: inside a Databricks runtime (serverless jobs included) that
is the runtime's own dbutils; ``pyspark.dbutils.DBUtils(spark)`` has no working ``jobs.taskValues`` on
serverless, where there is no notebook dbutils behind it.
"""

from __future__ import annotations

import logging
from typing import Any

from marvel.databricks.runtime import on_databricks

log = logging.getLogger(__name__)


def _dbutils() -> Any:
    # imported here, not at the top: importing databricks.sdk.runtime builds a dbutils (with a workspace
    # config) and, where databricks-connect is installed, a Spark session; only a job needs it
    from databricks.sdk.runtime import dbutils

    return dbutils


def set_task_value(key: str, value: Any) -> bool:
    """Set task value `key` (read downstream as ``{{tasks.<task>.values.<key>}}``); False when not in a job."""
    if not on_databricks():
        log.info("task value %s=%s not set: not running on Databricks", key, value)
        return False
    _dbutils().jobs.taskValues.set(key=key, value=value)
    log.info("task value %s=%s", key, value)
    return True
