"""The config's schema, checked once, before a run does anything.

Values and their defaults live in one place, the YAML under conf/ (with a comment saying what each is). The
types live in Python: the top-level blocks in the dataclasses below, every `_target_` node in the signature of
the class it names (so a new deployer brings its schema with it). `check` walks the composed config and
refuses, in one line naming the key and the nearest valid one, an unknown or misspelt key, a wrong type or a
value out of range. `Annotated[..., Between(...)]` states a range; a string in `Annotated` is the key's help.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import inspect
import logging
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from hydra.utils import get_class, get_method
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from marvel.core.errors import MarvelError, one_line

GROUPS = ("data", "features", "model", "deploy", "monitor", "env")
# keys of older releases: what replaced them (named in the error, so an old command line says what to type)
RENAMED: dict[str, str] = {
    "env.tables": "the tables are the catalog's now (marvel/core/catalog.py); remove env.tables",
}


@dataclass(frozen=True)
class Between:
    """An inclusive range for a number (None: unbounded on that side)."""

    low: float | None = None
    high: float | None = None

    def holds(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def __str__(self) -> str:
        if self.high is None:
            return f">= {self.low:g}"
        if self.low is None:
            return f"<= {self.high:g}"
        return f"between {self.low:g} and {self.high:g}"


Share = Annotated[float, Between(0.0, 1.0)]
Positive = Annotated[int, Between(1, None)]


# -- top-level blocks (defaults: conf/config.yaml) ---------------------------------------------------------
@dataclass
class Paths:
    root: str
    lake: str
    outputs: str


@dataclass
class Split:
    test_size: Annotated[float, Between(0.01, 0.99)]
    seed: int
    stratify: bool


@dataclass
class Train:
    mode: Literal["fit", "cv"]
    force: bool


@dataclass
class CV:
    folds: Annotated[int, Between(2, 100)]
    seed: int


@dataclass
class Sweep:
    select_metric: str
    final_fit: bool


@dataclass
class Simulate:
    seed: int
    windows_undrifted: Annotated[int, Between(0, None)]
    windows_drifted: Annotated[int, Between(0, None)]
    records_per_window: Positive
    records_per_request: Positive
    start: str | None
    label_share: Share
    labels_table: str
    serve: Literal["deploy", "trained"]
    drift: dict[str, Any]


@dataclass
class Score:
    table: str
    alias: str
    output: str


@dataclass
class Promotion:
    alias: str
    metric: Literal["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"]
    min_improvement_over_baseline: float
    allow_new_lineage: bool


@dataclass
class RunTags:
    git_sha: str | None
    branch: str | None
    job_run_id: str | None


@dataclass
class Env:
    """Where a run lives: local (no +env), local Spark (+env=spark), Databricks (+env=dev|acc|prd)."""

    name: str
    preflight: Target
    store: Target
    compute: Target
    catalog: str | None
    schema: str | None
    tracking_uri: str
    registry_uri: str
    artifact_location: str | None
    experiment_name: str
    model_basic: str
    model_custom: str
    experiment_custom: str | None = None
    spark: dict[str, Any] | None = None  # Spark Connect settings (remote, app_name, conf)


@dataclass
class Model:
    name: str
    estimator: Target
    threshold: Annotated[float, Between(0.0, 1.0)]
    params: dict[str, Any] = field(default_factory=dict)


class Target:
    """A node instantiated from its `_target_`: its keys are the target's constructor parameters."""


@dataclass
class Root:
    stages: list[str]
    stage_runners: dict[str, str]
    seed: int
    threads: Positive
    dry_run: bool
    run_name: str | None
    paths: Paths
    split: Split
    train: Train
    cv: CV
    sweep: Sweep
    parent_run_id: str | None
    simulate: Simulate
    score: Score
    promotion: Promotion
    run: RunTags
    env: Env
    data: Target
    features: Target
    model: Model
    deploy: Target
    monitor: Target
    replay: str | None = None
    replay_of: str | None = None
    replay_overrides: str | None = None


# -- checking ----------------------------------------------------------------------------------------------
_SKIP = object()  # a value that cannot be resolved outside a Hydra app (${hydra:...}): not checked


def _plain(node: Any) -> Any:
    """A config node as plain Python, resolved; `_SKIP` where resolving needs Hydra's runtime."""
    if not isinstance(node, DictConfig | ListConfig):
        return node
    try:
        return OmegaConf.to_container(node, resolve=True)
    except InterpolationResolutionError:
        if isinstance(node, DictConfig):
            return {str(k): _plain_key(node, str(k)) for k in node}
        return _SKIP


def _plain_key(node: DictConfig, key: str) -> Any:
    try:
        return _plain(node[key])
    except InterpolationResolutionError:
        return _SKIP


def _nearest(key: str, valid: Sequence[str]) -> str | None:
    found = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    return found[0] if found else None


def _unknown(path: str, key: str, valid: Sequence[str], where: str) -> MarvelError:
    full = f"{path}.{key}" if path else key
    if full in RENAMED:
        return MarvelError(f"bad configuration: {full} is gone: {RENAMED[full]}")
    near = _nearest(key, valid)
    hint = (
        f"; did you mean {f'{path}.{near}' if path else near}?" if near else f"; valid keys: {sorted(valid)}"
    )
    group = path.split(".")[0] if path else ""
    more = f" (python -m marvel --help {group} lists them)" if group in GROUPS else ""
    return MarvelError(f"bad configuration: {full} is not a key of {where}{hint}{more}")


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _describe(typing.get_args(tp)[0])
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "null"}
    if tp in names:
        return names[tp]
    if origin in (list, Sequence, tuple) or tp in (list, tuple):
        return "a list"
    if origin in (dict, Mapping) or tp is dict or dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def describe(tp: Any) -> str:
    """A short name of an annotation for help text: "int 0..65535", "str or null", "one of 'fit', 'cv'"."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        inner, *meta = typing.get_args(tp)
        ranges = [
            str(m).replace("between ", "").replace(" and ", "..") for m in meta if isinstance(m, Between)
        ]
        return " ".join([describe(inner), *ranges])
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in typing.get_args(tp))
    short = {int: "int", float: "float", bool: "bool", str: "str", type(None): "null", Path: "path"}
    if tp in short:
        return short[tp]
    if origin in (list, Sequence, tuple) or tp in (list, tuple):
        return "list"
    if origin in (dict, Mapping) or tp in (dict, Mapping) or dataclasses.is_dataclass(tp):
        return "mapping"
    return "" if tp in (Any, inspect.Parameter.empty) else getattr(tp, "__name__", str(tp))


def _wrong(path: str, tp: Any, value: Any) -> MarvelError:
    return MarvelError(f"bad configuration: {path} must be {_describe(tp)}, got {value!r}")


def check_value(value: Any, tp: Any, path: str) -> None:
    """Raise `MarvelError` unless `value` fits the annotation `tp` (recursing into containers)."""
    if value is _SKIP or tp is Any or tp is inspect.Parameter.empty:
        return
    origin = typing.get_origin(tp)
    if origin is Annotated:
        inner, *meta = typing.get_args(tp)
        check_value(value, inner, path)
        for m in meta:
            if isinstance(m, Between) and isinstance(value, int | float) and not m.holds(value):
                raise MarvelError(f"bad configuration: {path} must be {m}, got {value!r}")
        return
    if origin in (Union, types.UnionType):
        errors = []
        for option in typing.get_args(tp):
            try:
                check_value(value, option, path)
                return
            except MarvelError as exc:
                errors.append(exc)
        # a range error of the matching type says more than "must be a or b"
        ranged = [e for e in errors if " must be between" in str(e) or " must be >=" in str(e)]
        raise ranged[0] if ranged else _wrong(path, tp, value)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise _wrong(path, tp, value)
        return
    if tp is type(None) or tp is None:
        if value is not None:
            raise _wrong(path, tp, value)
        return
    if tp is bool:
        if not isinstance(value, bool):
            raise _wrong(path, tp, value)
        return
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(path, tp, value)
        return
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong(path, tp, value)
        return
    if tp in (str, Path):
        if not isinstance(value, str):
            raise _wrong(path, tp, value)
        return
    if tp is Target:
        check_target(value, path)
        return
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, Mapping):
            raise _wrong(path, tp, value)
        _check_fields(value, _fields(tp), path, tp.__name__)
        return
    if origin in (list, Sequence, tuple) or tp in (list, tuple):
        if not isinstance(value, list | tuple):
            raise _wrong(path, tp, value)
        args = typing.get_args(tp)
        for i, item in enumerate(value):
            check_value(item, args[0] if args else Any, f"{path}[{i}]")
        return
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _wrong(path, tp, value)
        args = typing.get_args(tp)
        for k, item in value.items():
            check_value(item, args[1] if len(args) == 2 else Any, f"{path}.{k}")
        return
    # anything else (a class we do not know how to check) is the constructor's to judge


def _hints(obj: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj, include_extras=True)
    except Exception:  # an annotation that cannot be resolved at run time: unchecked, not refused
        return {}


def _fields(cls: type) -> dict[str, Any]:
    hints = _hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


def _check_fields(value: Mapping[str, Any], fields: Mapping[str, Any], path: str, where: str) -> None:
    for key, item in value.items():
        if key not in fields:
            raise _unknown(path, str(key), list(fields), where)
        check_value(item, fields[key], f"{path}.{key}" if path else str(key))


@contextlib.contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    before, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = before


def target_parameters(target: str) -> tuple[dict[str, Any], bool]:
    """The keyword parameters a `_target_` takes (name -> annotation) and whether it takes any other."""
    # Hydra logs an ERROR for each lookup that fails before raising; the caller says it once, as one line
    with _quiet(logging.getLogger("hydra.utils")):
        try:
            obj: Any = get_class(target)
            fn = obj.__init__
        except Exception:
            obj = fn = get_method(target)
    hints = _hints(fn)
    params: dict[str, Any] = {}
    open_ended = False
    for name, p in inspect.signature(fn).parameters.items():
        if name == "self":
            continue
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            open_ended = True
        elif p.kind is not inspect.Parameter.VAR_POSITIONAL:
            params[name] = hints.get(name, Any)
    return params, open_ended


def _not_importable(key: str, target: str, exc: BaseException) -> MarvelError:
    return MarvelError(f"bad configuration: {key} {target} cannot be imported ({one_line(exc)})")


def function_at(key: str, dotted: str) -> Any:
    """The function a config value names (`stage_runners.train: marvel.stages.train.run`), or a one-line
    `MarvelError` naming the key."""
    with _quiet(logging.getLogger("hydra.utils")):
        try:
            return get_method(dotted)
        except Exception as exc:
            raise _not_importable(key, dotted, exc) from None


def check_target(value: Any, path: str) -> None:
    if not isinstance(value, Mapping) or "_target_" not in value:
        raise MarvelError(f"bad configuration: {path} must name a `_target_` class")
    target = str(value["_target_"])
    try:
        params, open_ended = target_parameters(target)
    except ModuleNotFoundError as exc:
        if exc.name and not exc.name.startswith("marvel"):
            return  # an optional dependency (pyspark on a laptop planning +env=prd): the part checks itself
        raise _not_importable(f"{path}._target_", target, exc) from None
    except Exception as exc:
        raise _not_importable(f"{path}._target_", target, exc) from None
    for key, item in value.items():
        if key.startswith("_") and key.endswith("_"):
            continue  # Hydra's own keys (_target_, _convert_, _partial_)
        if key not in params:
            if open_ended:
                continue
            raise _unknown(path, str(key), list(params), f"{path} ({target})")
        check_value(item, params[key], f"{path}.{key}")


def _check_model(value: Any) -> None:
    check_value(value, Model, "model")
    estimator = value["estimator"]["_target_"]
    params, open_ended = target_parameters(estimator)
    given = value.get("params") or {}
    # an estimator that takes other keywords too (LightGBM's own names) judges those; its named ones are ours
    if open_ended:
        given = {k: v for k, v in given.items() if k in params}
    _check_fields(given, params, "model.params", f"model.params ({estimator})")


def check(cfg: DictConfig) -> None:
    """Raise `MarvelError` (one line: the key, what is wrong, the nearest valid key) unless `cfg` fits the
    schema; nothing else has run yet."""
    fields = _fields(Root)
    for key in cfg:
        name = str(key)
        if name == "hydra":
            continue
        if name not in fields:
            raise _unknown("", name, list(fields), "the run config")
        value = _plain_key(cfg, name)
        if name == "model":
            _check_model(value)
        else:
            check_value(value, fields[name], name)
