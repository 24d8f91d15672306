"""Stage `monitor`: refresh drift and quality tables from the inference table, report, alert.

`cfg.monitor` names the monitor by `_target_` (LocalMonitor here, a Databricks monitor on `+env=...`); each
has `refresh(ctx) -> {"alerts": [...], "summary": str, ...}`, where `alerts` are the alerts new in this
refresh. They are printed and the stage exits 0, unless `monitor.fail_on_alert=true`, which raises
`DriftAlert` (exit code 3) for schedulers: only on new alerts, so a refresh that finds nothing new exits 0
however many alerts are still open.
"""

from __future__ import annotations

import logging
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from marvel.core.context import RunContext
from marvel.core.errors import MarvelError
from marvel.core.results import MonitorResult
from marvel.monitoring.alerts import DriftAlert
from marvel.serving.recovery import recover as recover_inference_log

log = logging.getLogger(__name__)


def build(cfg: DictConfig) -> Any:
    """The configured monitor; its config errors as one line (Hydra wraps what the constructor raises)."""
    try:
        return instantiate(cfg.monitor, _convert_="all")
    except Exception as exc:  # InstantiationException around the constructor's own error
        cause = exc.__cause__ or exc
        if isinstance(cause, MarvelError):
            raise cause from None
        if isinstance(cause, TypeError) and "argument" in str(cause):
            raise MarvelError(
                f"monitor: {cause} (an option the monitor does not have; conf/monitor/ lists its options)"
            ) from None
        raise


def run(ctx: RunContext) -> MonitorResult:
    recover_inference_log(ctx)  # rows a crashed local server left in its journal reach the table first
    monitor = build(ctx.cfg)
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
        alerts_open=int(found.pop("alerts_open", 0)),
        alerts_resolved=int(found.pop("alerts_resolved", 0)),
        rows_quarantined=int(found.pop("rows_quarantined", 0)),
        notes=list(found.pop("notes", [])),
        details=found,
    )
    print(f"monitor: {result.summary}", flush=True)
    for note in result.notes:
        print(f"  monitor: {note}", flush=True)
    for line in lines[:50]:
        print(f"  new alert: {line}", flush=True)
    if len(lines) > 50:
        print(f"  ... and {len(lines) - 50} more (see the report)", flush=True)
    ctx.tracker.log_metrics(
        {
            "monitor_alerts": len(alerts),
            "monitor_alerts_open": result.alerts_open,
            "monitor_alerts_resolved": result.alerts_resolved,
            "monitor_rows_added": result.rows_added,
            "monitor_rows_quarantined": result.rows_quarantined,
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
            f"monitoring raised {len(alerts)} new alert(s) on {', '.join(columns)} "
            "(monitor.fail_on_alert=true); see the monitor report"
        )
    return result
