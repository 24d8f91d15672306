"""`python -m marvel --help <group>`: every key of a config group with its default and one line each.

The default and its comment come from the YAML (the one place defaults live), the type and range from the
schema (`marvel.core.settings`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from marvel.core import settings

DOC_WIDTH = 90
_KEY = re.compile(r"^(?P<indent>\s*)(?P<key>[\w.\-]+):(?P<value>[^#]*)(?:#\s?(?P<comment>.*))?$")


def comments(path: Path) -> dict[str, str]:
    """dotted key -> the comment beside it (or the comment lines right above it) in a YAML file."""
    out: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    above: list[str] = []
    seen_key = False  # the comment block that opens a file describes the file, not its first key
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped:
            above = []
            continue
        if stripped.startswith("#"):
            if seen_key:
                above.append(stripped.lstrip("#").strip())
            continue
        seen_key = True
        m = _KEY.match(line)
        if not m or stripped.startswith("-"):
            above = []
            continue
        indent = len(m["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = ".".join([*(k for _, k in stack), m["key"]])
        stack.append((indent, m["key"]))
        text = (m["comment"] or "").strip() or " ".join(above)
        if text:
            out[key] = text
        above = []
    return out


def _option_files(config_dir: Path, group: str, option: str) -> list[Path]:
    """The option's YAML and those its defaults list builds on (deploy=ab builds on deploy=local)."""
    path = config_dir / group / f"{option}.yaml"
    files = [path]
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for item in raw.get("defaults", []) if isinstance(raw, dict) else []:
        if isinstance(item, str) and item != "_self_" and (config_dir / group / f"{item}.yaml").exists():
            files += _option_files(config_dir, group, item)
    return files


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping) and value and not ("_target_" in value and prefix.count(".") >= 1):
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, value


def _show(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("...").strip()
    return text if len(text) <= 40 else text[:39] + "…"


def _types(group: str, node: Mapping[str, Any]) -> dict[str, str]:
    """key -> a short type (and range) from the schema, where one is known."""
    params: Mapping[str, Any] = {}
    if "_target_" in node:
        params, _ = settings.target_parameters(str(node["_target_"]))
    else:
        block = settings._fields(settings.Root).get(group)
        if isinstance(block, type) and dataclasses.is_dataclass(block):
            params = settings._fields(block)
    return {key: settings.describe(tp) for key, tp in params.items()}


def composed(config_dir: Path, overrides: Sequence[str] = ()) -> DictConfig:
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg: DictConfig = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    return cfg


def group_keys(config_dir: Path, group: str, cfg: DictConfig, with_types: bool = True) -> str:
    """One group's (or top-level block's) keys: default, type and range (`with_types`: this imports the
    part's module), and the comment beside it in the YAML."""
    option = cfg.hydra.runtime.choices.get(group)
    node = settings._plain(cfg[group]) if group in cfg else {}
    docs: dict[str, str] = {}
    files = _option_files(config_dir, group, str(option)) if option else [config_dir / "config.yaml"]
    for path in reversed(files):
        prefix = "" if option else f"{group}."
        docs.update({k.removeprefix(prefix): v for k, v in comments(path).items()})
    types = _types(group, node) if with_types and isinstance(node, Mapping) else {}
    title = f"{group}={option}" if option else group
    target = node.get("_target_", "") if isinstance(node, Mapping) else ""
    lines = [f"{title}" + (f" ({target})" if target else "")]
    rows = [(k, v) for k, v in _flatten(node) if k != "_target_"]
    width = max((len(k) for k, _ in rows), default=10) + 2
    for key, value in rows:
        kind = types.get(key, "")
        doc = docs.get(key, "")
        doc = doc if len(doc) <= DOC_WIDTH else doc[: DOC_WIDTH - 1] + "…"
        shown = "(set at run time)" if value is settings._SKIP else _show(value)
        lines.append(f"  {key:<{width}}{shown:<42}{kind:<22}{doc}".rstrip())
    if option:
        others = sorted(p.stem for p in (config_dir / group).glob("*.yaml") if p.stem != option)
        if others:
            lines.append(f"  other options: {', '.join(f'{group}={o}' for o in others)}")
    return "\n".join(lines)


def all_keys(config_dir: Path, overrides: Sequence[str] = ()) -> str:
    """Every group's keys (its chosen option) and the run's own settings; without types, so that --help
    does not import every part (--help <group> shows them)."""
    cfg = composed(config_dir, overrides)
    blocks = [k for k in cfg if k != "hydra" and isinstance(cfg[k], DictConfig) and k not in settings.GROUPS]
    names = [*(g for g in settings.GROUPS if g in cfg), *(str(b) for b in blocks)]
    return "\n\n".join(
        group_keys(config_dir, name, cfg, with_types=False) for name in names if OmegaConf.select(cfg, name)
    )
