"""YAML <-> the typed run configuration (processors.core.config): unknown keys, wrong types
and impossible values raise :class:`UserError` naming the key and the file; ``--set``
overrides; atomic saves."""
from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from processors.core.atomic import write_text_atomic
from processors.core.config import Config
from processors.core.config_checks import validate
from processors.core.errors import UserError


def _key(where: str, key: str) -> str:
    """Where a key sits: 'cfg.yaml' + 'train' -> 'cfg.yaml: train'; 'cfg.yaml: train' + 'lr' -> 'cfg.yaml: train.lr'."""
    return f"{where}.{key}" if ": " in where else f"{where}: {key}"


def _choices(values: tuple) -> str:
    """('a', 'b', 'c') -> "'a', 'b' or 'c'"."""
    names = [repr(v) for v in values]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _coerce(value: Any, typ: Any, where: str) -> Any:
    """Check ``value`` against a field type; ints are accepted for floats; a ``Literal``
    field takes only its listed values."""
    origin = typing.get_origin(typ) or typ
    if origin is Literal:
        allowed = typing.get_args(typ)
        if value in allowed and isinstance(value, type(allowed[0])):
            return value
        raise UserError(f"{where}: must be {_choices(allowed)}, got {value!r}")
    if dataclasses.is_dataclass(typ):
        return from_dict(typ, value, where)
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ is float and isinstance(value, str):
        try:  # YAML reads '3e-4' (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if origin in (int, float, str, bool, list, dict):
        if isinstance(value, origin) and not (origin is int and isinstance(value, bool)):
            return value
        raise UserError(f"{where}: expected {origin.__name__}, got {type(value).__name__} {value!r}")
    return value


def from_dict(cls, data: Any, where: str = "config"):
    """Build dataclass ``cls`` from a plain dict, rejecting unknown keys and wrong types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UserError(f"{where}: unknown key '{unknown[0]}' (known: {', '.join(sorted(names))})")
    kwargs = {k: _coerce(v, hints[k], _key(where, k)) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ValueError as exc:      # a dataclass's own check (__post_init__): 'key: what is wrong'
        raise UserError(_key(where, str(exc))) from None


def _parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise UserError(f"--set {text!r}: expected key=value, e.g. train.lr=3e-4")
    key, raw = text.split("=", 1)
    try:
        return key.strip().split("."), yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        raise UserError(f"--set {text!r}: the value is not valid YAML (quote a list, e.g. 'a.b=[1, 2]')") from None


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``a.b=value`` strings (values parsed as YAML) to a nested dict."""
    for text in overrides or []:
        path, value = _parse_override(text)
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"--set {text!r}: '{part}' is not a section")
        node[path[-1]] = value
    return data


def parse_config(data: dict, where: str = "config") -> Config:
    """:class:`Config` from a plain dict (as read from YAML or a checkpoint), its values checked;
    the names of its components are checked by training.configure.build_config."""
    cfg = from_dict(Config, data, where)
    validate(cfg, where)
    return cfg


def read_config(path: str | Path, overrides: list[str] | None = None) -> dict:
    """A YAML config file as a plain dict, ``--set`` overrides applied (checked by
    training.configure.load_config)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: a folder, not a config file (a YAML file in configs/)")
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file (expected a YAML config)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}{line}: not valid YAML") from exc
    if data is None:    # an empty file would silently mean "all defaults": almost surely a mistake
        raise UserError(f"{path}: config file is empty")
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of sections at the top level")
    return apply_overrides(data, overrides or [])


def save_config(cfg: Config, path: str | Path) -> None:
    """Write ``cfg`` as YAML, atomically (a kill leaves the previous file)."""
    write_text_atomic(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
