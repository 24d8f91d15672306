"""A/B routing: which variant answers a record.

Deterministic, not random: a record's key (its ``Id``, or the whole record when it has none) is hashed into
[0, 1) and the variants own consecutive slices of that interval in proportion to their traffic percentages.
So a character always meets the same variant (across requests, processes and restarts), and over many
characters the realised split matches the configured one within sampling error.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from marvel.errors import MarvelError


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


def routing_key(record: dict[str, Any]) -> str:
    """``Id`` when the record has one; else the record itself (sorted keys, so key order does not matter)."""
    ident = record.get("Id")
    if ident is not None and str(ident) != "":
        return f"id:{ident}"
    return "record:" + json.dumps(record, sort_keys=True, default=str)


def unit_hash(text: str) -> float:
    """A uniform, stable number in [0, 1) (blake2b, not Python's salted `hash`)."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class Router:
    """Maps a record to a variant name by its key's hash. `salt` (the endpoint name) keeps splits of
    different endpoints independent of each other."""

    def __init__(self, variants: list[Variant], salt: str = "") -> None:
        live = [v for v in variants if v.traffic_percentage > 0]
        if not live:
            raise MarvelError("deploy.variants: at least one variant needs traffic_percentage > 0")
        names = [v.name for v in variants]
        if len(set(names)) != len(names):
            raise MarvelError(f"deploy.variants: names must be unique, got {names}")
        total = sum(v.traffic_percentage for v in live)
        if abs(total - 100.0) > 1e-6:
            raise MarvelError(
                f"deploy.variants: traffic percentages add up to {total:g}, not 100 "
                f"({', '.join(f'{v.name}={v.traffic_percentage:g}' for v in variants)})"
            )
        self.variants = live
        self.salt = salt
        # upper edges of each variant's slice of [0, 1); the last edge is exactly 1
        self._edges = [edge / total for edge in accumulate(v.traffic_percentage for v in live)]
        self._edges[-1] = 1.0

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variants]

    def route(self, record: dict[str, Any]) -> str:
        h = unit_hash(f"{self.salt}|{routing_key(record)}")
        return self.variants[min(bisect_right(self._edges, h), len(self.variants) - 1)].name
