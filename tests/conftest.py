"""Shared fixtures: an isolated MARVEL_HOME per test, in-process runs from the real config, the real sample."""

from __future__ import annotations

import copy
import functools
import gc
import logging
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hydra import compose, initialize_config_dir
from hypothesis import settings
from omegaconf import DictConfig
from processes import forked_marvel
from xdist.scheduler import LoadScopeScheduling

from marvel.cli.main import main
from marvel.core.config import CONFIG_DIR

if TYPE_CHECKING:
    from marvel.core.results import RunResult


def run(cfg: DictConfig, out_dir: Path, overrides: Sequence[str] = ()) -> RunResult:
    """The engine's `run`, imported on first use: xdist's controller process imports this conftest too but runs
    no test, and the engine's imports (MLflow, scikit-learn) would add ~3 s to the start of every run."""
    from marvel.core.engine import run as engine_run

    return engine_run(cfg, out_dir=out_dir, overrides=overrides)


REPO = Path(__file__).resolve().parents[1]

# CI sees the same examples on every run (a failure there is a real regression, not a lucky draw, and is
# reproducible); locally hypothesis explores new examples each run and remembers failures.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
# The longest test files, longest first: they go out before the rest, so that no worker starts a long file
# while the other is about to finish (pytest-xdist's `xdist_group` mark does nothing under pytest 9.2: it renames
# `item._nodeid`, which pytest no longer reads; so the grouping is done here). test_spark.py must stay on one
# worker in any case: one local Spark Connect server (a JVM) per test session.
LONGEST_FIRST = ["tests/test_monitoring_crash.py", "tests/test_spark.py"]


class Scheduling(LoadScopeScheduling):
    """Each test file is one unit of work (its module fixtures, such as a served endpoint or a set of lakes,
    are then built once, not once per worker); the files in LONGEST_FIRST go out first."""

    def _split_scope(self, nodeid: str) -> str:
        return nodeid.split("::", 1)[0]

    def schedule(self) -> None:
        if self.collection is None and self.registered_collections:  # the first call builds the queue
            collected = {n.split("::", 1)[0] for n in next(iter(self.registered_collections.values()))}
            for scope in LONGEST_FIRST:
                if scope in collected:
                    self.workqueue[scope] = {}  # its place at the head of the queue; schedule() fills it
        super().schedule()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Every test module and what it imports are loaded: frozen out of the collector's sight (see warm.py)."""
    gc.freeze()


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> Scheduling:
    return Scheduling(config, log)


# A test whose body takes longer than ~1.5 s alone on a quiet machine is marked slow: `-m "not slow"` is the fast
# loop (CONTRIBUTING.md). The end of each run lists unmarked tests whose body took longer than SLOW_AFTER here:
# a hint to mark or speed them up, not a check (a loaded machine inflates every time).
SLOW_AFTER = 3.0
_call_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and "slow" not in report.keywords:
        _call_seconds[report.nodeid] = report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    over = sorted(((s, n) for n, s in _call_seconds.items() if s > SLOW_AFTER), reverse=True)
    if over:
        terminalreporter.section(
            f"unmarked tests slower than {SLOW_AFTER:g} s: mark them slow or speed them up"
        )
        for seconds, nodeid in over:
            terminalreporter.write_line(f"{seconds:6.1f} s  {nodeid}")


# Small, fast defaults for tests: the behaviour is the same, the numbers of rows and trees are not.
FAST = ["data.n_rows=2000", "model.params.n_estimators=60"]


def real_data_path() -> Path | None:
    env = os.environ.get("MARVEL_REAL_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data" / "marvel_sample.csv")
    return next((p.resolve() for p in candidates if p.is_file()), None)


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections for the whole test: bound, so nothing else takes it, and
    never listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@pytest.fixture(autouse=True)
def _no_mlflow_uri_from_an_earlier_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """`mlflow.set_tracking_uri`/`set_registry_uri` also export MLFLOW_TRACKING_URI/MLFLOW_REGISTRY_URI (for
    child processes). Each test starts without them, and they are put back as they were when it ends: an
    in-process run's URIs no longer reach a later test's `mlflow models serve` (which then looked its model up
    in another test's registry, and after that home was deleted, in an empty one)."""
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def real_data() -> Path:
    path = real_data_path()
    if path is None:
        pytest.skip("needs the real Kaggle sample: set MARVEL_REAL_DATA (neither it nor the file was found)")
    return path


@pytest.fixture
def marvel_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "marvel_home"
    monkeypatch.setenv("MARVEL_HOME", str(home))
    monkeypatch.delenv("MARVEL_SERVING_TOKEN", raising=False)
    return home


def make_config(home: Path, overrides: list[str]) -> DictConfig:
    """The config `python -m marvel *overrides` composes, with its paths under `home`."""
    if any(o.lstrip("+~").startswith("paths.") for o in overrides):
        return _compose((f"paths.root={home}", f"paths.outputs={home}/out", *overrides))
    # Hydra composes the same overrides identically whatever the home (the paths are plain values, and what
    # refers to them interpolates at use): compose once per set of overrides (~0.2 s, dozens of runs share one)
    cfg = copy.deepcopy(_composed(tuple(overrides)))
    cfg.paths.root, cfg.paths.outputs = str(home), f"{home}/out"
    return cfg


@functools.lru_cache(maxsize=64)
def _composed(overrides: tuple[str, ...]) -> DictConfig:
    return _compose(("paths.root=/unset", "paths.outputs=/unset/out", *overrides))


def _compose(overrides: tuple[str, ...]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@pytest.fixture(scope="session")
def mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow database, created and migrated by MLflow itself once per worker. A new database costs
    ~1.5 s of Alembic migrations; homes that run marvel start from a copy, as a home whose database MLflow made
    on an earlier day. (The CLI error tests, which check that no database is made, and the cold CLI smoke test,
    which makes its own, start without one.)"""
    from mlflow import MlflowClient  # here, not at the top: the xdist controller imports this file too

    path = tmp_path_factory.mktemp("mlflow_db") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


def with_mlflow_db(home: Path, template: Path) -> Path:
    """`home` with a copy of the migrated, empty database, unless it has a database already."""
    if not (home / "mlflow.db").exists():
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, home / "mlflow.db")
    return home


@pytest.fixture
def run_marvel(marvel_home: Path, mlflow_db: Path) -> Callable[..., RunResult]:
    """Run the engine in-process on the real config with overrides; returns the stage results."""

    def _run(*overrides: str, fast: bool = True) -> RunResult:
        with_mlflow_db(marvel_home, mlflow_db)
        cfg = make_config(marvel_home, [*(FAST if fast else []), *overrides])
        return run(cfg, out_dir=marvel_home / "out", overrides=overrides)

    return _run


# MLflow's SQLite store keeps absolute artifact locations; a copied home must point at its own copy
_PATH_COLUMNS = {
    "experiments": ["artifact_location"],
    "runs": ["artifact_uri"],
    "model_versions": ["source", "storage_location"],
    "logged_models": ["artifact_location"],
    "datasets": ["dataset_source"],
}


def clone_home(src: Path, dst: Path) -> Path:
    """Copy a MARVEL_HOME (lake, MLflow database and artifacts) so that the copy is self-contained."""
    shutil.copytree(src, dst)
    with sqlite3.connect(dst / "mlflow.db") as db:
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
        for table, columns in _PATH_COLUMNS.items():
            if table not in tables:
                continue
            present = {r[1] for r in db.execute(f"pragma table_info({table})")}
            for col in columns:
                if col in present:
                    db.execute(f"update {table} set {col} = replace({col}, ?, ?)", (str(src), str(dst)))
    return dst


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory: pytest.TempPathFactory, mlflow_db: Path) -> Path:
    """A MARVEL_HOME where the default lifecycle (process, train; FAST sizes) ran once for the whole session:
    tables, MLflow runs and v1 of both models at alias latest-model. Never use it directly: `trained` copies it."""
    home = with_mlflow_db(tmp_path_factory.mktemp("trained") / "marvel_home", mlflow_db)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MARVEL_HOME", str(home))
        mp.delenv("MARVEL_SERVING_TOKEN", raising=False)
        run(make_config(home, FAST), out_dir=home / "out")
    return home


@pytest.fixture
def trained(trained_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own copy of `trained_home`, as MARVEL_HOME (what `run_marvel` then runs in)."""
    home = clone_home(trained_home, tmp_path / "marvel_home")
    monkeypatch.setenv("MARVEL_HOME", str(home))
    monkeypatch.delenv("MARVEL_SERVING_TOKEN", raising=False)
    return home


@pytest.fixture
def cli(
    marvel_home: Path, tmp_path: Path, mlflow_db: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`python -m marvel ...` in its own process, forked from a warm interpreter (`processes.forked_marvel`)."""

    def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        with_mlflow_db(marvel_home, mlflow_db)
        env = {**os.environ, "MARVEL_HOME": str(marvel_home)}
        env.pop("HYDRA_FULL_ERROR", None)
        return forked_marvel(list(args), cwd=REPO, env=env, logs=tmp_path / "cli", timeout=timeout)

    return _cli


@pytest.fixture
def cold_cli(marvel_home: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`python -m marvel ...` exactly as a user runs it: a new interpreter that imports everything."""

    def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "MARVEL_HOME": str(marvel_home)}
        env.pop("HYDRA_FULL_ERROR", None)
        return subprocess.run(
            [sys.executable, "-m", "marvel", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return _cli


@dataclass
class Invocation:
    """What `python -m marvel` did: exit code and output (as subprocess.CompletedProcess names them)."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def marvel_main(
    marvel_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Invocation]:
    """`python -m marvel ...` in this process: `marvel.cli.main.main()` with a patched argv."""

    def _main(*args: str) -> Invocation:
        monkeypatch.setattr(sys, "argv", ["marvel", *args])
        monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
        capsys.readouterr()
        code = 0
        # Hydra points the root logger at the run's log file; a process ends there, this one goes on: put the
        # root logger back, or later log lines go to a file in a tmp_path already deleted
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            for handler in root.handlers[:]:
                if handler not in handlers:
                    root.removeHandler(handler)
                    handler.close()
            for handler in handlers:
                if handler not in root.handlers:
                    root.addHandler(handler)
            root.setLevel(level)
        out = capsys.readouterr()
        return Invocation(code, out.out, out.err)

    return _main


@pytest.fixture(scope="session")
def session_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("session")
