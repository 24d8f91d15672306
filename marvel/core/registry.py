"""Reading the model registry: which version a variant or alias means. One resolver for every deployer."""

from __future__ import annotations

from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from marvel.core.errors import MarvelError
from marvel.core.variants import Variant


def client(registry_uri: str | None = None) -> MlflowClient:
    return MlflowClient(registry_uri=registry_uri) if registry_uri else MlflowClient()


def alias_version(name: str, alias: str, registry_uri: str | None = None) -> Any | None:
    """The ModelVersion `alias` points at, or None when the model or the alias does not exist."""
    try:
        return client(registry_uri).get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def resolve_version(variant: Variant, registry_uri: str | None = None) -> Any:
    """The registry's ModelVersion a variant points at: its pinned version, else its alias's version now.

    An alias is resolved once, at deploy time: like a Databricks served entity, an endpoint keeps serving that
    version even if the alias moves later.
    """
    c = client(registry_uri)
    try:
        if variant.version is not None:
            return c.get_model_version(variant.model, str(variant.version))
        if not variant.alias:
            raise MarvelError(f"deploy variant '{variant.name}': give a version or an alias")
        return c.get_model_version_by_alias(variant.model, str(variant.alias))
    except MlflowException as exc:
        where = f"version {variant.version}" if variant.version is not None else f"alias '{variant.alias}'"
        raise MarvelError(
            f"no model {variant.model} at {where} for variant '{variant.name}' "
            f"({exc.message.splitlines()[0]}); train and register one first: python -m marvel"
        ) from None
