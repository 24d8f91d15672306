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
from itertools import accumulate
from typing import Any

from marvel.core.variants import Variant, validate_variants


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
        live = [v for v in validate_variants(variants) if v.traffic_percentage > 0]
        total = sum(v.traffic_percentage for v in live)
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
