"""Model registry: register the basic (sklearn) and custom (pyfunc) models, and promote the challenger only
when it is not worse than the champion on the same test set."""

from __future__ import annotations

import logging
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from marvel.core.metrics import better_or_equal, score
from marvel.core.registry import alias_version
from marvel.core.results import Promotion
from marvel.training.pyfunc import SurvivalModel
from marvel.training.signature import PACKAGE_DIR, input_signature, requirements

log = logging.getLogger(__name__)

CHALLENGER_ALIAS = "challenger"


def register_and_promote(
    pipeline: Any,
    *,
    threshold: float,
    basic_name: str,
    custom_name: str,
    alias: str,
    metric: str,
    challenger_metrics: dict[str, float],
    X_test: pd.DataFrame,
    y_test: np.ndarray,
    tags: dict[str, str],
) -> Promotion:
    client = MlflowClient()
    champion = alias_version(basic_name, alias)
    champion_metric = float("nan")
    if champion is not None:
        try:
            # the champion is scored on this run's test set, so both numbers speak of the same rows
            champ = mlflow.sklearn.load_model(f"models:/{basic_name}/{champion.version}")
            proba = champ.predict_proba(X_test)[:, 1]
            champion_metric = score(y_test, proba, float(champion.tags.get("threshold", 0.5)))[metric]
        except Exception as exc:  # an incompatible champion (older code) must not block a new model
            log.warning("could not score champion v%s (%s); treating it as beaten", champion.version, exc)

    basic = mlflow.sklearn.log_model(
        pipeline,
        name="basic_model",
        # cloudpickle on purpose: skops refuses our processor classes and LightGBM's booster, and these
        # artifacts are written and read only by this project's own runs
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        registered_model_name=basic_name,
        signature=input_signature(),
        code_paths=[PACKAGE_DIR],
        pip_requirements=requirements(),
        pyfunc_predict_fn="predict_proba",
    )
    custom = mlflow.pyfunc.log_model(
        name="custom_model",
        python_model=SurvivalModel(pipeline, threshold),
        registered_model_name=custom_name,
        signature=input_signature(output=False),
        code_paths=[PACKAGE_DIR],
        pip_requirements=requirements(),
    )
    bv, cv = str(basic.registered_model_version), str(custom.registered_model_version)
    version_tags = {
        **tags,
        "threshold": str(threshold),
        **{k: f"{v:.6f}" for k, v in challenger_metrics.items()},
    }
    for name, v in ((basic_name, bv), (custom_name, cv)):
        for k, val in version_tags.items():
            client.set_model_version_tag(name, v, k, val)

    # every new version is the challenger (deploy=ab serves it beside the champion); the champion alias moves
    # only when the challenger is not worse
    for name, v in ((basic_name, bv), (custom_name, cv)):
        client.set_registered_model_alias(name, CHALLENGER_ALIAS, v)
    new = challenger_metrics[metric]
    promoted = better_or_equal(metric, new, champion_metric)
    if promoted:
        client.set_registered_model_alias(basic_name, alias, bv)
        client.set_registered_model_alias(custom_name, alias, cv)
    if champion is None:
        reason = "promoted (first model)"
    elif promoted:
        reason = f"promoted: {metric} {new:.4f} >= champion v{champion.version} {champion_metric:.4f}"
    else:
        reason = (
            f"not promoted: {metric} {new:.4f} worse than champion v{champion.version} {champion_metric:.4f}"
        )
    return Promotion(
        basic_name=basic_name,
        custom_name=custom_name,
        basic_version=bv,
        custom_version=cv,
        alias=alias,
        metric=metric,
        promoted=promoted,
        champion_version=str(champion.version) if champion is not None else None,
        champion_metric=champion_metric,
        reason=reason,
    )
