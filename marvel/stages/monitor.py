"""Stage `monitor`: refresh drift and quality tables from the inference table, report, alert.

`cfg.monitor` names the monitor by `_target_` (LocalMonitor here, a Databricks monitor on `+env=...`); each
has `refresh(ctx) -> {"alerts": [...], "summary": str, ...}`. Alerts are printed and the stage exits 0,
unless `monitor.fail_on_alert=true`, which raises `DriftAlert` (exit code 3) for schedulers.
"""

from __future__ import annotations

import logging
from typing import Any

from hydra.utils import instantiate

from marvel.core.context import RunContext
from marvel.core.results import MonitorResult
from marvel.monitoring.alerts import DriftAlert
from marvel.serving.recovery import recover as recover_inference_log

log = logging.getLogger(__name__)


def run(ctx: RunContext) -> MonitorResult:
    recover_inference_log(ctx)  # rows a crashed local server left in its journal reach the table first
    monitor = instantiate(ctx.cfg.monitor, _convert_="all")
    found: dict[str, Any] = dict(monitor.refresh(ctx))
    alerts = list(found.pop("alerts", []))
    lines = found.pop("alert_lines", None) or [str(a) for a in alerts]
    card = found.pop("card", None)
    result = MonitorResult(
        alerts=alerts,
        alert_lines=lines,
        summary=str(found.pop("summary")),
        rows_added=int(found.pop("rows_added", 0)),
        windows=int(found.pop("windows", 0)),
        windows_refreshed=int(found.pop("windows_refreshed", 0)),
        details=found,
    )
    print(f"monitor: {result.summary}", flush=True)
    for line in lines[:50]:
        print(f"  drift alert: {line}", flush=True)
    if len(lines) > 50:
        print(f"  ... and {len(lines) - 50} more (see the report)", flush=True)
    ctx.tracker.log_metrics(
        {
            "monitor_alerts": len(alerts),
            "monitor_rows_added": result.rows_added,
            "monitor_windows": result.windows,
            "monitor_windows_refreshed": result.windows_refreshed,
        }
    )
    if card is not None:
        result.report = str(ctx.tracker.log_card(card))
        print(f"monitor: report {result.report}", flush=True)
    if alerts and ctx.cfg.monitor.get("fail_on_alert", False):
        columns = sorted({getattr(a, "column_name", str(a)) for a in alerts})
        raise DriftAlert(
            f"monitoring raised {len(alerts)} alert(s) on {', '.join(columns)} (monitor.fail_on_alert=true); "
            "see the monitor report"
        )
    return result
