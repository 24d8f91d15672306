"""MLflow's own Unity Catalog check, applied to every model version a run registered locally."""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.store._unity_catalog.registry.rest_store import UcModelRegistryStore


def uc_check_every_version(home: Path) -> list[str]:
    """Run the check `UcModelRegistryStore` applies before it creates a model version (signature with inputs
    and outputs) on every registered version in `home`'s MLflow; returns the "name/version"s checked."""
    uri = f"sqlite:///{home}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    uc = UcModelRegistryStore(store_uri="databricks-uc", tracking_uri="databricks")  # lazy: no host needed
    checked = []
    mlflow.set_tracking_uri(uri)
    for model in client.search_registered_models():
        for mv in client.search_model_versions(f"name='{model.name}'"):
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=client.get_model_version_download_uri(mv.name, mv.version),
                tracking_uri=uri,
            )
            uc._validate_model_signature(local)  # raises MlflowException as the UC registry would
            checked.append(f"{mv.name}/{mv.version}")
    return sorted(checked)
