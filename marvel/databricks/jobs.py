"""Job task values: how one task of a Databricks job tells the next what happened."""

from __future__ import annotations

import logging
from typing import Any

from marvel.spark.session import get_spark, on_databricks

log = logging.getLogger(__name__)


def _dbutils() -> Any:
    """dbutils of the running Databricks job (only importable on a cluster)."""
    # only a Databricks runtime has pyspark.dbutils: imported here, where it is known to be one
    from pyspark.dbutils import DBUtils

    return DBUtils(get_spark())


def set_task_value(key: str, value: Any) -> bool:
    """Set task value `key` (read downstream as ``{{tasks.<task>.values.<key>}}``); False when not in a job."""
    if not on_databricks():
        log.info("task value %s=%s not set: not running on Databricks", key, value)
        return False
    _dbutils().jobs.taskValues.set(key=key, value=value)
    log.info("task value %s=%s", key, value)
    return True
