"""The monitoring report: one HTML page (plots embedded, also kept as PNGs) a person can open.

Drift over time per feature, baseline vs recent distributions, prediction and label rates, quality per
window (real beside CBPE-estimated), and the alerts with their windows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from marvel.core.cards import Card
from marvel.core.labels import ALIVE
from marvel.monitoring.alerts import Alert, summarise
from marvel.monitoring.drift import Baseline, analysis_frame
from marvel.monitoring.schemas import ALL_MODELS, TABLE_COLUMN
from marvel.monitoring.stats import MISSING, OTHER, bucket_counts

# The figure plotted over time per column kind: the effect size the default alert rules use.
EFFECT = {"numeric": "ks_test.statistic", "categorical": "population_stability_index"}


def _grid(n: int) -> tuple[Figure, Any]:
    cols = min(3, max(n, 1))
    rows = int(np.ceil(max(n, 1) / cols))
    fig = Figure(figsize=(4.2 * cols, 2.9 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    # fixed spacing: tight_layout measures every label's text, seconds per report
    height = 2.9 * rows
    fig.subplots_adjust(
        left=0.06, right=0.98, top=1 - 0.5 / height, bottom=0.5 / height, hspace=0.5, wspace=0.25
    )
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def _whole(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the whole window (all models, no slice)."""
    if frame.empty:
        return frame
    return frame[(frame["model_id"] == ALL_MODELS) & frame["slice_key"].isna()]


def plot_drift_over_time(
    drift: pd.DataFrame, alerts: list[Alert], numeric: list[str], drift_type: str, path: Path
) -> Path | None:
    """One heatmap, columns x windows, of the effect size (KS statistic for numbers, total variation for
    categories, both in [0, 1]); alerting cells are marked. One axes: cheap to draw at any history."""
    d = _whole(drift)
    d = d[d["drift_type"] == drift_type] if len(d) else d
    columns = list(dict.fromkeys(d["column_name"])) if len(d) else []
    if not columns:
        return None
    effect = np.where(d["column_name"].isin(numeric), d["ks_test.statistic"], d["tv_distance"])
    grid = d.assign(effect=effect).pivot_table(
        index="column_name", columns="window.start", values="effect", aggfunc="first", dropna=False
    )
    grid = grid.reindex(columns)
    fired = {
        (a.column_name, a.window_start)
        for a in alerts
        if a.kind == "drift" and a.model_id == ALL_MODELS and a.slice_key is None
    }
    wins = list(grid.columns)
    fig = Figure(figsize=(11, 0.32 * len(columns) + 1.6))
    ax = fig.subplots()
    fig.subplots_adjust(left=0.14, right=0.92, top=0.88, bottom=0.28)
    image = ax.imshow(grid.to_numpy(dtype=float), aspect="auto", cmap="Blues", vmin=0, vmax=1)
    hits = [(wins.index(w), columns.index(c)) for c, w in fired if c in columns and w in wins]
    if hits:
        xs, ys = [h[0] for h in hits], [h[1] for h in hits]
        ax.scatter(xs, ys, marker="x", color="red", s=18, label="alert")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.15))
    ax.set_yticks(range(len(columns)), columns, fontsize=7)
    ticks = np.unique(np.linspace(0, len(wins) - 1, min(len(wins), 8)).astype(int))
    ax.set_xticks(ticks, [f"{pd.Timestamp(wins[t]):%m-%d %H:%M}" for t in ticks], fontsize=7, rotation=30)
    fig.colorbar(image, ax=ax, fraction=0.025, pad=0.01)
    ax.set_title(
        f"Drift per window vs {drift_type.lower()}: KS statistic (numbers), total variation (categories)",
        fontsize=9,
    )
    fig.savefig(path, dpi=80)
    return path


def plot_distributions(
    baseline: Baseline | None, recent: pd.DataFrame, numeric: list[str], path: Path
) -> Path | None:
    if baseline is None:
        return None
    recent = analysis_frame(recent)
    columns = [c for c in baseline.refs if c in recent.columns and c in numeric]
    if not columns or recent.empty:
        return None
    fig, axes = _grid(len(columns))
    for ax, col in zip(axes, columns, strict=False):
        ref = baseline.refs[col]
        if col in numeric:
            cur = recent[col].dropna().to_numpy(dtype=float)
            both = np.concatenate([ref.values, cur])
            # heights and weights have giants (hundreds of metres/tonnes): plot the bulk, 1st-99th percentile
            lo, hi = np.quantile(both, [0.01, 0.99]) if len(both) else (0, 1)
            wide = lo > 0 and hi / lo > 20  # log10 when the bulk spans orders of magnitude
            show = np.log10 if wide else (lambda v: v)
            bins = np.linspace(show(lo), show(hi), 30)
            # histograms as one filled step line each (bars are a patch per bin: many times slower to draw)
            for values, name in ((ref.values, "baseline"), (cur, "recent")):
                if len(values):
                    heights, _ = np.histogram(show(np.clip(values, lo, hi)), bins=bins, density=True)
                    ax.stairs(heights, bins, fill=True, alpha=0.5, label=name)
            if wide:
                ax.set_xlabel(f"log10 {col}", fontsize=7)
        ax.set_title(col, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("Baseline (the serving model's training and test rows) vs recent windows")
    fig.savefig(path, dpi=80)
    return path


def category_shares(
    baseline: Baseline | None, recent: pd.DataFrame, categorical: list[str]
) -> list[list[Any]]:
    """Rows (column, value, baseline share, recent share) of each categorical column's top values."""
    if baseline is None or recent.empty:
        return []
    recent = analysis_frame(recent)
    out: list[list[Any]] = []
    for col in categorical:
        if col not in baseline.refs or col not in recent.columns:
            continue
        cats = baseline.categories.get(col, [])[:6]
        b = bucket_counts(baseline.refs[col].counts, cats)
        c = bucket_counts(recent[col].value_counts(dropna=False), cats)
        for k in [*cats, OTHER, MISSING]:
            if b[k] + c[k] > 0:
                out.append([col, str(k)[:24], b[k] / max(b.sum(), 1), c[k] / max(c.sum(), 1)])
    return out


def quality_table(profile: pd.DataFrame) -> pd.DataFrame:
    """The `:table` rows of whole windows, with F1 of the "alive" class pulled out of its struct."""
    t = _whole(profile)
    t = t[t["column_name"] == TABLE_COLUMN].sort_values("window.start") if len(t) else t
    if t.empty:
        return t
    per_class = t["f1_score.one_vs_all"].map(lambda m: dict(m) if m is not None else {})
    return t.assign(f1_alive=per_class.map(lambda m: m.get(ALIVE, np.nan)).astype(float))


def plot_rates_and_quality(profile: pd.DataFrame, path: Path) -> Path | None:
    t = quality_table(profile)
    if t.empty:
        return None
    fig = Figure(figsize=(11, 3.4))
    a1, a2 = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.05, right=0.98, top=0.9, bottom=0.3, wspace=0.15)
    a1.plot(t["window.start"], t["marvel_prediction_rate"], marker=".", label="predicted alive")
    a1.plot(t["window.start"], t["marvel_label_rate"], marker=".", label="labelled alive")
    a1.set_title("Prediction and label rates", fontsize=9)
    for name, est in (("accuracy_score", "accuracy_score"), ("f1_alive", "f1_score")):
        a2.plot(t["window.start"], t[name], "-", marker=".", label=name)
        a2.plot(t["window.start"], t[f"marvel_estimated_{est}"], "--", label=f"{est} (CBPE)")
    a2.set_title("Quality per window: real vs estimated", fontsize=9)
    for ax in (a1, a2):
        ax.legend(fontsize=7)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    fig.savefig(path, dpi=80)
    return path


def build(
    out_dir: Path,
    profile: pd.DataFrame,
    drift: pd.DataFrame,
    alerts: list[Alert],
    baseline: Baseline | None,
    recent: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    facts: dict[str, Any],
    drift_type: str,
) -> Card:
    """The report card; PNGs go to `out_dir/plots`."""
    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    card = Card("monitor", "Monitoring: drift and model quality")
    card.table("Refresh", facts)
    card.text("Open alerts", summarise(alerts))
    for title, png in (
        (
            "Drift over time",
            plot_drift_over_time(drift, alerts, numeric, drift_type, plots / "monitor_drift.png"),
        ),
        (
            "Baseline vs recent: numbers",
            plot_distributions(baseline, recent, numeric, plots / "monitor_dist.png"),
        ),
        ("Rates and quality", plot_rates_and_quality(profile, plots / "monitor_quality.png")),
    ):
        if png is not None:
            card.image(title, png)
    shares = category_shares(baseline, recent, categorical)
    if shares:
        card.grid(
            "Baseline vs recent: categories (shares)", ["column", "value", "baseline", "recent"], shares
        )
    t = quality_table(profile)
    cols = ["count", "marvel_labelled_count", "marvel_prediction_rate", "marvel_label_rate"]
    cols += ["accuracy_score", "marvel_estimated_accuracy_score", "f1_alive", "marvel_estimated_f1_score"]
    cols += ["marvel_estimated_accuracy_drop"]
    rows = [] if t.empty else t[["window.start", *cols]].to_numpy().tolist()
    card.grid(
        "Quality per window",
        ["window", *(c.removeprefix("marvel_") for c in cols)],
        [[f"{pd.Timestamp(r[0]):%Y-%m-%d %H:%M}", *r[1:]] for r in rows],
    )
    if alerts:
        card.grid(
            "Alert details",
            ["window", "column", "model", "rule"],
            [[f"{a.window_start:%Y-%m-%d %H:%M}", a.column_name, a.model_id, a.rule] for a in alerts[:200]],
        )
    return card
