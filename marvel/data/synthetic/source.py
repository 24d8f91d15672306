"""Seeded synthetic Marvel characters, calibrated on the real Kaggle sample.

The real file cannot ship with the project, so tests, demos and load tests run on rows drawn from
distributions whose parameters (shares, missing rates, quantiles, a logistic model of ``Alive``) were computed
from the real sample by ``benchmarks/calibrate_synthetic.py`` and stored beside this module
(``calibration.yaml``).
No real row is stored: character names, creators, the universe/origin long tails and most team names are
generated from word pools; only the most frequent category values (facts such as "Earth-616" or "Avengers")
appear verbatim.

Everything is vectorised numpy: strings are only built for the *distinct* combinations of drawn codes and
then gathered, so 1M rows take a few seconds. A row depends only on ``(seed, partition)`` and the config, so
a Spark job can call ``generate(n, seed, partition=i)`` on each executor; the partition index is part of
every PageID, which keeps ids unique across partitions.
"""

from __future__ import annotations

import copy
import functools
import math
from importlib.resources import files
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
from omegaconf import DictConfig, ListConfig, OmegaConf
from scipy.special import expit, ndtr

from marvel.core.errors import MarvelError
from marvel.core.schemas import MAX_HEIGHT_M, MAX_WEIGHT_KG, RAW_COLUMNS
from marvel.core.sources import GENERATED, Lineage, PartitionedSource, conform, digest
from marvel.data.synthetic.alive import CATEGORY_FEATURES
from marvel.data.synthetic.distributions import ListColumn, categorical, cdf, list_column, quantiles
from marvel.data.synthetic.pools import POOL_SEED, words

NO_DRIFT: dict[str, Any] = {
    "height_scale": 1.0,
    "weight_scale": 1.0,
    "gender_shares": None,
    "universe_shares": None,
    "origin_shares": None,
    "alive_rate": None,
}

_DIRTY_KINDS: list[str] = [
    "alive_unknown",
    "alive_ghost",
    "alive_missing",
    "height_negative",
    "height_absurd",
    "weight_zero",
    "page_id_empty",
]

_PREPARED: dict[str, dict[str, Any]] = {}  # built tables by digest of (calibration, drift); see _prepare
_REFERENCE_ROWS = 50_000  # rows of the fixed reference draw that sets the Alive intercept shift
_URL_PREFIX = "https://marvel.fandom.com/wiki/"


def _plain(x: Any) -> Any:
    """Hydra hands over DictConfig/ListConfig; the generator wants plain containers."""
    if isinstance(x, DictConfig | ListConfig):
        return OmegaConf.to_container(x, resolve=True)
    return x


def default_calibration() -> dict[str, Any]:
    """The statistics shipped with marvel: marvel/data/synthetic/calibration.yaml (a checkout or the wheel)."""
    return copy.deepcopy(_calibration())  # a copy: the caller owns what it gets


@functools.lru_cache(maxsize=1)
def _calibration() -> dict[str, Any]:
    # parsed once per process (~0.07 s of YAML; every source made, e.g. one per monitoring window, needs it);
    # OmegaConf's loader, as for the config: it reads 1e-05 as a number, PyYAML's as text
    text = files("marvel.data.synthetic").joinpath("calibration.yaml").read_text(encoding="utf-8")
    return OmegaConf.to_container(OmegaConf.create(text), resolve=True)  # type: ignore[return-value]


class SyntheticSource(PartitionedSource):
    """Synthetic raw character rows, calibrated on the real sample, with optional drift and dirt.

    Args:
        n_rows: rows returned by ``load()``.
        seed: the seed; same seed and config give the same rows.
        calibration: the statistics (the shape of marvel/data/synthetic/calibration.yaml); ``None`` takes
            that file's.
        drift: distribution shift for monitoring demos; every option defaults to "no drift" (NO_DRIFT).
        dirty_rate: share of rows deliberately made invalid (quarantine demos); 0 means all rows pass
            ``RawCharacters``.
        id_prefix: marks synthetic PageIDs, which carry a "(<prefix>-<partition>-<row>)" qualifier.
    """

    def __init__(
        self,
        n_rows: int = 20000,
        seed: int = 42,
        calibration: dict | None = None,
        drift: dict | None = None,
        dirty_rate: float = 0.0,
        id_prefix: str = "syn",
    ) -> None:
        self.n_rows = int(n_rows)
        self.seed = int(seed)
        self.calibration: dict[str, Any] = _plain(calibration) or default_calibration()
        missing = sorted(set(_calibration()) - set(self.calibration))
        if missing:  # found here, before a run opens anything (the process stage's check makes the source)
            raise MarvelError(
                f"synthetic calibration: missing {missing}: data.calibration replaces all of "
                "marvel/data/synthetic/calibration.yaml; to move one statistic use data.drift "
                "(e.g. data.drift.alive_rate=0.6)"
            )
        given = {k: v for k, v in (_plain(drift) or {}).items() if v is not None}
        unknown = set(given) - set(NO_DRIFT)
        if unknown:
            raise MarvelError(f"synthetic drift: unknown options {sorted(unknown)}; known: {list(NO_DRIFT)}")
        self.drift: dict[str, Any] = {**NO_DRIFT, **given}
        self.dirty_rate = float(dirty_rate)
        if not 0.0 <= self.dirty_rate <= 1.0:
            raise MarvelError(f"synthetic data: dirty_rate must be in [0, 1], got {dirty_rate}")
        self.id_prefix = str(id_prefix)
        drifted = [k for k, v in self.drift.items() if v != NO_DRIFT[k]]
        self.description = (
            f"synthetic(n_rows={self.n_rows}, seed={self.seed}, dirty_rate={self.dirty_rate}"
            + (f", drift={drifted}" if drifted else "")
            + ")"
        )
        self._prepared: dict[str, Any] | None = None

    def lineage(self) -> Lineage:
        """One lineage per generator and its options (calibration, drift, dirt); the seed and size only pick
        another draw of it, a new version."""
        options = {
            "calibration": self.calibration,
            "drift": self.drift,
            "dirty_rate": self.dirty_rate,
            "id_prefix": self.id_prefix,
        }
        drifted = sorted(k for k, v in self.drift.items() if v != NO_DRIFT[k])
        name = "synthetic" + (f"+drift({','.join(drifted)})" if drifted else "")
        return Lineage(
            GENERATED, "synthetic", f"{name}:{digest(options, 12)}", f"n_rows={self.n_rows},seed={self.seed}"
        )

    # ---------------------------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        # Spark ships the source to executors; the prepared tables rebuild quickly there.
        return {**self.__dict__, "_prepared": None}

    # ---------------------------------------------------------------------------------------------------
    def _prepare(self) -> dict[str, Any]:
        if self._prepared is None:
            # the tables depend only on the calibration and the drift, and are read-only: sources with the
            # same options (every partition, every window of a stream) share one build (~0.2 s each)
            key = digest({"calibration": self.calibration, "drift": self.drift}, 32)
            if key not in _PREPARED:
                if len(_PREPARED) >= 8:
                    _PREPARED.pop(next(iter(_PREPARED)))
                _PREPARED[key] = self._build()
            self._prepared = _PREPARED[key]
        return self._prepared

    def _build(self) -> dict[str, Any]:
        cal, drift = self.calibration, self.drift
        try:
            gender_spec = dict(cal["gender"])
            if drift["gender_shares"]:
                # Replaces the distribution of the present values; the missing rate stays calibrated.
                miss = float(gender_spec.get("missing", 0.0))
                shares = {str(k): float(v) for k, v in drift["gender_shares"].items()}
                if any(v < 0 for v in shares.values()) or sum(shares.values()) <= 0:
                    raise MarvelError(f"synthetic drift: gender_shares must be >= 0 and not all 0: {shares}")
                tot = sum(shares.values())
                gender_spec = {
                    "values": {k: v / tot * (1 - miss) for k, v in shares.items()},
                    "missing": miss,
                }
            p: dict[str, Any] = {
                "Universe": categorical("universe", cal["universe"], drift["universe_shares"]),
                "Identity": categorical("identity", cal["identity"]),
                "Gender": categorical("gender", gender_spec),
                "Marital Status": categorical("marital_status", cal["marital_status"]),
                "Origin": categorical("origin", cal["origin"], drift["origin_shares"]),
                "Teams": list_column("teams", cal["teams"]),
                "Creators": list_column("creators", cal["creators"]),
                "height": quantiles(cal["height"]["quantiles"], "height"),
                "weight": quantiles(cal["weight"]["quantiles"], "weight"),
                "name_words": cdf(np.array([float(cal["name"]["words"].get(k, 0.0)) for k in (1, 2, 3)])),
                "person_share": float(cal["name"]["person_share"]),
            }
            m = cal["measurements"]
            p["measured_cdf"] = cdf(
                np.array(
                    [
                        m["both"],
                        m["height_only"],
                        m["weight_only"],
                        1.0 - m["both"] - m["height_only"] - m["weight_only"],
                    ]
                )
            )
            # Gaussian copula correlation from the Spearman rank correlation of known (height, weight).
            rs = float(m.get("rank_correlation", 0.0))
            p["rho"] = 2.0 * math.sin(math.pi * rs / 6.0)
            model = cal["alive_model"]
            coef = {k: float(v) for k, v in model["coefficients"].items()}
            target = float(drift["alive_rate"] if drift["alive_rate"] is not None else cal["alive_rate"])
        except KeyError as e:
            raise MarvelError(
                f"synthetic calibration: missing key {e}; see marvel/data/synthetic/calibration.yaml"
            ) from e
        for key in ("height_scale", "weight_scale"):
            if not float(drift[key]) > 0:
                raise MarvelError(f"synthetic drift: {key} must be > 0, got {drift[key]}")
        if not 0.0 < target < 1.0:
            raise MarvelError(f"synthetic drift: alive_rate must be strictly between 0 and 1, got {target}")
        # Per-value logit contribution of each categorical column, so the Alive model is one gather per
        # column instead of a rows x features matrix.
        contrib: dict[str, np.ndarray] = {}
        for col, fn in CATEGORY_FEATURES.items():
            feats = fn(pd.Series(p[col].table, dtype=object)).astype("float64")
            contrib[col] = feats.to_numpy() @ np.array([coef.get(f, 0.0) for f in feats.columns])
        p["contrib"], p["coef"], p["intercept"] = contrib, coef, float(model["intercept"])
        # The features here are drawn independently of each other, unlike the real data, so the fitted
        # intercept alone misses the real alive rate; shift it so a large fixed reference draw hits target.
        ref = self._draw(np.random.default_rng([POOL_SEED, 99]), _REFERENCE_ROWS, p)
        lo, hi = -30.0, 30.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if expit(ref["logit"] + mid).mean() < target else (lo, mid)
        p["shift"] = (lo + hi) / 2
        return p

    def _draw(self, rng: np.random.Generator, n: int, p: dict[str, Any]) -> dict[str, Any]:
        """Codes and numbers for n rows (no strings yet) plus the Alive logit without shift."""
        out: dict[str, Any] = {}
        for col in ("Universe", "Identity", "Gender", "Marital Status", "Origin"):
            out[col] = p[col].draw(rng, n)
        for col in ("Teams", "Creators"):
            lc: ListColumn = p[col]
            lengths = np.searchsorted(lc.length_cdf, rng.random(n), side="right") + 1
            lengths[rng.random(n) < lc.missing] = 0
            out[col + "_len"] = lengths
        kind = np.searchsorted(p["measured_cdf"], rng.random(n), side="right")
        out["h_known"], out["w_known"] = (kind == 0) | (kind == 1), (kind == 0) | (kind == 2)
        coef = p["coef"]
        logit = np.full(n, p["intercept"])
        for col, c in p["contrib"].items():
            logit += c[out[col]]
        logit += coef.get("teams_log1p", 0.0) * np.log1p(out["Teams_len"])
        logit += coef.get("creators_log1p", 0.0) * np.log1p(out["Creators_len"])
        logit += (
            coef.get("height_known", 0.0) * out["h_known"] + coef.get("weight_known", 0.0) * out["w_known"]
        )
        out["logit"] = logit
        return out

    # ---------------------------------------------------------------------------------------------------
    def generate(self, n_rows: int, seed: int, partition: int = 0) -> pd.DataFrame:
        """``n_rows`` rows in the raw contract (`conform`), determined by (seed, partition) and the config.

        PageIDs carry the partition index, so frames from different partitions of one seed never collide.
        """
        p = self._prepare()
        n = int(n_rows)
        rng = np.random.default_rng([int(seed), int(partition)])
        d = self._draw(rng, n, p)
        alive = rng.random(n) < expit(d["logit"] + p["shift"])

        # Heights/weights through a Gaussian copula so giants are also heavy, as in the data.
        z1, z2 = rng.standard_normal(n), rng.standard_normal(n)
        z2 = p["rho"] * z1 + math.sqrt(max(0.0, 1.0 - p["rho"] ** 2)) * z2
        height = np.full(n, np.nan)
        weight = np.full(n, np.nan)
        hk, wk = d["h_known"], d["w_known"]
        height[hk] = p["height"](ndtr(z1[hk])) * float(self.drift["height_scale"])
        weight[wk] = p["weight"](ndtr(z2[wk])) * float(self.drift["weight_scale"])
        # The wiki gives two decimals; clip so scaled values stay inside the schema's physical bounds.
        height = np.clip(np.round(height, 2), 0.01, MAX_HEIGHT_M)
        weight = np.clip(np.round(weight, 2), 0.01, MAX_WEIGHT_KG)

        names, names_u = self._names(rng, n, p)
        uni_table = p["Universe"].table
        universe = uni_table[d["Universe"]]
        # spellings only for the universes drawn (the table has ~47,000: quoting them all took most of the
        # time of a small partition)
        drawn, at = np.unique(d["Universe"], return_inverse=True)
        uni_u = np.array([None if u is None else u.replace(" ", "_") for u in uni_table[drawn]], dtype=object)
        uni_url = np.array([None if u is None else quote(u, safe="()_-.,:!~*") for u in uni_u], dtype=object)
        qual_prefix = f"{self.id_prefix}-{int(partition)}-" if self.id_prefix else f"{int(partition)}-"
        qual = "_(" + qual_prefix + np.arange(n).astype(str).astype(object) + ")_("
        page_id = names_u[0] + qual + uni_u[at] + ")"
        url = _URL_PREFIX + names_u[1] + qual + uni_url[at] + ")"

        df = pd.DataFrame(
            {
                "PageID": page_id,
                "Name": names,
                "Universe": universe,
                "URL": url,
                "Identity": p["Identity"].table[d["Identity"]],
                "Gender": p["Gender"].table[d["Gender"]],
                "Alive": np.where(alive, "Alive", "Dead").astype(object),
                "Marital Status": p["Marital Status"].table[d["Marital Status"]],
                "Teams": self._lists(rng, d["Teams_len"], p["Teams"]),
                "Height (m)": height,
                "Weight (kg)": weight,
                "Origin": p["Origin"].table[d["Origin"]],
                "Creators": self._lists(rng, d["Creators_len"], p["Creators"]),
            }
        )
        if self.dirty_rate > 0:
            # A separate stream, so the clean rows are identical to the dirty_rate=0 output.
            self._dirty(np.random.default_rng([int(seed), int(partition), 0xD1]), df)
        return conform(df)[RAW_COLUMNS]

    def _names(
        self, rng: np.random.Generator, n: int, p: dict[str, Any]
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Character names (1-3 words), plus their PageID and URL spellings.

        Strings are built only for the distinct drawn combinations (a few thousand), then gathered.
        """
        n_words = np.searchsorted(p["name_words"], rng.random(n), side="right") + 1
        person = rng.random(n) < p["person_share"]
        a, b, c = rng.integers(0, 1 << 30, n), rng.integers(0, 1 << 30, n), rng.integers(0, 1 << 30, n)
        # style codes: 1 word codename, 2 words person or adjective+noun, 3 words title + person
        style = np.where(n_words == 1, 0, np.where(n_words == 3, 3, np.where(person, 1, 2)))
        w = words()
        pools: list[tuple[list[str], ...]] = [
            (w["adjectives"] + w["nouns"], [x.lower() for x in w["nouns"]]),  # "Shadowhawk", "Ironwolf"
            (w["first_names"], w["last_names"]),
            (w["adjectives"], w["nouns"]),
            (w["titles"], w["first_names"], w["last_names"]),
        ]
        code = np.zeros(n, dtype=np.int64)
        for s, parts in enumerate(pools):
            rows = style == s
            idx = [x[rows] % len(part) for x, part in zip((a, b, c), parts, strict=False)]
            k = idx[0]
            for i, part in zip(idx[1:], parts[1:], strict=True):
                k = k * len(part) + i
            code[rows] = k * 4 + s
        uniq, inv = np.unique(code, return_inverse=True)
        built: list[str] = []
        for u in uniq.tolist():
            s, k = u % 4, u // 4
            parts = pools[s]
            pieces: list[str] = []
            for part in reversed(parts):
                pieces.append(part[k % len(part)])
                k //= len(part)
            pieces.reverse()
            built.append("".join(pieces) if s == 0 else " ".join(pieces))
        table = np.array(built, dtype=object)
        table_u = np.array([t.replace(" ", "_") for t in built], dtype=object)
        table_url = np.array([quote(t, safe="()_-.,:!~*") for t in table_u], dtype=object)
        return table[inv], (table_u[inv], table_url[inv])

    @staticmethod
    def _lists(rng: np.random.Generator, lengths: np.ndarray, lc: ListColumn) -> np.ndarray:
        """ "; "-joined, alphabetically sorted lists of distinct slot values (None where length is 0)."""
        out = np.full(len(lengths), None, dtype=object)
        table = lc.sorted_table
        for k in np.unique(lengths[lengths > 0]).tolist():
            rows = np.flatnonzero(lengths == k)
            codes = lc.draw(rng, len(rows) * k).reshape(len(rows), k)
            if k > 1:
                codes.sort(axis=1)
                # Redraw rows holding the same value twice (popular teams collide); a few tries suffice.
                for _ in range(8):
                    dup = (np.diff(codes, axis=1) == 0).any(axis=1)
                    if not dup.any():
                        break
                    codes[dup] = lc.draw(rng, int(dup.sum()) * k).reshape(-1, k)
                    codes.sort(axis=1)
            joined = table[codes[:, 0]]
            for j in range(1, k):
                joined = joined + "; " + table[codes[:, j]]
            out[rows] = joined
        return out

    def _dirty(self, rng: np.random.Generator, df: pd.DataFrame) -> None:
        """Break exactly round(dirty_rate * n) rows, each in one way the schema rejects."""
        n = len(df)
        k = round(self.dirty_rate * n)
        if k == 0:
            return
        rows = rng.choice(n, size=k, replace=False)
        kinds = rng.integers(0, len(_DIRTY_KINDS), size=k)
        for i, kind in enumerate(_DIRTY_KINDS):
            r = rows[kinds == i]
            if len(r) == 0:
                continue
            if kind == "alive_unknown":
                df.loc[r, "Alive"] = "Unknown"
            elif kind == "alive_ghost":
                df.loc[r, "Alive"] = "Ghost"
            elif kind == "alive_missing":
                df.loc[r, "Alive"] = None
            elif kind == "height_negative":
                df.loc[r, "Height (m)"] = -rng.uniform(0.5, 2.5, len(r)).round(2)
            elif kind == "height_absurd":
                df.loc[r, "Height (m)"] = MAX_HEIGHT_M * 10
            elif kind == "weight_zero":
                df.loc[r, "Weight (kg)"] = 0.0
            elif kind == "page_id_empty":
                df.loc[r, "PageID"] = ""
