"""Declaring settings, and deriving every key's names from the declarations.

A setting is a dataclass field made by :func:`setting`; a section is a field holding another
settings dataclass, made by :func:`section`. :func:`keys_of` walks a settings class and yields
one :class:`KeySpec` per leaf: its dotted key (``events.nats.url``), the attribute path to its
value, its parser, default and description, and from those its flag (``--events-nats-url``)
and environment variable (``KFP_OPERATOR_EVENTS_NATS_URL``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from controller.settings.values import Parser


def setting(key: str, parse: Parser, doc: str, *, default: Any, flag_aliases: tuple[str, ...] = ()) -> Any:
    """A leaf setting: its YAML key, the parser that validates raw values, a description, a default,
    and other flags that set it too (the names other operators use for the same thing)."""
    return dataclasses.field(
        default=default, metadata={"key": key, "parse": parse, "doc": doc, "flag_aliases": flag_aliases}
    )


def section(key: str, cls: Callable[[], Any]) -> Any:
    """A nested section of settings, itself a settings dataclass with defaults for every field."""
    return dataclasses.field(default_factory=cls, metadata={"key": key, "section": True})


@dataclass(frozen=True)
class KeySpec:
    """One configuration key, as derived from the declarations."""

    key: str
    attr_path: tuple[str, ...]
    parse: Parser
    default: Any
    doc: str
    env_prefix: str
    flag_aliases: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + "-".join(_kebab(part) for part in self.key.split("."))

    @property
    def env(self) -> str:
        words = "_".join(_kebab(part) for part in self.key.split("."))
        return self.env_prefix + words.replace("-", "_").upper()

    @property
    def is_duration(self) -> bool:
        # Durations are shown and written in Go syntax, not as seconds.
        return bool(getattr(self.parse, "is_duration", False))


def keys_of(cls: type, env_prefix: str) -> tuple[KeySpec, ...]:
    """Every key of a settings class, the class's own fields before those it inherits."""
    return tuple(_walk(cls, env_prefix))


def _walk(
    cls: type, env_prefix: str, prefix: tuple[str, ...] = (), attrs: tuple[str, ...] = ()
) -> Iterator[KeySpec]:
    defaults = cls()
    for f in _own_fields_first(cls):
        key = f.metadata["key"]
        if f.metadata.get("section"):
            yield from _walk(type(getattr(defaults, f.name)), env_prefix, (*prefix, key), (*attrs, f.name))
        else:
            yield KeySpec(
                key=".".join((*prefix, key)),
                attr_path=(*attrs, f.name),
                parse=f.metadata["parse"],
                default=getattr(defaults, f.name),
                doc=f.metadata["doc"],
                env_prefix=env_prefix,
                flag_aliases=f.metadata.get("flag_aliases", ()),
            )


def _own_fields_first(cls: type) -> list[dataclasses.Field[Any]]:
    # A program's settings extend the runtime's: its own keys matter most to its users.
    own = set(vars(cls).get("__annotations__", {}))
    fields = dataclasses.fields(cls)
    return [f for f in fields if f.name in own] + [f for f in fields if f.name not in own]


def _kebab(name: str) -> str:
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", name)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1-\2", name)
    return name.lower()
