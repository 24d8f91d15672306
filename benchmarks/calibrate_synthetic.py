"""Compute the synthetic generator's calibration from the real Kaggle sample and print it as YAML.

    uv run python benchmarks/calibrate_synthetic.py [path/to/marvel_sample.csv] > marvel/data/synthetic/calibration.yaml

(the CSV defaults to $MARVEL_REAL_DATA). The output is the file the generator reads when `data.calibration` is
null, as in conf/data/synthetic.yaml. Only statistics leave the real file
(shares, rates, quantiles, model coefficients and the most frequent category values); no row is printed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from marvel.data.synthetic.alive import ALIVE_FEATURES, alive_features

TOP_UNIVERSES = 30
TOP_ORIGINS = 40
TOP_TEAMS = 100
MIN_GENDER_COUNT = 2  # rarer spellings are one-offs of a single row: kept only as a tail share
QUANTILE_KNOTS = [0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0]
POOL_SIZES = {"universe": 50_000, "origin": 3_000, "teams": 20_000, "creators": 20_000}

# Illustrative wiki-markup spellings for the rare Gender tail (the README quotes the first one).
RARE_GENDERS = [
    "Female [ 6 ] (Possibly Non-Binary, See Notes )",
    "Male/Female [ 3 ]",
    "Male/Female",
    "Male , Female",
    "Non-Binary",
    "female",
]


def r(x: float, nd: int = 5) -> float:
    return round(float(x), nd)


def fit_zipf_exponent(n_draws: int, n_distinct: int, pool_size: int, offset: float = 0.0) -> float:
    """Exponent s of p_k ~ (k + offset)^-s over pool_size ranks whose expected distinct count matches.

    E[distinct] = sum_k 1 - (1 - p_k)^n decreases in s, so bisection finds it.
    """
    ranks = np.arange(1, pool_size + 1, dtype=np.float64) + offset

    def expected(s: float) -> float:
        p = ranks**-s
        p /= p.sum()
        return float(np.sum(1.0 - np.exp(n_draws * np.log1p(-p))))

    lo, hi = 0.0, 4.0
    if expected(lo) <= n_distinct:
        return 0.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if expected(mid) > n_distinct else (lo, mid)
    return r((lo + hi) / 2, 4)


def ranked(s: pd.Series) -> pd.Series:
    """Counts of each value, most frequent first; ties by value, so the output does not depend on hashing
    (pandas' order of equal counts changes with PYTHONHASHSEED)."""
    return s.value_counts().sort_index(kind="stable").sort_values(ascending=False, kind="stable")


def shares(s: pd.Series, top: int | None, n: int, min_count: int = 1) -> dict[str, float]:
    vc = ranked(s.dropna())
    vc = vc[vc >= min_count]
    if top is not None:
        vc = vc.head(top)
    return {str(k): r(v / n) for k, v in vc.items()}


def categorical(s: pd.Series, top: int | None, kind: str | None, min_count: int = 1) -> dict[str, Any]:
    n = len(s)
    values = shares(s, top, n, min_count)
    out: dict[str, Any] = {"missing": r(s.isna().mean()), "values": values}
    rest = s.dropna()[~s.dropna().isin(values)]
    if len(rest) and kind is not None:
        out["tail"] = tail(rest, len(rest) / n, kind, len(values))
    return out


def tail(rest: pd.Series, share: float, kind: str, offset: int) -> dict[str, Any]:
    """Zipf-Mandelbrot tail: the rank offset continues the named values' ranks, the exponent matches the
    distinct count. Without named values (creators), the offset is chosen to match the top value's share."""
    n, distinct, pool = len(rest), rest.nunique(), POOL_SIZES[kind]
    if offset == 0:
        top_share = rest.value_counts().iloc[0] / n

        def top_error(o: float) -> float:
            s = fit_zipf_exponent(n, distinct, pool, o)
            w = (np.arange(1, pool + 1) + o) ** -s
            return abs(w[0] / w.sum() - top_share)

        offset = min([0, 1, 2, 3, 5, 8, 13, 20, 30, 50, 80, 130, 200], key=top_error)
    return {
        "share": r(share),
        "pool_size": pool,
        "rank_offset": offset,
        "zipf_exponent": fit_zipf_exponent(n, distinct, pool, offset),
    }


def list_column(s: pd.Series, top: int, kind: str) -> dict[str, Any]:
    items = s.dropna().str.split("; ").explode()
    lengths = s.dropna().str.split("; ").str.len().value_counts(normalize=True).sort_index()
    top_counts = ranked(items).head(top)
    rest = items[~items.isin(top_counts.index)]
    return {
        "missing": r(s.isna().mean()),
        "lengths": {int(k): r(v) for k, v in lengths.items()},
        "values": {str(k): r(v / len(items)) for k, v in top_counts.items()},
        "tail": tail(rest, len(rest) / len(items), kind, len(top_counts)),
    }


def quantiles(s: pd.Series) -> dict[float, float]:
    q = s.dropna().quantile(QUANTILE_KNOTS)
    return {float(k): r(v, 4) for k, v in q.items()}


def calibrate(df: pd.DataFrame) -> tuple[dict[str, Any], dict[str, str]]:
    """The calibration block and a one-line comment per key."""
    n = len(df)
    labelled = df[df["Alive"].isin(["Alive", "Dead"])]
    y = labelled["Alive"].eq("Alive").astype(int)

    uni = categorical(df["Universe"], TOP_UNIVERSES, "universe")
    tail_uni = df["Universe"][~df["Universe"].isin(uni["values"])].dropna().drop_duplicates()
    earth = tail_uni.str.extract(r"^Earth-(\d+)$")[0].dropna()
    uni["tail"]["trn_share"] = r(tail_uni.str.match(r"^Earth-TRN\d+$").mean())
    uni["tail"]["digits"] = {
        int(k): r(v) for k, v in earth.str.len().value_counts(normalize=True).sort_index().items()
    }

    gender = categorical(df["Gender"], None, None, MIN_GENDER_COUNT)
    rare = df["Gender"].dropna()[~df["Gender"].dropna().isin(gender["values"])]
    gender["tail"] = {"share": r(len(rare) / n), "values": RARE_GENDERS, "zipf_exponent": 0.0}

    h, w = df["Height (m)"], df["Weight (kg)"]
    both = h.notna() & w.notna()
    words = df["Name"].str.split().str.len().clip(upper=3).value_counts(normalize=True).sort_index()

    x = alive_features(labelled)
    lr = LogisticRegression(C=1.0, max_iter=2000).fit(x.to_numpy(), y.to_numpy())
    auc = roc_auc_score(y, lr.predict_proba(x.to_numpy())[:, 1])

    cal: dict[str, Any] = {
        "alive_rate": r(y.mean()),
        "universe": uni,
        "identity": categorical(df["Identity"], None, None),
        "gender": gender,
        "marital_status": categorical(df["Marital Status"], None, None),
        "origin": categorical(df["Origin"], TOP_ORIGINS, "origin"),
        "teams": list_column(df["Teams"], TOP_TEAMS, "teams"),
        "creators": list_column(df["Creators"], 0, "creators"),
        "height": {"quantiles": quantiles(h)},
        "weight": {"quantiles": quantiles(w)},
        "measurements": {
            "both": r(both.mean()),
            "height_only": r((h.notna() & w.isna()).mean()),
            "weight_only": r((h.isna() & w.notna()).mean()),
            "rank_correlation": r(h[both].rank().corr(w[both].rank()), 4),
        },
        "name": {"words": {int(k): r(v) for k, v in words.items()}, "person_share": 0.5},
        "alive_model": {
            "intercept": r(lr.intercept_[0], 4),
            "coefficients": {f: r(c, 4) for f, c in zip(ALIVE_FEATURES, lr.coef_[0], strict=True)},
        },
    }
    comments = {
        "alive_rate": f"share of 'Alive' among the {len(labelled)} rows labelled Alive/Dead",
        "universe": f"top {TOP_UNIVERSES} universes by share of rows; the rest is a generated Zipf tail of "
        f"'Earth-NNNN'/'Earth-TRNNNN' names ({df['Universe'].nunique()} distinct in the sample)",
        "identity": "shares of rows; missing = share of empty cells",
        "gender": f"values seen at least {MIN_GENDER_COUNT} times; the rest is a tail of wiki-markup-like "
        "spellings (illustrative, uniform)",
        "marital_status": "shares of rows",
        "origin": f"top {TOP_ORIGINS} verbatim strings (case variants kept apart); the tail is generated "
        f"free text fitted to the distinct count ({df['Origin'].nunique()} in the sample)",
        "teams": f"missing = no team; lengths = P(k teams | any); values = top {TOP_TEAMS} team names as "
        "shares of team slots; tail = generated team names",
        "creators": "as teams; all creator names are generated (Zipf tail fitted to the distinct count)",
        "height": "metres, quantile knots of the known values (generator interpolates log-linearly)",
        "weight": "kilograms, as height",
        "measurements": "which of height/weight is known, and the Spearman correlation where both are",
        "name": "words per character name (3 = 3 or more); person_share is a design choice, not fitted",
        "alive_model": f"logistic regression of Alive on marvel.data.synthetic.alive.alive_features "
        f"(in-sample ROC AUC {auc:.3f}); the generator shifts the intercept to hit alive_rate",
    }
    return cal, comments


def to_yaml(cal: dict[str, Any], comments: dict[str, str], source: str, n: int) -> str:
    lines = [
        "# Computed by benchmarks/calibrate_synthetic.py from the real Kaggle sample",
        f"# ({os.path.basename(source)}, {n} rows). Statistics only: no row of the real file is stored here.",
    ]
    for key, value in cal.items():
        lines.append(f"# {key}: {comments[key]}")
        lines.append(yaml.safe_dump({key: value}, sort_keys=False, allow_unicode=True, width=200).rstrip())
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="?", default=os.environ.get("MARVEL_REAL_DATA"), help="real sample CSV")
    args = ap.parse_args(argv)
    if not args.csv or not os.path.exists(args.csv):
        print("error: give the real sample CSV path or set MARVEL_REAL_DATA", file=sys.stderr)
        return 2
    df = pd.read_csv(args.csv, index_col=0)
    cal, comments = calibrate(df)
    text = to_yaml(cal, comments, args.csv, len(df))
    # Guard the rule: an id column value must never be printed.
    assert not re.search(r"https://marvel\.fandom\.com/wiki/", text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
