"""`python -m marvel --help`: the config groups and experiments, a line each, read from the YAML files."""

from __future__ import annotations

from pathlib import Path

import yaml

GROUPS = ("data", "features", "model", "deploy", "monitor", "env")
DEFAULTS_NOTE = {"env": "(none: local)"}


def _describe(path: Path) -> str:
    """The first comment line of a config file that is not a Hydra directive."""
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if text.startswith("#") and not text.startswith("# @package"):
            text = text.lstrip("# ").strip().rstrip(",:;")
            return text if len(text) <= 96 else text[:95] + "…"
    return ""


def _defaults(config_dir: Path) -> dict[str, str]:
    raw = yaml.safe_load((config_dir / "config.yaml").read_text(encoding="utf-8"))
    out: dict[str, str] = {}
    for item in raw.get("defaults", []):
        if isinstance(item, dict):
            for k, v in item.items():
                out[str(k)] = str(v)
    return out


def help_text(config_dir: Path) -> str:
    defaults = _defaults(config_dir)
    lines = [
        "marvel: the Marvel Characters model, from raw CSV to a served and monitored LightGBM, from one config.",
        "",
        "usage: python -m marvel [group=option ...] [key=value ...]      one run (local unless +env=...)",
        "       python -m marvel -m key=a,b [key=c,d ...]                   a sweep (child runs under one parent)",
        "       python -m marvel +experiment=<name>                         a named experiment",
        "       python -m marvel +replay=<mlflow run id>                    rerun exactly what a run logged",
        "",
        "config groups (default marked *):",
    ]
    for group in GROUPS:
        folder = config_dir / group
        lines.append(f"  {group} {DEFAULTS_NOTE.get(group, '')}".rstrip())
        for path in sorted(folder.glob("*.yaml")):
            mark = "*" if defaults.get(group) == path.stem else " "
            prefix = "+" if group == "env" else ""
            choice = f"{prefix}{group}={path.stem}"
            lines.append(f"    {mark} {choice:<24} {_describe(path)}")
    lines.append("")
    lines.append("experiments (+experiment=<name>):")
    for path in sorted((config_dir / "experiment").glob("*.yaml")):
        lines.append(f"      {path.stem:<24} {_describe(path)}")
    lines += [
        "",
        "common settings:",
        "  stages=[process,train]        which stages run, in order (also deploy, monitor)",
        "  seed=42                       one seed for data, split, model",
        "  promotion.metric=roc_auc      champion/challenger rule (f1 reproduces the source platform)",
        "  dry_run=true                  print the plan (tables, models, endpoint, monitor); touch nothing",
        "  MARVEL_HOME=.marvel           where local tables, MLflow and run outputs go (environment variable)",
        "",
        "python -m marvel --cfg job shows the resolved config; --hydra-help shows Hydra's own options.",
    ]
    return "\n".join(lines)
