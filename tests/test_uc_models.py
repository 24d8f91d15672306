"""The registered models as Unity Catalog takes them: signatures with outputs (MLflow's own UC check), an input
schema that takes what the source platform's clients send, version tags, and nothing half-registered."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from marvel.core.errors import MarvelError
from marvel.core.results import RunResult
from marvel.training.signature import input_example
from tests.uc import uc_check_every_version

BASIC = "marvel_character_model_basic"
CUSTOM = "marvel_character_model_custom"
# what the source platform's notebook sends: ints for Teams and the flags, an integer weight, no Id/Name
SOURCE_CLIENT_RECORD = {
    "Height": 1.88,
    "Weight": 70,
    "Universe": "Marvel",
    "Identity": "Secret",
    "Gender": "Male",
    "Marital_Status": "Single",
    "Teams": 1,
    "Origin": "Human",
    "Magic": 0,
    "Mutant": 0,
}


def _use(home: Path) -> MlflowClient:
    uri = f"sqlite:///{home}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient()


def test_every_model_the_train_stage_logs_passes_mlflows_uc_check(trained: Path) -> None:
    assert uc_check_every_version(trained) == [f"{BASIC}/1", f"{CUSTOM}/1"]
    client = _use(trained)
    for name in (BASIC, CUSTOM):
        info = mlflow.models.get_model_info(f"models:/{name}/1")
        assert info.signature.outputs is not None
        assert info.saved_input_example_info is not None  # an input example travels with the model
        tags = client.get_model_version(name, "1").tags
        assert {"git_sha", "branch", "job_run_id"} <= set(tags), tags


def test_the_pyfunc_takes_what_the_source_platforms_clients_send(trained: Path) -> None:
    _use(trained)
    custom = mlflow.pyfunc.load_model(f"models:/{CUSTOM}@latest-model")
    basic = mlflow.pyfunc.load_model(f"models:/{BASIC}@latest-model")
    ints = pd.DataFrame([SOURCE_CLIENT_RECORD])
    assert ints["Teams"].dtype == "int64"
    assert ints["Weight"].dtype == "int64"
    strings = pd.DataFrame(
        [{**SOURCE_CLIENT_RECORD, "Teams": "1", "Weight": 70.0, "Magic": "0", "Mutant": "0"}]
    )
    answers = [custom.predict(frame)["Survival prediction"] for frame in (ints, strings)]
    assert answers[0] == answers[1]  # "Teams": 1 means what "Teams": "1" means
    assert answers[0][0] in ("alive", "dead")
    # optional fields optional: only the required columns
    required = pd.DataFrame([{k: v for k, v in SOURCE_CLIENT_RECORD.items() if k not in ("Magic", "Mutant")}])
    assert len(custom.predict(required)["Survival prediction"]) == 1
    proba = basic.predict(ints)
    assert proba.shape == (1, 2)
    # the logged input example itself (mixed int / text Teams) is accepted
    assert len(custom.predict(input_example())["Survival prediction"]) == 2


@pytest.mark.slow
def test_a_failed_registration_moves_no_alias(
    trained: Path, run_marvel: Callable[..., RunResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registration fails half way (the custom model is refused): one line, and neither alias moves."""
    client = _use(trained)
    real = mlflow.register_model

    def refuse_custom(model_uri: str, name: str, **kw: object) -> object:
        if name == CUSTOM:
            raise mlflow.exceptions.MlflowException("Model passed for registration contained a signature ...")
        return real(model_uri, name, **kw)

    monkeypatch.setattr(mlflow, "register_model", refuse_custom)
    with pytest.raises(MarvelError, match="no alias moved"):
        run_marvel("stages=[train]", "train.force=true")
    for name in (BASIC, CUSTOM):
        assert str(client.get_model_version_by_alias(name, "latest-model").version) == "1"
        assert str(client.get_model_version_by_alias(name, "challenger").version) == "1"


def test_train_inputs_are_delta_table_versions(trained: Path) -> None:
    """Lineage: the run's dataset inputs are the Delta tables it read, with their exact version (UC name on
    Databricks, path here), and keep the table/version tags the monitor resolves baselines through."""
    client = _use(trained)
    (run,) = [
        r
        for r in client.search_runs(["0", *[e.experiment_id for e in client.search_experiments()]])
        if r.inputs.dataset_inputs
    ]
    inputs = {i.dataset.name: i for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"train_set@v0", "test_set@v0"}
    for name, item in inputs.items():
        table = name.split("@")[0]
        assert item.dataset.source_type == "delta_table"
        assert json.loads(item.dataset.source) == {"path": str(trained / "lake" / table)}
        tags = {t.key: t.value for t in item.tags}
        assert (tags["table"], tags["version"]) == (table, "0")


@pytest.mark.slow
def test_the_train_stage_creates_the_schema_before_registering(
    trained: Path, run_marvel: Callable[..., RunResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    from marvel.core.tables import DeltaTableStore

    order: list[str] = []
    monkeypatch.setattr(DeltaTableStore, "ensure_schema", lambda self: order.append("schema"))
    real = mlflow.register_model
    monkeypatch.setattr(mlflow, "register_model", lambda *a, **kw: order.append("register") or real(*a, **kw))
    run_marvel("stages=[train]", "train.force=true")
    assert order == ["schema", "register", "register"]
