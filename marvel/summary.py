"""The one summary a run prints: rows, metrics against the baseline, promotion, model versions."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from marvel.evaluation import METRICS


def format_summary(cfg: DictConfig, results: dict[str, Any]) -> str:
    lines = [
        f"marvel run {results.get('run_id', '')} ({', '.join(cfg.stages)}) in {results.get('seconds', 0):.1f}s"
    ]
    rows = results.get("process") or (results.get("train") or {}).get("rows")
    if rows:
        lines.append(
            "  rows: raw {rows_raw} = quarantined {rows_quarantined} + train {rows_train} + test {rows_test}".format(
                **rows
            )
        )
    train = results.get("train")
    if train and "metrics" in train:
        lines.append(f"  {'metric':<10} {'model':>8} {'baseline':>9}")
        for m in METRICS:
            lines.append(f"  {m:<10} {train['metrics'][m]:>8.4f} {train['baseline'][m]:>9.4f}")
        metric = train["promotion_metric"]
        if train["champion_version"] is None:
            verdict = "promoted (first model)"
        elif train["promoted"]:
            verdict = f"promoted: {metric} {train['metrics'][metric]:.4f} >= champion v{train['champion_version']} {train['champion_metric']:.4f}"
        else:
            verdict = f"not promoted: {metric} {train['metrics'][metric]:.4f} worse than champion v{train['champion_version']} {train['champion_metric']:.4f}"
        lines.append(f"  {verdict}")
        lines.append(
            f"  models: {cfg.env.model_basic} v{train['basic_version']}, {cfg.env.model_custom} v{train['custom_version']}"
            + (f" (alias {cfg.promotion.alias})" if train["promoted"] else "")
        )
    for name, res in results.items():
        if isinstance(res, dict) and "summary" in res:
            lines.append(f"  {name}: {res['summary']}")
    return "\n".join(lines)


def print_summary(cfg: DictConfig, results: dict[str, Any]) -> None:
    print(format_summary(cfg, results), flush=True)
