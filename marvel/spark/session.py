"""One Spark Connect session per process, from the ``env.spark`` block.

Spark here is always Spark Connect, what serverless jobs and databricks-connect give: no RDD API, no
Spark context, no persist or cache. Where the session comes from:

- inside a Databricks runtime (a job or notebook): the runtime's own session;
- PySpark's ``SPARK_REMOTE`` when set (``local[2]`` or ``sc://host:port``), else ``env.spark.remote``:
  ``local[N]`` starts pyspark's local Connect server in this process (on a free port, so several runs on one
  machine never meet), ``sc://...`` connects to a running server;
- no remote (``+env=dev|acc|prd`` on a laptop): databricks-connect, when it is installed.

No classic (non-Connect) session is offered: nothing in marvel needs one, and code that only works on a
classic session would fail on serverless.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Mapping
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.connect.session import SparkSession as ConnectSession

from marvel.core.errors import MarvelError
from marvel.core.net import address, unreachable
from marvel.databricks.runtime import on_databricks

LAPTOP_NEEDS = (
    "this env runs its Spark work on Databricks: run it as a job (databricks bundle run -t <target> "
    "deployment), or pip install databricks-connect (matching the cluster's runtime) with the marvel "
    "wheel installed on that cluster; dry_run=true shows the plan without either"
)

_session: Any = None  # the Connect session this process made (or was handed)
_local_url: str | None = None  # the sc:// URL of the local Connect server this process started


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def start_local_server(master: str, conf: Mapping[str, Any]) -> str:
    """Start pyspark's local Spark Connect server (a JVM in this process) and return its ``sc://`` URL.

    PySpark's own ``remote("local[N]")`` always binds port 15002, which another run on the machine may hold;
    here the port is a free one and the URL carries it. The server's token is in
    ``SPARK_CONNECT_AUTHENTICATE_TOKEN`` (read by every Connect client of this process and its children).
    """
    # executors must run this interpreter (the venv), not whatever `python3` is first on PATH
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    port = _free_port()
    opts = {k: _text(v) for k, v in conf.items()}
    opts["spark.connect.grpc.binding.port"] = str(port)
    # its Python workers fork from a daemon that imported marvel, pandas and MLflow once (this interpreter
    # has them), instead of each worker importing them again (marvel/spark/daemon.py)
    opts.setdefault("spark.python.daemon.module", "marvel.spark.daemon")
    os.environ["SPARK_LOCAL_REMOTE"] = "1"  # what pyspark sets for a local server: stop() then stops it
    ConnectSession._start_connect_server(master, opts)
    global _local_url
    _local_url = f"sc://localhost:{port}"
    return _local_url


def local_url() -> str | None:
    """The ``sc://`` URL of the local Connect server this process started (for ``SPARK_REMOTE`` of child
    processes, which then share it instead of starting a JVM of their own); None if it started none."""
    return _local_url


def answers(url: str, timeout: float = 10.0) -> None:
    """Raise `MarvelError` unless something listens where the ``sc://`` URL points.

    The Connect client retries a refused connection with backoff for many minutes, silently, on every call;
    a server that is not there is the user's to fix, and is said at once. Only host and port are printed: the
    rest of the URL may hold a token.
    """
    host, port = address(url)
    why = unreachable(host, port, timeout)
    if why is not None:
        raise MarvelError(
            f"no Spark Connect server answers at {host}:{port} ({why}): start it, or point "
            "SPARK_REMOTE (or env.spark.remote) at one; local[2] starts one in this process"
        )


def remote_url(settings: Mapping[str, Any]) -> str | None:
    """Where Spark is: PySpark's ``SPARK_REMOTE`` first, then the config's ``remote``; None for neither."""
    url = os.environ.get("SPARK_REMOTE") or settings.get("remote")
    return str(url) if url else None


def get_spark(settings: Mapping[str, Any] | None = None) -> Any:
    """The process's Spark Connect session, created on first use from settings (see the module doc)."""
    global _session
    settings = dict(settings or {})
    conf: dict[str, Any] = dict(settings.get("conf") or {})
    if _session is not None and not _session.is_stopped:
        return _session
    spark: Any
    if on_databricks():
        spark = SparkSession.builder.getOrCreate()
    else:
        url = remote_url(settings)
        if url is None:
            spark = _databricks_connect()
        else:
            if url.startswith("local"):
                conf.setdefault("spark.app.name", settings.get("app_name") or "marvel")
                url = start_local_server(url, conf)
            else:
                answers(url)
            # pyspark.sql.functions then builds Connect columns, as under PySpark's own remote()
            os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"
            spark = ConnectSession.builder.remote(url).getOrCreate()
    # runtime settings (time zone, Arrow) apply to this session, also one we did not create; static or
    # cluster-managed ones cannot change at run time (and are not tried: the server would log an error)
    for key, value in conf.items():
        with contextlib.suppress(Exception):
            if key.startswith("spark.sql.") and spark.conf.isModifiable(key):
                spark.conf.set(key, _text(value))
    _session = spark
    return spark


def use_session(spark: Any) -> None:
    """Make `spark` the process's session (tests hand in the one they started)."""
    global _session
    _session = spark


def _databricks_connect() -> Any:
    try:
        from databricks.connect import DatabricksSession
    except ImportError:
        raise MarvelError(LAPTOP_NEEDS) from None
    return DatabricksSession.builder.getOrCreate()
