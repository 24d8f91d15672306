"""Tail pools: long lists of generated values (universes, origins, teams, creators), deterministic (independent
of seed and partition, so every partition draws from the same "multiverse"), shuffled so popularity rank is
unrelated to spelling. Built from the word pools in ``words.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib.resources import files
from typing import Any

import numpy as np
import yaml

from marvel.core.errors import MarvelError


@lru_cache(maxsize=1)
def words() -> dict[str, list[str]]:
    """The word pools (``words.yaml`` beside this module, read from the installed package)."""
    text = files("marvel.data.synthetic").joinpath("words.yaml").read_text(encoding="utf-8")
    loaded: dict[str, list[str]] = yaml.safe_load(text)
    return loaded


POOL_SEED = 20_240_616


def _shuffled_unique(candidates: Sequence[str], exclude: frozenset[str], size: int, key: int) -> np.ndarray:
    uniq = list(dict.fromkeys(c for c in candidates if c not in exclude))
    order = np.random.default_rng([POOL_SEED, key]).permutation(len(uniq))
    return np.array([uniq[i] for i in order[:size]], dtype=object)


@lru_cache(maxsize=32)
def _universe_pool(
    size: int, trn_share: float, digits: tuple[tuple[int, float], ...], exclude: frozenset[str]
) -> np.ndarray:
    rng = np.random.default_rng([POOL_SEED, 1])
    n_trn = round(size * trn_share)
    names: list[str] = [f"Earth-TRN{i}" for i in rng.permutation(np.arange(1, 4 * n_trn + 2))[:n_trn]]
    total = sum(p for _, p in digits) or 1.0
    for d, p in digits:
        lo, hi = 10 ** (d - 1), 10**d
        k = min(round((size - n_trn) * p / total) + 1, hi - lo)
        # integer population: numpy samples without replacement without materialising 10^9 candidates
        names += [f"Earth-{v + lo}" for v in rng.choice(hi - lo, size=k, replace=False)]
    return _shuffled_unique(names, exclude, size, 2)


@lru_cache(maxsize=32)
def _origin_pool(size: int, exclude: frozenset[str]) -> np.ndarray:
    w = words()
    cands: list[str] = []
    for t in w["origin_templates"]:
        for b in w["origin_bases"]:
            fills = (
                [{"a": a} for a in w["agents"]]
                if "{a}" in t
                else [{"b2": b2} for b2 in w["origin_bases"] if b2 != b]
                if "{b2}" in t
                else [{"e": e} for e in w["enhancements"]]
                if "{e}" in t
                else [{"p": p} for p in w["places"]]
            )
            cands += [t.format(b=b, **f) for f in fills]
    # the wiki spells the same thing in several cases ("Human mutate"/"Human Mutate"): keep some variants
    cands += [c.lower().capitalize() for c in cands[::7]]
    return _shuffled_unique(cands, exclude, size, 3)


@lru_cache(maxsize=32)
def _team_pool(size: int, exclude: frozenset[str]) -> np.ndarray:
    w = words()
    cands = [f"{a} {n}" for a in w["adjectives"] for n in w["nouns"]] + [
        f"{a} {g}" for a in w["adjectives"] for g in w["groups"]
    ]
    cands += [f"{g} of {p}" for g in w["groups"] for p in w["places"]] + [
        f"{n} {g}" for n in w["nouns"] for g in w["groups"]
    ]
    cands += [f"{a} {n} {g}" for a in w["adjectives"] for n in w["nouns"] for g in w["groups"][:8]]
    return _shuffled_unique(cands, exclude, size, 4)


@lru_cache(maxsize=32)
def _creator_pool(size: int, exclude: frozenset[str]) -> np.ndarray:
    w = words()
    # Plain "First Last" names take the popular ranks; middle-initial variants only extend the pool.
    plain = _shuffled_unique(
        [f"{f} {la}" for f in w["first_names"] for la in w["last_names"]], exclude, size, 5
    )
    initials = [
        f"{f} {m}. {la}" for m in "ABCDEFGHJKLMNPRSTW" for f in w["first_names"] for la in w["last_names"]
    ]
    extra = _shuffled_unique(initials, exclude, max(0, size - len(plain)), 6)
    return np.concatenate([plain, extra])


def pool(kind: str, tail: Mapping[str, Any], exclude: frozenset[str]) -> np.ndarray:
    size = int(tail.get("pool_size", 1000))
    if "values" in tail:  # explicit list (e.g. rare gender spellings)
        return np.array([v for v in tail["values"] if v not in exclude], dtype=object)
    if kind == "universe":
        digits = tuple(sorted((int(k), float(v)) for k, v in tail.get("digits", {4: 1.0}).items()))
        return _universe_pool(size, float(tail.get("trn_share", 0.0)), digits, exclude)
    builders = {"origin": _origin_pool, "teams": _team_pool, "creators": _creator_pool}
    if kind not in builders:
        raise MarvelError(f"synthetic calibration: {kind} has a tail share but no tail `values` list")
    return builders[kind](size, exclude)


def zipf_cdf(n: int, exponent: float, offset: float = 0.0) -> np.ndarray:
    """CDF over ranks 1..n of a truncated Zipf-Mandelbrot law, p_k ~ (k + offset)^-exponent.

    The offset lets a tail continue the rank-frequency curve after the named values (rank 31 onwards for
    universes) instead of restarting at rank 1, which would make the top tail value more popular than the
    named ones.
    """
    w = (np.arange(1, n + 1, dtype=np.float64) + float(offset)) ** -float(exponent)
    cdf = np.cumsum(w / w.sum())
    cdf[-1] = 1.0
    return cdf
