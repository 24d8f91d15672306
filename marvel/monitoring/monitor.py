"""`LocalMonitor`: refresh the monitoring tables from the inference table, incrementally, on a TableStore.

Bookkeeping lives in `<monitoring>_state` (one row per refresh that changed something): the inference
table's version read up to, the labels and baseline versions, and a hash of the config that shapes the
metrics. A refresh reads only inference rows committed after that version (the change data feed), recomputes
only the windows they touch (plus the next window's CONSECUTIVE drift), and writes nothing when nothing is
new, so running it twice changes nothing. A new baseline version or a changed config rebuilds everything.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from marvel.core.cards import Card
from marvel.core.schemas import INPUT_REQUIRED, Labels
from marvel.core.tables import TableStore
from marvel.features.records import NUMERIC_INPUTS
from marvel.monitoring import alerts as alerting
from marvel.monitoring import report
from marvel.monitoring.drift import DRIFT_COLUMNS, Baseline, build_baseline, drift
from marvel.monitoring.parse import payload_to_monitoring
from marvel.monitoring.profile import PROFILE_COLUMNS, analysis_frame, profile
from marvel.monitoring.schemas import DriftMetrics, ModelMonitoring, MonitorState, ProfileMetrics
from marvel.monitoring.windows import parse_granularity, window_start

log = logging.getLogger(__name__)

# the model's required inputs, as the schema lists them, plus what the model answered and the label
DEFAULT_NUMERIC = [*NUMERIC_INPUTS, "probability"]
DEFAULT_CATEGORICAL = [*(c for c in INPUT_REQUIRED if c not in NUMERIC_INPUTS), "prediction", "label"]
VALIDATE_SAMPLE = 20_000
# bump when the meaning of a metric changes, so existing tables are rebuilt
METRICS_REVISION = 1


def _one_line(found: list, windows: int, changed: dict[str, Any]) -> str:
    cols = sorted({a.column_name for a in found})
    head = f"{windows} window(s), +{changed.get('rows_added', 0)} row(s), {changed.get('windows_refreshed', 0)} recomputed"
    return f"{head}; {len(found)} alert(s)" + (f" on {', '.join(cols)}" if cols else "")


def _plain(x: Any) -> Any:
    return OmegaConf.to_container(x, resolve=True) if isinstance(x, DictConfig) else x


class LocalMonitor:
    """Drift and quality from the inference table, with pandas on this machine."""

    def __init__(
        self,
        granularity: str = "30 minutes",
        inference_table: str = "custom_model_payload",
        monitoring_table: str = "model_monitoring",
        baseline_table: str | None = "train_set",
        labels_table: str = "labels",
        numeric: list[str] | None = None,
        categorical: list[str] | None = None,
        bins: int = 10,
        max_categories: int = 20,
        alerts: Mapping[str, Any] | None = None,
        fail_on_alert: bool = False,
        report_windows: int = 6,
    ) -> None:
        self.granularity = str(granularity)
        self.step = parse_granularity(self.granularity)
        self.inference_table = inference_table
        self.monitoring_table = monitoring_table
        self.baseline_table = baseline_table
        self.labels_table = labels_table
        self.numeric = list(_plain(numeric) or DEFAULT_NUMERIC)
        self.categorical = list(_plain(categorical) or DEFAULT_CATEGORICAL)
        self.bins = int(bins)
        self.max_categories = int(max_categories)
        self.rules: dict[str, Any] = dict(_plain(alerts) or {})
        self.fail_on_alert = bool(fail_on_alert)
        self.report_windows = int(report_windows)
        self._rows: pd.DataFrame | None = None

    # table names, as Lakehouse Monitoring names its outputs after the monitored table
    @property
    def profile_table(self) -> str:
        return f"{self.monitoring_table}_profile_metrics"

    @property
    def drift_table(self) -> str:
        return f"{self.monitoring_table}_drift_metrics"

    @property
    def state_table(self) -> str:
        return f"{self.monitoring_table}_state"

    def config_hash(self) -> str:
        shape = [
            METRICS_REVISION,
            self.granularity,
            self.numeric,
            self.categorical,
            self.bins,
            self.max_categories,
        ]
        return hashlib.sha1(json.dumps(shape).encode()).hexdigest()[:12]

    # ---------------------------------------------------------------------------------------------------
    def refresh(self, ctx: Any) -> dict[str, Any]:
        """Bring the monitoring tables up to date; returns alerts, a summary and (locally) the report card."""
        started = time.perf_counter()
        store: TableStore = ctx.store
        if not store.exists(self.inference_table):
            return {
                "alerts": [],
                "summary": f"nothing to monitor: table '{self.inference_table}' does not exist yet "
                "(serve the model with stages=[deploy] or run +experiment=drift)",
                "rows_added": 0,
                "windows_refreshed": 0,
            }
        self.timings: dict[str, float] = {}
        changed = self._update(store)
        profile_df = store.read(self.profile_table) if store.exists(self.profile_table) else pd.DataFrame()
        drift_df = store.read(self.drift_table) if store.exists(self.drift_table) else pd.DataFrame()
        found = (
            alerting.evaluate(drift_df, profile_df, self.rules, self.numeric, self.categorical)
            if not drift_df.empty
            else []
        )
        windows = int(profile_df["window_start"].nunique()) if not profile_df.empty else 0
        result: dict[str, Any] = {
            **changed,
            "windows": windows,
            "alerts": found,
            "alert_lines": [a.line() for a in found],
            "summary": _one_line(found, windows, changed),
            "details": alerting.summarise(found),
            "tables": [self.monitoring_table, self.profile_table, self.drift_table],
            "seconds": time.perf_counter() - started,
        }
        if getattr(ctx, "out_dir", None) is not None and not profile_df.empty:
            tick = time.perf_counter()
            result["card"] = self._report(ctx, store, profile_df, drift_df, found, result)
            self.timings["report"] = time.perf_counter() - tick
        result["timings"] = {k: round(v, 2) for k, v in self.timings.items()}
        result["seconds"] = time.perf_counter() - started
        return result

    # ---------------------------------------------------------------------------------------------------
    def _state(self, store: TableStore) -> pd.Series | None:
        if not store.exists(self.state_table):
            return None
        state = store.read(self.state_table)
        return None if state.empty else state.sort_values("refreshed_at").iloc[-1]

    def _labels(self, store: TableStore) -> pd.DataFrame:
        if not store.exists(self.labels_table):
            return pd.DataFrame({"Id": pd.Series(dtype=object), "label": pd.Series(dtype=float)})
        labels = Labels.validate(store.read(self.labels_table))  # whoever wrote it, the contract holds
        # a label may be corrected later: the latest per Id wins
        labels = labels.sort_values("labelled_at", kind="stable").drop_duplicates("Id", keep="last")
        return labels[["Id", "label"]].astype({"label": float})

    def _baseline(self, store: TableStore, version: int) -> Baseline:
        train = store.read(self.baseline_table, version) if version >= 0 and self.baseline_table else None
        return build_baseline(train, version, self.numeric, self.categorical, self.bins, self.max_categories)

    def _update(self, store: TableStore) -> dict[str, Any]:
        """Do the incremental work; returns what changed."""
        state: Any = self._state(store)
        payload_v = int(store.version(self.inference_table))  # type: ignore[arg-type]
        labels_v = store.version(self.labels_table)
        labels_v = -1 if labels_v is None else int(labels_v)
        base_v = store.version(self.baseline_table) if self.baseline_table else None
        base_v = -1 if base_v is None else int(base_v)
        config_hash = self.config_hash()
        full = (
            state is None
            or state["config_hash"] != config_hash
            or int(state["baseline_version"]) != base_v
            or not store.exists(self.monitoring_table)
        )
        if (
            not full
            and int(state["payload_version"]) == payload_v
            and int(state["labels_version"]) == labels_v
        ):
            return {"rows_added": 0, "windows_refreshed": 0, "rebuilt": False}

        tick = time.perf_counter()
        payload = (
            store.read(self.inference_table)
            if full
            else store.changes(self.inference_table, int(state["payload_version"]))
        )
        self.timings["read_payload"] = time.perf_counter() - tick
        tick = time.perf_counter()
        new_rows = payload_to_monitoring(payload)
        self.timings["parse"] = time.perf_counter() - tick
        # parse sets every dtype itself; pandera's per-value checks run on a sample, so a million-row
        # refresh does not spend seconds re-checking that strings are strings
        new_rows = ModelMonitoring.validate(
            new_rows, sample=min(len(new_rows), VALIDATE_SAMPLE), random_state=0
        )
        labels_changed = full or labels_v != int(state["labels_version"])
        tick = time.perf_counter()
        rows, new_rows, affected = self._update_monitoring_table(store, new_rows, full, labels_changed)
        self.timings["monitoring_table"] = time.perf_counter() - tick
        if full:
            # a rebuild replaces the metric tables even if no window has rows any more
            affected |= set(window_start(rows["timestamp"], self.step))
        self._refresh_metrics(store, rows, affected, base_v, full)
        self._rows = rows  # the report reuses them instead of reading the table again
        store.write(
            self.state_table,
            MonitorState.validate(
                pd.DataFrame(
                    {
                        "refreshed_at": [pd.Timestamp.now(tz="UTC").tz_localize(None)],
                        "payload_version": [payload_v],
                        "labels_version": [labels_v],
                        "baseline_version": [base_v],
                        "config_hash": [config_hash],
                        "rows_added": [len(new_rows)],
                        "windows_refreshed": [len(affected)],
                    }
                )
            ),
            mode="overwrite" if full else "append",
        )
        return {"rows_added": len(new_rows), "windows_refreshed": len(affected), "rebuilt": bool(full)}

    def _update_monitoring_table(
        self, store: TableStore, new_rows: pd.DataFrame, full: bool, labels_changed: bool
    ) -> tuple[pd.DataFrame, pd.DataFrame, set[pd.Timestamp]]:
        """Add new rows (labels joined) to the monitoring table; returns (all rows, new rows, windows changed).

        New labels rewrite the table (a label lands on an old row; Databricks would MERGE); otherwise new rows
        are appended. Requests already present are dropped: the inference table may have grown between
        reading its version and its change feed, and those commits are read again next time.
        """
        existing = new_rows.iloc[:0] if full else store.read(self.monitoring_table)
        existing = existing.astype(new_rows.dtypes.to_dict())
        if len(existing):
            new_rows = new_rows[~new_rows["databricks_request_id"].isin(existing["databricks_request_id"])]
        by_id = self._labels(store).set_index("Id")["label"]
        affected: set[pd.Timestamp] = set()
        if labels_changed:
            rows = pd.concat([existing, new_rows], ignore_index=True)
            before = rows["label"].to_numpy(copy=True)
            rows["label"] = rows["Id"].map(by_id).astype(float)
            after = rows["label"].to_numpy()
            relabelled = ~((after == before) | (np.isnan(after) & np.isnan(before)))
            is_new = np.arange(len(rows)) >= len(existing)
            affected |= set(window_start(rows["timestamp"], self.step)[relabelled | is_new])
            if full or relabelled.any() or len(new_rows):
                store.write(self.monitoring_table, rows, mode="overwrite")
        else:
            new_rows = new_rows.assign(label=new_rows["Id"].map(by_id).astype(float))
            rows = pd.concat([existing, new_rows], ignore_index=True) if len(existing) else new_rows
            if len(new_rows):
                store.write(self.monitoring_table, new_rows, mode="append")
            affected |= set(window_start(new_rows["timestamp"], self.step))
        return rows, new_rows, affected

    def _refresh_metrics(
        self, store: TableStore, rows: pd.DataFrame, affected: set[pd.Timestamp], base_v: int, full: bool
    ) -> None:
        """Recompute profile rows of `affected` windows and drift rows of those and the windows after them."""
        if not affected and not full:
            return
        wins = window_start(rows["timestamp"], self.step)
        present = set(wins.unique())
        drift_windows = affected | {w + self.step for w in affected if w + self.step in present}
        needed = drift_windows | {w - self.step for w in drift_windows}
        data = rows[wins.isin(needed).to_numpy()].assign(window_start=wins[wins.isin(needed)].to_numpy())

        tick = time.perf_counter()
        prof = profile(
            data[data["window_start"].isin(affected)],
            self.numeric,
            self.categorical,
            self.granularity,
            self.step,
        )
        self.timings["profile"] = time.perf_counter() - tick
        tick = time.perf_counter()
        baseline = self._baseline(store, base_v)
        dr = drift(
            data,
            sorted(drift_windows),
            baseline,
            self.numeric,
            self.categorical,
            self.granularity,
            self.step,
            self.max_categories,
        )
        self.timings["drift"] = time.perf_counter() - tick
        tick = time.perf_counter()
        prof = ProfileMetrics.validate(prof)
        dr = DriftMetrics.validate(dr)
        self._replace(store, self.profile_table, prof, affected, PROFILE_COLUMNS, full)
        self._replace(store, self.drift_table, dr, drift_windows, DRIFT_COLUMNS, full)
        self.timings["write_metrics"] = time.perf_counter() - tick

    @staticmethod
    def _replace(
        store: TableStore, name: str, new: pd.DataFrame, windows: set, columns: list[str], full: bool
    ) -> None:
        """Swap the rows of `windows` in a (small) metric table for `new`, in a stable order."""
        if not full and store.exists(name):
            old = store.read(name)
            old = old[~old["window_start"].isin(windows)]
            new = pd.concat([old.astype(new.dtypes.to_dict()), new], ignore_index=True) if len(old) else new
        keys = ["window_start", "model_id", "column_name"] + (
            ["drift_type"] if "drift_type" in columns else []
        )
        store.write(
            name, new[columns].sort_values(keys, kind="stable").reset_index(drop=True), mode="overwrite"
        )

    # ---------------------------------------------------------------------------------------------------
    def _report(
        self,
        ctx: Any,
        store: TableStore,
        profile_df: pd.DataFrame,
        drift_df: pd.DataFrame,
        found: list,
        result: dict[str, Any],
    ) -> Card:
        rows = self._rows if self._rows is not None else store.read(self.monitoring_table)
        self._rows = None
        wins = window_start(rows["timestamp"], self.step)
        recent_w = sorted(wins.unique())[-self.report_windows :]

        recent = analysis_frame(rows[wins.isin(recent_w).to_numpy()])
        base_v = store.version(self.baseline_table) if self.baseline_table else None
        baseline = self._baseline(store, -1 if base_v is None else int(base_v))
        facts = {
            "inference table": f"{self.inference_table} (v{store.version(self.inference_table)})",
            "baseline": f"{self.baseline_table} (v{base_v})",
            "granularity": self.granularity,
            "windows": result["windows"],
            "rows (monitoring table)": len(rows),
            "rows added by this refresh": result.get("rows_added", 0),
            "windows recomputed": result.get("windows_refreshed", 0),
            "alerts": len(found),
            "recent = last windows": len(recent_w),
        }
        drift_type = self.rules.get("drift_type", "BASELINE")
        return report.build(
            ctx.out_dir, profile_df, drift_df, found, baseline, recent, self.numeric, facts, drift_type
        )
