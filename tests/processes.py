"""`python -m marvel ...` as a real OS process that starts in milliseconds instead of seconds.

A fresh interpreter spends ~5 s importing MLflow, pandas, scikit-learn and the stages before it reads its first
override; the fault tests start dozens of processes only to `kill -9` them. `Marvel` runs the CLI's own
`main()` in a process forked from a warm interpreter (multiprocessing's forkserver, with marvel's modules
preloaded; one per pytest worker). The child is a separate process with its own pid, argv, environment, working
directory and output file; SIGKILL kills it like any other, SIGTERM reaches the handlers it installs, and at
its end non-daemon threads are joined and threading's and atexit's hooks run, as in `python -m marvel`. What differs from a cold start is only that the modules were imported
before the fork. `tests/test_cli.py` keeps a smoke test that starts a cold `python -m marvel`.
"""

from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.connection
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import warm  # noqa: F401 - pytest's workers too (tests/warm.py)

PRELOAD = [
    "marvel.cli.main",
    "marvel.core.engine",
    *(f"marvel.stages.{stage}" for stage in ("process", "train", "score", "deploy", "simulate", "monitor")),
    "marvel.training.sweep",
    "marvel.monitoring.refresh",
    "marvel.serving.app",
    "marvel.serving.workers",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "deltalake",
    "uvicorn",
    # imported on first use by every run (found with py-spy over the crash tests' children): the config check
    # imports each `_target_`, pandera registers its pandas checks, MLflow reads the git commit and ends traces
    "marvel.databricks.deployer",
    "lightgbm",
    "pandera.backends.pandas.builtin_checks",
    "git",
    "mlflow.tracing.processor.base_mlflow",
    "pytest",  # the child re-runs the parent's __main__ (the pytest script) as __mp_main__
    "warm",  # last: the heap imported by now is frozen out of the garbage collector (tests/warm.py)
]

# a process from WARM starts with marvel, MLflow and pandas imported (tests that need their own worker
# processes, not a CLI, take it too)
WARM = multiprocessing.get_context("forkserver")
WARM.set_forkserver_preload(PRELOAD)


def _cli(args: list[str], env: dict[str, str], cwd: str, output: str, errors: str) -> None:
    """The child: what `python -m marvel *args` does, with Popen's env, cwd, stdout and stderr (files)."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    for path, target in ((output, 1), (errors, 2)):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(fd, target)
        os.close(fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - the process's own stdout
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.argv = ["marvel", *args]
    from marvel.cli.main import main

    code: object = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        # what the interpreter does at exit, which a multiprocessing child skips: join non-daemon threads and
        # run threading's exit hooks (joblib's loky shuts its workers down there), then the atexit handlers
        threading._shutdown()  # type: ignore[attr-defined]
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    if code is None:
        code = 0
    if not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    os._exit(code)


class Marvel:
    """`python -m marvel *args` started in a forked process; Popen's methods, output in a file (stderr too,
    unless `errors` names another)."""

    def __init__(
        self, args: list[str], *, env: dict[str, str], cwd: Path, output: Path, errors: Path | None = None
    ) -> None:
        self.output = output
        self.errors = errors or output
        for path in {output, self.errors}:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        self._proc = WARM.Process(
            target=_cli, args=(args, env, str(cwd), str(output), str(self.errors)), daemon=False
        )
        self._proc.start()
        assert self._proc.pid is not None
        self.pid: int = self._proc.pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and not self._proc.is_alive():
            self.returncode = self._proc.exitcode
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._proc.join(timeout)
        code = self.poll()
        if code is None:
            raise TimeoutError(f"marvel pid {self.pid} still running after {timeout}s")
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def exited(self) -> bool:
        """Whether the process has ended; safe from another thread (it only looks at the sentinel)."""
        return bool(multiprocessing.connection.wait([self._proc.sentinel], timeout=0))

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def lines(self, poll: float = 0.05) -> Iterator[str]:
        """The output's lines as they are written, until the process has ended and all is read."""
        with self.output.open(errors="replace") as f:
            pending = ""
            while True:
                ended = self.exited()
                chunk = f.read()
                if chunk:
                    pending += chunk
                    *complete, pending = pending.split("\n")
                    for line in complete:
                        yield line + "\n"
                    continue
                if ended:
                    if pending:
                        yield pending
                    return
                time.sleep(poll)


def forked_marvel(
    args: list[str], *, env: dict[str, str], cwd: Path, logs: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`subprocess.run([python, -m, marvel, *args], capture_output=True, text=True)`, forked warm."""
    logs.mkdir(parents=True, exist_ok=True)
    n = len(list(logs.glob("*.out")))
    proc = Marvel(args, env=env, cwd=cwd, output=logs / f"{n}.out", errors=logs / f"{n}.err")
    try:
        code = proc.wait(timeout)
    except TimeoutError:  # as subprocess.run does: no process outlives its call
        proc.kill()
        proc.wait(30)
        raise subprocess.TimeoutExpired(["python", "-m", "marvel", *args], timeout, proc.text()) from None
    return subprocess.CompletedProcess(
        ["python", "-m", "marvel", *args], code, proc.output.read_text(), proc.errors.read_text()
    )


def wait_for(what: str, done: Callable[[], bool], timeout: float = 120) -> None:
    """Until `done()`: the moment a fault is injected is a state reached, not a time slept (on a loaded
    machine a fixed sleep may come too early, on a quiet one it wastes seconds)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"not reached in {timeout} s: {what}"
        time.sleep(0.02)
