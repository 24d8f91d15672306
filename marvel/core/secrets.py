"""Secrets stay secret: the one rule for what is a secret, and redaction wherever a config is written down.

A key is secret when its name (the last part of a dotted path) is ``token``, ``password``/``passwd`` or
``secret``, ends in ``_token``, ``_password`` or ``_secret``, or ends in ``_key`` (``api_key``,
``access_key``...), and its value is text (a secret is a string: ``identity_secret: -0.06``, a model
coefficient, is not one). Wherever a config is logged (the MLflow run's params, tags and ``config.yaml``, Hydra's
``.hydra`` folder of the run) the value of such a key becomes ``<redacted>``, and so does an override that
sets one (``deploy.token=...``). `replay` turns ``<redacted>`` back into null, so a replayed run takes the
secret from the environment again (``MARVEL_SERVING_TOKEN``), never from a log.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

REDACTED = "<redacted>"
_SECRET = re.compile(r"^(token|password|passwd|secret)$|_(token|password|passwd|secret|key)$", re.IGNORECASE)
_INTERPOLATION = re.compile(r"^\$\{.*\}$", re.DOTALL)
MIN_SCRUB = 4  # secret values shorter than this are not searched for in free text (too many false hits)


def is_secret(key: object) -> bool:
    """Whether a config key (or dotted path, or environment variable name) names a secret."""
    name = str(key).rsplit(".", 1)[-1].lstrip("+~")
    return bool(_SECRET.search(name))


def _secret_value(key: object, value: Any) -> bool:
    return isinstance(value, str) and value not in ("", REDACTED) and is_secret(key)


def redact(data: Any) -> Any:
    """A copy of plain data (dicts, lists) with the values of secret keys replaced by `REDACTED`."""
    if isinstance(data, dict):
        return {k: (REDACTED if _secret_value(k, v) else redact(v)) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [redact(v) for v in data]
    return data


def redact_config(cfg: DictConfig, resolve: bool = True) -> DictConfig:
    """`cfg` with secret values redacted (resolved first by default, so an env-var secret is caught too)."""
    container = OmegaConf.to_container(cfg, resolve=resolve)
    container = redact(container) if resolve else _redact_literal(container)
    out = OmegaConf.create(container)
    assert isinstance(out, DictConfig)
    return out


def _redact_literal(data: Any) -> Any:
    """As `redact`, but an interpolation (``${oc.env:...}``) is kept: it names where a secret is, not what."""
    if isinstance(data, dict):
        return {
            k: (REDACTED if _secret_value(k, v) and not _INTERPOLATION.match(v) else _redact_literal(v))
            for k, v in data.items()
        }
    if isinstance(data, list | tuple):
        return [_redact_literal(v) for v in data]
    return data


def redact_override(override: str) -> str:
    """``deploy.token=s3cret`` -> ``deploy.token=<redacted>``; anything else unchanged."""
    key, sep, value = override.partition("=")
    if sep and value and is_secret(key) and value != "null":
        return f"{key}={REDACTED}"
    return override


def secret_values(cfg: DictConfig | None = None, overrides: Iterable[str] = ()) -> set[str]:
    """Every secret value in play: under secret keys of the resolved config, in overrides, and in the
    environment (variables with secret names), for scrubbing free text."""
    found: set[str] = set()

    def walk(data: Any) -> None:
        if isinstance(data, dict):
            for k, v in data.items():
                if _secret_value(k, v):
                    found.add(v)
                else:
                    walk(v)
        elif isinstance(data, list):
            for v in data:
                walk(v)

    if cfg is not None:
        try:
            walk(OmegaConf.to_container(cfg, resolve=True))
        except Exception:  # an unresolvable interpolation: take what is there
            walk(OmegaConf.to_container(cfg, resolve=False))
    for override in overrides:
        key, sep, value = override.partition("=")
        if sep and is_secret(key) and value not in ("", "null"):
            found.add(value)
    # keys first, then each value: items() reads a key another thread may have just removed (MLflow's
    # telemetry thread drops _MLFLOW_TELEMETRY_SESSION_ID), a KeyError seen in the suite
    found |= {v for k in list(os.environ) if is_secret(k) and (v := os.environ.get(k))}
    return {v for v in found if len(v) >= MIN_SCRUB}


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value replaced by `REDACTED`."""
    for value in sorted(secrets, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text


class LogFilter(logging.Filter):
    """Scrubs secret values (from the command line's overrides and the environment) out of every log record
    a handler writes; Hydra's logging config puts it on its handlers (conf/config.yaml), so the launcher's
    "#0 : deploy.token=..." lines are clean too."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets = secret_values(None, sys.argv[1:])

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            clean = scrub(message, self.secrets)
            if clean != message:
                record.msg, record.args = clean, ()
        return True


def restore(cfg: DictConfig) -> DictConfig:
    """A logged (redacted) config made runnable: every `REDACTED` value becomes null (taken from the
    environment again where the code falls back to it)."""

    def walk(node: Any) -> None:
        if isinstance(node, DictConfig):
            for key in list(node.keys()):
                value = node._get_node(key)
                if isinstance(value, DictConfig | ListConfig):
                    walk(value)
                elif node[key] == REDACTED:
                    node[key] = None
        elif isinstance(node, ListConfig):
            for item in node:
                walk(item)

    walk(cfg)
    return cfg


def redact_hydra_output(folder: Path, secrets: Iterable[str], config_name: str = "config.yaml") -> None:
    """Rewrite Hydra's record of a run (``.hydra/config.yaml``, ``hydra.yaml``, ``overrides.yaml``; a sweep's
    ``multirun.yaml``) without secrets: secret keys and overrides redacted, and any secret value left in the
    text scrubbed. A file with no secret key or override is not rewritten (`_holds_secrets`)."""
    values = set(secrets)
    overrides = folder / "overrides.yaml"
    if overrides.is_file() and _holds_secrets(overrides):
        listed = OmegaConf.load(overrides)
        if isinstance(listed, ListConfig):
            OmegaConf.save(OmegaConf.create([redact_override(str(o)) for o in listed]), overrides)
    hydra = folder / "hydra.yaml"
    if hydra.is_file() and _holds_secrets(hydra):
        loaded = OmegaConf.load(hydra)
        task = OmegaConf.select(loaded, "hydra.overrides.task")
        if isinstance(task, ListConfig):
            OmegaConf.update(
                loaded, "hydra.overrides.task", [redact_override(str(o)) for o in task], merge=False
            )
            OmegaConf.save(loaded, hydra)
    config = folder / config_name
    if config.is_file() and _holds_secrets(config):
        loaded = OmegaConf.load(config)
        if isinstance(loaded, DictConfig):
            task = OmegaConf.select(loaded, "hydra.overrides.task")
            if isinstance(task, ListConfig):  # a multirun.yaml holds Hydra's node too
                OmegaConf.update(
                    loaded, "hydra.overrides.task", [redact_override(str(o)) for o in task], merge=False
                )
            OmegaConf.save(redact_config(loaded, resolve=False), config)
    for path in (overrides, hydra, config):
        if path.is_file() and values:
            text = path.read_text()
            clean = scrub(text, values)
            if clean != text:
                path.write_text(clean)


def _holds_secrets(path: Path) -> bool:
    """Whether a file of Hydra's record holds anything `redact_hydra_output` rewrites, read by libyaml (~10x
    faster than OmegaConf's loader, which then only the files that hold something need; most runs have none).
    A file that does not parse counts as holding something: the careful path decides."""
    try:
        data = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError):
        return True
    return _secret_in(data)


def _secret_in(data: Any) -> bool:
    """A value under a secret key that is not a number, a bool, null, already redacted or an interpolation (what
    libyaml reads otherwise than OmegaConf, a date say, counts), or a text that is a secret override."""
    if isinstance(data, dict):
        return any((is_secret(k) and _literal_secret(v)) or _secret_in(v) for k, v in data.items())
    if isinstance(data, list):
        return any(_secret_in(v) for v in data)
    return isinstance(data, str) and redact_override(data) != data


def _literal_secret(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | dict | list):
        return False  # containers are walked by the caller
    if isinstance(value, str):
        return value not in ("", REDACTED) and not _INTERPOLATION.match(value)
    return True
