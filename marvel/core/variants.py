"""What an endpoint serves: variants (a registered model at a version or alias, with a traffic share), and the
one check that a list of them is a valid split. Local and Databricks deployers both use it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from marvel.core.errors import MarvelError


@dataclass(frozen=True)
class Variant:
    """One served model: the registered model `model` at `version`, or at `alias` when version is null."""

    name: str
    model: str
    alias: str | None = None
    version: str | int | None = None
    traffic_percentage: float = 100.0

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> Variant:
        try:
            v = cls(**cfg)
        except TypeError as exc:
            raise MarvelError(f"bad deploy.variants entry {cfg}: {exc}") from None
        if v.alias is None and v.version is None:
            raise MarvelError(f"deploy variant '{v.name}' needs an alias or a version")
        if v.traffic_percentage < 0:
            raise MarvelError(f"deploy variant '{v.name}' has a negative traffic_percentage")
        return v


def check_distinct(variants: Iterable[Variant], versions: Mapping[str, str]) -> None:
    """Two variants that resolve to the same model version are no A/B test: refuse it (`versions` maps a
    variant's name to the version it resolved to)."""
    seen: dict[tuple[str, str], str] = {}
    for v in variants:
        key = (v.model, str(versions[v.name]))
        if key in seen:
            raise MarvelError(
                f"deploy.variants {seen[key]} and {v.name} both serve {v.model} v{key[1]}: an A/B test needs two "
                "versions (train a challenger first, or pin deploy.variants.N.version)"
            )
        seen[key] = v.name


def validate_variants(variants: Iterable[Mapping[str, Any] | Variant]) -> list[Variant]:
    """The variants of a deploy config, checked: at least one with traffic, unique names (they name the served
    entities), traffic percentages adding up to 100."""
    out = [v if isinstance(v, Variant) else Variant.from_config(dict(v)) for v in variants]
    if not out:
        raise MarvelError("deploy.variants is empty: serve at least one model")
    names = [v.name for v in out]
    if len(set(names)) != len(names):
        raise MarvelError(
            f"deploy.variants: names must be unique (they name the served entities), got {names}"
        )
    live = [v for v in out if v.traffic_percentage > 0]
    if not live:
        raise MarvelError("deploy.variants: at least one variant needs traffic_percentage > 0")
    total = sum(v.traffic_percentage for v in live)
    if abs(total - 100.0) > 1e-6:
        raise MarvelError(
            f"deploy.variants: traffic percentages must add up to 100, but add up to {total:g} "
            f"({', '.join(f'{v.name}={v.traffic_percentage:g}' for v in out)})"
        )
    return out
