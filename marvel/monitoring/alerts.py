"""Alert rules over the metric tables: thresholds per metric, per column kind, overridable per column.

A rule is a set of conditions that must *all* hold, e.g. "KS p-value below 0.005 and KS statistic above
0.2": significant (not noise at this window's size) and large (worth a person's time). `monitor.alerts`:

    drift_type: BASELINE          # which comparison alerts (CONSECUTIVE also fires once at every step change)
    last_windows: null            # only the N most recent windows count (null: every window in the tables)
    numeric: {ks_test_pvalue: {below: 0.005}, ks_test_statistic: {above: 0.2}}
    categorical: {chi_squared_test_pvalue: {below: 0.005}, population_stability_index: {above: 0.1}}
    columns: {Teams: null}        # per-column rule replacing its kind's (null: never alert on it)
    quality: {accuracy_score: {below: 0.6}}   # on the ":table" rows of the profile table
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from marvel.core.errors import MarvelError
from marvel.monitoring.schemas import ALL_MODELS, TABLE_COLUMN


class DriftAlert(MarvelError):
    """Raised with `monitor.fail_on_alert=true`: a scheduler sees a distinct exit code for "drift", not a bug."""

    exit_code = 3


@dataclass(frozen=True)
class Alert:
    window_start: pd.Timestamp
    model_id: str
    column_name: str
    kind: str  # "drift" | "quality"
    rule: str  # the conditions that fired, with the measured values

    def line(self) -> str:
        model = "" if self.model_id == ALL_MODELS else f" [{self.model_id}]"
        return f"{self.window_start:%Y-%m-%d %H:%M} {self.column_name}{model}: {self.rule}"


def _mask(frame: pd.DataFrame, conditions: Mapping[str, Any]) -> tuple[pd.Series, list[str]]:
    """Rows where every condition holds (NaN never fires), and the metric names involved."""
    ok = pd.Series(True, index=frame.index)
    names: list[str] = []
    for metric, cond in conditions.items():
        if metric not in frame.columns:
            raise MarvelError(f"monitor.alerts: unknown metric '{metric}'; use a metric table column")
        values = pd.to_numeric(frame[metric], errors="coerce")
        for op, threshold in (cond or {}).items():
            if op == "below":
                ok &= values < float(threshold)
            elif op == "above":
                ok &= values > float(threshold)
            else:
                raise MarvelError(f"monitor.alerts.{metric}: use 'below' or 'above', got '{op}'")
        names.append(metric)
    return ok.fillna(False), names


def _describe(row: pd.Series, conditions: Mapping[str, Any]) -> str:
    parts = []
    for metric, cond in conditions.items():
        for op, threshold in (cond or {}).items():
            parts.append(f"{metric}={row[metric]:.4g} ({op} {threshold})")
    return ", ".join(parts)


def _recent(frame: pd.DataFrame, last_windows: int | None) -> pd.DataFrame:
    if not last_windows or frame.empty:
        return frame
    keep = np.sort(frame["window_start"].unique())[-int(last_windows) :]
    return frame[frame["window_start"].isin(keep)]


def evaluate(
    drift: pd.DataFrame,
    profile: pd.DataFrame,
    rules: Mapping[str, Any],
    numeric: list[str],
    categorical: list[str],
) -> list[Alert]:
    """Every alert the tables raise under `rules` (the `monitor.alerts` block)."""
    alerts: list[Alert] = []
    per_column: Mapping[str, Any] = rules.get("columns") or {}
    d = _recent(drift[drift["drift_type"] == rules.get("drift_type", "BASELINE")], rules.get("last_windows"))
    for col in [*numeric, *categorical]:
        if col in per_column:
            conditions = per_column[col]
        else:
            conditions = rules.get("numeric" if col in numeric else "categorical")
        if not conditions:
            continue
        rows = d[d["column_name"] == col]
        mask, _ = _mask(rows, conditions)
        for _, r in rows[mask].iterrows():
            alerts.append(Alert(r["window_start"], r["model_id"], col, "drift", _describe(r, conditions)))
    quality = rules.get("quality") or {}
    if quality:
        t = _recent(profile[profile["column_name"] == TABLE_COLUMN], rules.get("last_windows"))
        mask, _ = _mask(t, quality)
        for _, r in t[mask].iterrows():
            alerts.append(
                Alert(r["window_start"], r["model_id"], TABLE_COLUMN, "quality", _describe(r, quality))
            )
    return sorted(alerts, key=lambda a: (a.window_start, a.column_name, a.model_id))


def summarise(alerts: list[Alert]) -> str:
    """One line per drifted column: in which windows (the stage prints this)."""
    if not alerts:
        return "no alerts"
    lines = []
    by_col: dict[tuple[str, str], list[Alert]] = {}
    for a in alerts:
        by_col.setdefault((a.column_name, a.model_id), []).append(a)
    for (col, model), items in sorted(by_col.items()):
        when = ", ".join(f"{a.window_start:%m-%d %H:%M}" for a in items[:6])
        more = f" (+{len(items) - 6} more)" if len(items) > 6 else ""
        tag = "" if model == ALL_MODELS else f" [{model}]"
        lines.append(f"{col}{tag}: {len(items)} window(s): {when}{more}")
    return "\n".join(lines)
