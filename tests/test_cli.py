"""`python -m marvel` as a user runs it: user errors exit non-zero with one line that says what to do.

The error cases run `marvel.cli.main.main()` in this process with a patched argv (what `python -m marvel`
calls); one real subprocess run checks the whole thing end to end.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import Invocation, with_mlflow_db

from marvel.core.errors import one_line


def _one_line_error(proc: Invocation) -> str:
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_missing_csv_says_how_to_get_it(marvel_main, tmp_path: Path) -> None:
    line = _one_line_error(marvel_main("data=kaggle", f"data.path={tmp_path}/nope.csv"))
    assert "not found" in line
    assert "data/README.md" in line


def test_empty_csv(marvel_main, tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    assert "empty" in _one_line_error(marvel_main("data=kaggle", f"data.path={tmp_path}/empty.csv"))


def test_wrong_columns(marvel_main, tmp_path: Path) -> None:
    (tmp_path / "wrong.csv").write_text("a,b\n1,2\n")
    line = _one_line_error(marvel_main("data=kaggle", f"data.path={tmp_path}/wrong.csv"))
    assert "PageID" in line
    assert "Kaggle" in line


@pytest.mark.slow
def test_unparseable_numbers_everywhere(
    marvel_main, marvel_home: Path, mlflow_db: Path, tmp_path: Path
) -> None:
    # the run opens MLflow before it reads the file: a home that has a database, as a user's would
    with_mlflow_db(marvel_home, mlflow_db)
    header = ",PageID,Name,Universe,URL,Identity,Gender,Alive,Marital Status,Teams,Height (m),Weight (kg),Origin,Creators"
    rows = [f"{i},P{i},N,Earth-616,u,Public,Male,Alive,Single,,tall,heavy,Human," for i in range(20)]
    (tmp_path / "bad.csv").write_text("\n".join([header, *rows]) + "\n")
    line = _one_line_error(marvel_main("data=kaggle", f"data.path={tmp_path}/bad.csv"))
    assert "quarantine" in line


# a scikit-learn estimator as it is, which cannot take the processor's pandas categoricals
FOREST = [
    "model=logistic",
    "model.estimator._target_=sklearn.ensemble.RandomForestClassifier",
    "~model.params.C",
    "~model.params.max_iter",
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        (
            ["model.params.n_estimators=-5"],
            "LGBMClassifier refused to fit: ValueError: Number of boosting rounds",
        ),
        (FOREST, "RandomForestClassifier refused to fit: ValueError: could not convert string to float"),
        ([*FOREST, "train.mode=cv"], "RandomForestClassifier refused to fit: ValueError: could not convert"),
    ],
    ids=["lightgbm-params", "forest", "forest-cv"],
)
def test_an_estimator_refusing_its_config_is_one_line(
    marvel_main, marvel_home: Path, mlflow_db: Path, overrides: list[str], said: str
) -> None:
    """The schema lets these through (the values have the right types); the estimator's own fit refuses them.
    That is the config's to fix: one line naming the estimator and what it said, and the run is FAILED."""
    with_mlflow_db(marvel_home, mlflow_db)
    line = _one_line_error(marvel_main("stages=[process,train]", "data.n_rows=600", *overrides))
    assert said in line
    assert "check model.params" in line
    assert "docs/architecture.md" in line
    with sqlite3.connect(marvel_home / "mlflow.db") as db:
        assert {r[0] for r in db.execute("select status from runs")} == {"FAILED"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        (["data.n_rows=10", "split.test_size=0.5", "stages=[process]"], "cannot split 10 valid rows ("),
        (
            ["data.n_rows=30", "train.mode=cv", "cv.folds=20"],
            "cv.folds=20 needs at least 20 training rows of",
        ),
    ],
    ids=["split", "cv-folds"],
)
def test_too_few_rows_for_the_split_or_the_folds_is_one_line(
    marvel_main, marvel_home: Path, mlflow_db: Path, overrides: list[str], said: str
) -> None:
    """sklearn refuses (or, for folds, warns and scores nan): the line says which setting and what to change."""
    with_mlflow_db(marvel_home, mlflow_db)
    line = _one_line_error(marvel_main(*overrides))
    assert said in line
    assert "use more rows" in line


@pytest.mark.slow
def test_a_spark_server_that_is_not_there_is_one_line_at_once(
    cli, refused_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Connect client would retry a refused connection, silently, for many minutes; the token in the URL
    is not printed. Its own process: this worker may already hold the Spark tests' session."""
    port = refused_port
    monkeypatch.setenv("SPARK_REMOTE", f"sc://127.0.0.1:{port}/;token=tok-not-for-logs")
    proc = cli("+env=spark", "stages=[process]", "data.n_rows=500")
    line = _one_line_error(Invocation(proc.returncode, proc.stdout, proc.stderr))
    assert f"no Spark Connect server answers at 127.0.0.1:{port}" in line
    assert "SPARK_REMOTE" in line
    assert "tok-not-for-logs" not in proc.stdout + proc.stderr


def test_a_message_over_several_lines_keeps_its_reason() -> None:
    """Hydra puts the reason on the line after "Error in call to target 'x':"; the one line keeps both."""
    exc = ValueError("Error in call to target 'x':\n  TypeError('takes no arguments')\nfull_key: data\n")
    assert one_line(exc) == "Error in call to target 'x'; TypeError('takes no arguments'); full_key: data"
    assert one_line(ValueError()) == "ValueError"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "model=xgboost",
            "Could not find 'model/xgboost'; the options are lightgbm, lightgbm_tuned, logistic",
        ),
        (
            "+experiment=nope",
            "'experiment/nope'; the options are drift, feature_sets, lightgbm_grid, model_families",
        ),
        ("nosuchkey=1", "nosuchkey"),
        ("stages=[fly]", "unknown stage"),
    ],
)
def test_bad_override(marvel_main, override: str, expected: str) -> None:
    assert expected in _one_line_error(marvel_main(override))


def test_databricks_env_without_credentials(
    marvel_main, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CLIENT_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "none.cfg"))
    line = _one_line_error(marvel_main("+env=prd"))
    assert "DATABRICKS_HOST" in line
    assert "DATABRICKS_TOKEN" in line


@pytest.mark.slow
def test_cli_default_run_prints_one_summary(cold_cli) -> None:
    """The one cold `python -m marvel` process of the suite: startup as a user sees it."""
    # 3000 rows: on 1500 synthetic rows the model cannot beat the always-majority baseline by the promotion
    # margin (ROC AUC 0.506), and the first model is then rightly not promoted
    proc = cold_cli("data.n_rows=3000", "model.params.n_estimators=40")
    assert proc.returncode == 0, proc.stderr
    assert "rows: raw 3000 = quarantined 0 + train 2400 + test 600" in proc.stdout
    assert "promoted (first model)" in proc.stdout
    assert "roc_auc" in proc.stdout
    assert "baseline" in proc.stdout
