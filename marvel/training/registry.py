"""Model registry: register the basic (sklearn) and custom (pyfunc) models with their data lineage, and move the
champion alias when `training.promotion` says so. An identical config on identical data is not registered twice."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from marvel.core.errors import MarvelError
from marvel.core.metrics import score
from marvel.core.registry import alias_version
from marvel.core.results import Promotion
from marvel.core.sources import Lineage
from marvel.training.promotion import Challenger, Champion, comparable, decide
from marvel.training.pyfunc import SurvivalModel
from marvel.training.signature import (
    PACKAGE_DIR,
    basic_signature,
    custom_signature,
    input_example,
    requirements,
)

log = logging.getLogger(__name__)

CHALLENGER_ALIAS = "challenger"
FINGERPRINT_TAG = "fingerprint"


@dataclass(frozen=True)
class Names:
    basic: str  # the sklearn pipeline
    custom: str  # the pyfunc answering {"Survival prediction": [...]}
    alias: str  # the champion's alias


def registered_with(names: Names, fingerprint: str) -> tuple[Any, Any] | None:
    """The (basic, custom) model versions already registered for this fingerprint, if both are."""
    client = MlflowClient()
    found = []
    for name in (names.basic, names.custom):
        hits = [
            v
            for v in client.search_model_versions(f"name = '{name}'")
            if (v.tags or {}).get(FINGERPRINT_TAG) == fingerprint
        ]
        if not hits:
            return None
        found.append(max(hits, key=lambda v: int(v.version)))
    return found[0], found[1]


def _score_champion(names: Names, champion: Any, metric: str, X: pd.DataFrame, y: np.ndarray) -> float:
    """The champion's metric on this run's test rows (NaN when it cannot be scored, e.g. older code)."""
    try:
        model = mlflow.sklearn.load_model(f"models:/{names.basic}/{champion.version}")
        proba = model.predict_proba(X)[:, 1]
        return score(y, proba, float(champion.tags.get("threshold", 0.5)))[metric]
    except Exception as exc:  # an incompatible champion must not block a new model
        log.warning("could not score champion v%s (%s)", champion.version, exc)
        return float("nan")


def register_and_promote(
    pipeline: Any,
    *,
    threshold: float,
    names: Names,
    metric: str,
    metrics: dict[str, float],
    baseline: dict[str, float],
    lineage: Lineage | None,
    margin: float,
    allow_new_lineage: bool,
    X_test: pd.DataFrame,
    y_test: np.ndarray,
    tags: dict[str, str],
) -> Promotion:
    """Register both models (each new version gets alias `challenger`), then move the champion alias if the
    promotion rules allow; the verdict says why in one line."""
    client = MlflowClient()
    champion = alias_version(names.basic, names.alias)
    held: Champion | None = None
    if champion is not None:
        theirs = Lineage.from_tags(champion.tags or {})
        measured = (
            _score_champion(names, champion, metric, X_test, y_test)
            if comparable(lineage, theirs)
            else float("nan")
        )
        held = Champion(str(champion.version), theirs, measured)
    verdict = decide(
        metric,
        Challenger(lineage, metrics[metric], baseline[metric]),
        held,
        margin=margin,
        allow_new_lineage=allow_new_lineage,
    )
    basic_name, custom_name = names.basic, names.custom

    example = input_example()
    # both models are logged before either is registered, and registered (with their tags) before any alias
    # moves: a failure anywhere leaves the aliases where they were
    basic_info = mlflow.sklearn.log_model(
        pipeline,
        name="basic_model",
        # cloudpickle on purpose: skops refuses our processor classes and LightGBM's booster, and these
        # artifacts are written and read only by this project's own runs
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        signature=basic_signature(),
        input_example=example,
        code_paths=[PACKAGE_DIR],
        pip_requirements=requirements(),
        pyfunc_predict_fn="predict_proba",
    )
    custom_info = mlflow.pyfunc.log_model(
        name="custom_model",
        python_model=SurvivalModel(pipeline, threshold),
        signature=custom_signature(),
        input_example=example,
        code_paths=[PACKAGE_DIR],
        pip_requirements=requirements(),
    )
    version_tags = {
        **tags,
        **(lineage.tags() if lineage is not None else {}),
        "threshold": str(threshold),
        **{k: f"{v:.6f}" for k, v in metrics.items()},
        **{f"baseline_{k}": f"{v:.6f}" for k, v in baseline.items()},
    }
    try:
        bv = str(mlflow.register_model(basic_info.model_uri, basic_name, tags=version_tags).version)
        cv = str(mlflow.register_model(custom_info.model_uri, custom_name, tags=version_tags).version)
    except MlflowException as exc:
        first = (exc.message.strip().splitlines() or ["registry error"])[0]
        raise MarvelError(
            f"registering {basic_name} / {custom_name} failed ({first[:300]}); no alias moved, "
            "fix the cause and rerun stages=[train]"
        ) from None

    # every new version is the challenger (deploy=ab serves it beside the champion); the champion alias moves
    # only on the verdict, and only once both versions are fully registered
    for name, v in ((basic_name, bv), (custom_name, cv)):
        client.set_registered_model_alias(name, CHALLENGER_ALIAS, v)
    if verdict.promote:
        client.set_registered_model_alias(basic_name, names.alias, bv)
        client.set_registered_model_alias(custom_name, names.alias, cv)
    return Promotion(
        basic_name=basic_name,
        custom_name=custom_name,
        basic_version=bv,
        custom_version=cv,
        alias=names.alias,
        metric=metric,
        promoted=verdict.promote,
        champion_version=held.version if held is not None else None,
        champion_metric=held.metric if held is not None else math.nan,
        reason=verdict.reason,
    )


def unchanged(names: Names, basic: Any, custom: Any, metric: str) -> Promotion:
    """The verdict for a config and data already registered: nothing new, the champion stays as it is."""
    champion = alias_version(names.basic, names.alias)
    return Promotion(
        basic_name=names.basic,
        custom_name=names.custom,
        basic_version=str(basic.version),
        custom_version=str(custom.version),
        alias=names.alias,
        metric=metric,
        promoted=False,
        champion_version=str(champion.version) if champion is not None else None,
        champion_metric=math.nan,
        reason=(
            f"unchanged: v{basic.version} (this config on this data is registered already; "
            "train.force=true registers a new version)"
        ),
        unchanged=True,
    )
