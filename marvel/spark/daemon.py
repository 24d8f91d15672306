"""PySpark's Python worker daemon, started with marvel's modules already imported.

A local Spark executor runs Python tasks in workers that a daemon process (``pyspark.daemon``) forks; each new
worker then imports what the task's pickled functions need (pandas, pyarrow, MLflow, marvel's feature and Spark
code), several seconds of CPU per worker. The local Connect server that marvel starts runs this module as the
daemon (``spark.python.daemon.module``, set in `marvel.spark.session.start_local_server`): the imports happen
once, in the daemon, and every worker forked from it starts with them. Nothing else differs from
``pyspark.daemon``.
"""

from __future__ import annotations

# imported for the workers forked from here: the functions (and the models' loaders) that the tasks of
# marvel's Spark stages unpickle live in these modules
import mlflow.pyfunc  # noqa: F401
from pyspark import daemon

import marvel.data.synthetic.source
import marvel.databricks.gateway
import marvel.features.marvel
import marvel.spark.compute  # noqa: F401

if __name__ == "__main__":
    daemon.manager()
