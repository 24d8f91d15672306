"""PySpark's Python worker daemon, started with marvel's modules already imported.

A local Spark executor runs Python tasks in workers that a daemon process (``pyspark.daemon``) forks; each new
worker then imports what the task's pickled functions need (pandas, pyarrow, MLflow, marvel's feature and Spark
code), several seconds of CPU per worker. The local Connect server that marvel starts runs this module as the
daemon (``spark.python.daemon.module``, set in `marvel.spark.session.start_local_server`): the imports happen
once, in the daemon, and every worker forked from it starts with them. Nothing else differs from
``pyspark.daemon``.
"""

from __future__ import annotations

import mlflow.pyfunc
from pyspark import daemon

import marvel.data.synthetic.source
import marvel.databricks.monitor
import marvel.features.marvel
import marvel.spark.compute

# what the tasks of marvel's Spark stages unpickle: their functions (and the models' loaders) live here
PRELOADED = (
    marvel.data.synthetic.source,
    marvel.databricks.monitor,
    marvel.features.marvel,
    marvel.spark.compute,
    mlflow.pyfunc,
)

if __name__ == "__main__":
    daemon.manager()
