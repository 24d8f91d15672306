"""Prepared distributions: categorical columns with Zipf tails, "; "-list columns, and quantile curves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from marvel.core.errors import MarvelError
from marvel.data.synthetic.pools import pool, zipf_cdf

_TAIL = "\x00tail"  # sentinel outcome keys inside a share dict
_MISSING = "\x00missing"


@dataclass(frozen=True)
class Categorical:
    """A categorical column: named values, a Zipf tail pool, and missing.

    ``table`` holds every value a code can point to (named, then tail pool, then ``None`` last), so one
    ``table[codes]`` gather makes the column.
    """

    table: np.ndarray
    cdf: np.ndarray  # over outcomes: named values..., tail, missing
    n_named: int
    tail_cdf: np.ndarray | None

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        k = np.searchsorted(self.cdf, rng.random(n), side="right")
        codes = k.astype(np.int64)
        tail = k == self.n_named
        if self.tail_cdf is not None and tail.any():
            codes[tail] = self.n_named + np.searchsorted(
                self.tail_cdf, rng.random(int(tail.sum())), side="right"
            )
        codes[k == self.n_named + 1] = len(self.table) - 1
        return codes


def cdf(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, None)
    if p.sum() <= 0:
        raise MarvelError("synthetic data: a distribution has no positive share")
    cdf = np.cumsum(p / p.sum())
    cdf[-1] = 1.0
    return cdf


def _override(shares: dict[str, float], overrides: Mapping[str, float] | None, what: str) -> dict[str, float]:
    """Set the given outcomes to their target shares and scale every other outcome to fill the rest."""
    if not overrides:
        return shares
    over = {str(k): float(v) for k, v in overrides.items()}
    if any(v < 0 for v in over.values()) or sum(over.values()) > 1.0 + 1e-9:
        raise MarvelError(f"synthetic drift: {what} shares must be >= 0 and sum to at most 1, got {over}")
    total = sum(shares.values())
    rest = {k: v / total for k, v in shares.items() if k not in over}
    scale = (1.0 - sum(over.values())) / (sum(rest.values()) or 1.0)
    return {**{k: v * scale for k, v in rest.items()}, **over}


def categorical(
    kind: str, spec: Mapping[str, Any], overrides: Mapping[str, float] | None = None
) -> Categorical:
    shares: dict[str, float] = {str(k): float(v) for k, v in (spec.get("values") or {}).items()}
    tail = spec.get("tail") or {}
    shares[_TAIL] = float(tail.get("share", 0.0))
    shares[_MISSING] = float(spec.get("missing", 0.0))
    shares = _override(shares, overrides, kind)
    named = [k for k in shares if k not in (_TAIL, _MISSING)]
    values = pool(kind, tail, frozenset(named)) if shares[_TAIL] > 0 else np.array([], dtype=object)
    if len(values) == 0:
        shares[_TAIL] = 0.0
    probs = [shares[k] for k in named] + [shares[_TAIL], shares[_MISSING]]
    table = np.array([*named, *values, None], dtype=object)
    tail_cdf = (
        zipf_cdf(len(values), float(tail.get("zipf_exponent", 1.0)), float(tail.get("rank_offset", 0.0)))
        if len(values)
        else None
    )
    return Categorical(table=table, cdf=cdf(np.array(probs)), n_named=len(named), tail_cdf=tail_cdf)


@dataclass(frozen=True)
class ListColumn:
    """A "; "-joined list column: missing or a length, then that many distinct slot values, sorted."""

    slots: Categorical  # never missing: the whole list is missing or not
    rank: np.ndarray  # slot code -> index into sorted_table
    sorted_table: np.ndarray  # slot values in alphabetical order, so sorting codes sorts names
    missing: float
    length_cdf: np.ndarray  # over lengths 1..len(length_cdf)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.rank[self.slots.draw(rng, n)]


def list_column(kind: str, spec: Mapping[str, Any]) -> ListColumn:
    cat = categorical(kind, {"values": spec.get("values"), "tail": spec.get("tail"), "missing": 0.0})
    # The wiki lists teams and creators alphabetically: re-code slots into alphabetical order.
    values = cat.table[:-1]
    order = np.argsort(values.astype(str), kind="stable")
    rank = np.empty(len(order) + 1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    rank[-1] = len(order)
    lengths = spec.get("lengths") or {1: 1.0}
    p = np.zeros(max(int(k) for k in lengths))
    for k, v in lengths.items():
        p[int(k) - 1] = float(v)
    return ListColumn(
        slots=cat,
        rank=rank,
        sorted_table=np.array([*values[order], None], dtype=object),
        missing=float(spec.get("missing", 0.0)),
        length_cdf=cdf(p),
    )


@dataclass(frozen=True)
class Quantiles:
    """Inverse CDF through calibrated quantile knots, log-linear between knots.

    Equivalently a mixture of log-uniform segments weighted by the knot spacing: it reproduces every
    calibrated quantile (1%..99%, min and max) exactly and keeps the heavy tail up to the max.
    """

    probs: np.ndarray
    log_values: np.ndarray

    def __call__(self, u: np.ndarray) -> np.ndarray:
        return np.exp(np.interp(u, self.probs, self.log_values))


def quantiles(spec: Mapping[Any, Any], what: str) -> Quantiles:
    items = sorted((float(k), float(v)) for k, v in spec.items())
    probs, values = np.array([k for k, _ in items]), np.array([v for _, v in items])
    if probs[0] != 0.0 or probs[-1] != 1.0 or np.any(np.diff(values) < 0) or values[0] <= 0:
        raise MarvelError(f"synthetic calibration: {what} quantiles need knots 0 and 1, increasing, > 0")
    return Quantiles(probs=probs, log_values=np.log(values))
