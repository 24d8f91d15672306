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
from marvel.monitoring.alerts import Alert, summarise
from marvel.monitoring.drift import Baseline
from marvel.monitoring.schemas import ALL_MODELS, TABLE_COLUMN
from marvel.monitoring.stats import MISSING, OTHER, bucket_counts

# The figure plotted over time per column kind: the effect size the default alert rules use.
EFFECT = {"numeric": "ks_test_statistic", "categorical": "population_stability_index"}


def _grid(n: int) -> tuple[Figure, Any]:
    cols = min(3, max(n, 1))
    rows = int(np.ceil(max(n, 1) / cols))
    fig = Figure(figsize=(4.2 * cols, 2.8 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def plot_drift_over_time(
    drift: pd.DataFrame, alerts: list[Alert], drift_type: str, path: Path
) -> Path | None:
    d = drift[(drift["drift_type"] == drift_type) & (drift["model_id"] == ALL_MODELS)]
    columns = list(dict.fromkeys(d["column_name"]))
    if not columns:
        return None
    fired = {
        (a.column_name, a.window_start) for a in alerts if a.kind == "drift" and a.model_id == ALL_MODELS
    }
    fig, axes = _grid(len(columns))
    for ax, col in zip(axes, columns, strict=False):
        rows = d[d["column_name"] == col].sort_values("window_start")
        metric = EFFECT[rows["data_type"].iloc[0]]
        ax.plot(rows["window_start"], rows[metric], marker=".", lw=1)
        hit = rows[[(col, w) in fired for w in rows["window_start"]]]
        ax.scatter(hit["window_start"], hit[metric], color="red", zorder=3, label="alert")
        ax.set_title(f"{col}: {metric}", fontsize=9)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    fig.suptitle(f"Drift per window ({drift_type.lower()}); red = alert")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    return path


def plot_distributions(
    baseline: Baseline, recent: pd.DataFrame, numeric: list[str], path: Path
) -> Path | None:
    columns = [c for c in baseline.refs if c in recent.columns]
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
            wide = lo > 0 and hi / lo > 20  # log scale when the bulk spans orders of magnitude
            bins = np.geomspace(lo, hi, 30) if wide else np.linspace(lo, hi, 30)
            if wide:
                ax.set_xscale("log")
            ax.hist(np.clip(ref.values, lo, hi), bins=bins, density=True, alpha=0.5, label="baseline")
            if len(cur):
                ax.hist(np.clip(cur, lo, hi), bins=bins, density=True, alpha=0.5, label="recent")
        else:
            cats = baseline.categories.get(col, [])[:8]
            b = bucket_counts(ref.counts, cats)
            c = bucket_counts(recent[col].value_counts(dropna=False), cats)
            keep = [k for k in [*cats, OTHER, MISSING] if b[k] + c[k] > 0]
            x = np.arange(len(keep))
            ax.bar(x - 0.2, (b / max(b.sum(), 1))[keep], width=0.4, label="baseline")
            ax.bar(x + 0.2, (c / max(c.sum(), 1))[keep], width=0.4, label="recent")
            ax.set_xticks(x, [str(k)[:12] for k in keep], rotation=60, fontsize=7)
        ax.set_title(col, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("Baseline (train_set) vs recent windows")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    return path


def plot_rates_and_quality(profile: pd.DataFrame, path: Path) -> Path | None:
    t = profile[(profile["column_name"] == TABLE_COLUMN) & (profile["model_id"] == ALL_MODELS)]
    if t.empty:
        return None
    t = t.sort_values("window_start")
    fig = Figure(figsize=(11, 3.2))
    a1, a2 = fig.subplots(1, 2)
    a1.plot(t["window_start"], t["prediction_rate"], marker=".", label="predicted alive")
    a1.plot(t["window_start"], t["label_rate"], marker=".", label="labelled alive")
    a1.set_title("Prediction and label rates", fontsize=9)
    for name, style in (("accuracy_score", "-"), ("f1_score", "-")):
        a2.plot(t["window_start"], t[name], style, marker=".", label=name)
        a2.plot(t["window_start"], t[f"estimated_{name}"], "--", label=f"{name} (CBPE)")
    a2.set_title("Quality per window: real vs estimated", fontsize=9)
    for ax in (a1, a2):
        ax.legend(fontsize=7)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    return path


def build(
    out_dir: Path,
    profile: pd.DataFrame,
    drift: pd.DataFrame,
    alerts: list[Alert],
    baseline: Baseline,
    recent: pd.DataFrame,
    numeric: list[str],
    facts: dict[str, Any],
    drift_type: str,
) -> Card:
    """The report card; PNGs go to `out_dir/plots`."""
    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    card = Card("monitor", "Monitoring: drift and model quality")
    card.table("Refresh", facts)
    card.text("Alerts", summarise(alerts))
    for title, png in (
        ("Drift over time", plot_drift_over_time(drift, alerts, drift_type, plots / "monitor_drift.png")),
        ("Baseline vs recent", plot_distributions(baseline, recent, numeric, plots / "monitor_dist.png")),
        ("Rates and quality", plot_rates_and_quality(profile, plots / "monitor_quality.png")),
    ):
        if png is not None:
            card.image(title, png)
    t = profile[(profile["column_name"] == TABLE_COLUMN) & (profile["model_id"] == ALL_MODELS)]
    cols = ["count", "labelled_count", "prediction_rate", "label_rate", "accuracy_score"]
    cols += ["estimated_accuracy_score", "f1_score", "estimated_f1_score", "roc_auc"]
    card.grid(
        "Quality per window",
        ["window", *cols],
        [[f"{r.window_start:%Y-%m-%d %H:%M}", *[getattr(r, c) for c in cols]] for r in t.itertuples()],
    )
    if alerts:
        card.grid(
            "Alert details",
            ["window", "column", "model", "rule"],
            [[f"{a.window_start:%Y-%m-%d %H:%M}", a.column_name, a.model_id, a.rule] for a in alerts[:200]],
        )
    return card
