"""Loading settings from a YAML file, the environment and flags, in that order of precedence.

Precedence: flag > environment variable > file > default. Values from flags and the environment
are strings (lists comma-separated); every value goes through its key's parser, and unknown keys
in the file are errors. Whatever is wrong stops start-up with a :class:`ConfigError` naming the
key, e.g. ``invalid configuration: runCompletionTTL: "abc" is not a duration``. A settings class
may define ``validate()`` for rules involving several keys; it runs after the values are set.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from controller.settings.docs import display_default
from controller.settings.schema import KeySpec
from controller.settings.values import InvalidValue

T = TypeVar("T")

_FLAG_DEST_PREFIX = "cfg:"


class ConfigError(ValueError):
    """Invalid configuration; the message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"invalid configuration: {key}: {problem}")
        self.key = key
        self.problem = problem


def read_file(path: str | Path, keys: Sequence[KeySpec]) -> dict[str, Any]:
    """Reads a YAML settings file into ``{dotted key: raw value}``; unknown keys are errors."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ConfigError("--config", f"cannot read {path}: {err.strerror or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError("--config", f"{path} is not valid YAML: {err}") from None
    if data is None:
        return {}
    known = {spec.key for spec in keys}
    raw = dict(_flatten(data, known))
    for key in raw:
        if key not in known:
            raise ConfigError(key, "unknown key")
    return raw


def _flatten(data: Any, known: set[str], prefix: str = "") -> Iterator[tuple[str, Any]]:
    if not isinstance(data, Mapping):
        raise ConfigError(prefix or "(file)", "must be a mapping")
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else str(name)
        if isinstance(value, Mapping) and key not in known:
            if not any(k.startswith(key + ".") for k in known):
                raise ConfigError(key, "unknown key")
            yield from _flatten(value, known, key)
        else:
            yield key, value


def load(
    cls: type[T],
    keys: Sequence[KeySpec],
    file_values: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    flag_values: Mapping[str, Any] | None = None,
) -> T:
    """Builds and validates an instance of the settings class ``cls`` from the three sources."""
    environ = environ if environ is not None else {}
    file_values = file_values or {}
    flag_values = flag_values or {}
    values: dict[tuple[str, ...], Any] = {}
    for spec in keys:
        if flag_values.get(spec.key) is not None:
            raw, source = flag_values[spec.key], spec.flag
        elif spec.env in environ:
            raw, source = environ[spec.env], spec.env
        elif spec.key in file_values:
            raw, source = file_values[spec.key], spec.key
        else:
            values[spec.attr_path] = spec.default
            continue
        try:
            values[spec.attr_path] = spec.parse(raw)
        except InvalidValue as err:
            suffix = "" if source == spec.key else f" (from {source})"
            raise ConfigError(spec.key, f"{err}{suffix}") from None
    settings: T = _build(cls, values)
    validate = getattr(settings, "validate", None)
    if validate is not None:
        validate()
    return settings


def _build(cls: type[T], values: Mapping[tuple[str, ...], Any], prefix: tuple[str, ...] = ()) -> T:
    defaults = cls()
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        path = (*prefix, f.name)
        if f.metadata.get("section"):
            kwargs[f.name] = _build(type(getattr(defaults, f.name)), values, path)
        else:
            kwargs[f.name] = values[path]
    return cls(**kwargs)


def add_flags(parser: argparse.ArgumentParser, keys: Sequence[KeySpec]) -> None:
    """Adds one flag per key, and its aliases (strings; booleans may be given without a value,
    meaning true). The help shows each key's default, file key and environment variable."""
    group = parser.add_argument_group("configuration (overrides the file and the environment)")
    for spec in keys:
        kwargs: dict[str, Any] = {"dest": _FLAG_DEST_PREFIX + spec.key, "default": None, "metavar": "VALUE"}
        if isinstance(spec.default, bool):
            kwargs.update(nargs="?", const="true")
        shown = display_default(spec) or '""'
        group.add_argument(
            spec.flag,
            *spec.flag_aliases,
            help=f"{spec.doc} (default: {shown}) [{spec.key}; env {spec.env}]".replace("%", "%%"),
            **kwargs,
        )


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The values given by the flags :func:`add_flags` added, by dotted key."""
    return {
        name.removeprefix(_FLAG_DEST_PREFIX): value
        for name, value in vars(args).items()
        if name.startswith(_FLAG_DEST_PREFIX)
    }
