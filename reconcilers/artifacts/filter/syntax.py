"""The syntax tree of artifact filters and its canonical rendering.

The nodes are immutable; ``str()`` of a node is filter text that parses back to the same tree
(go-bexpr drops double negations, so a ``Not`` directly inside a ``Not`` reads back without both).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from reconcilers.artifacts.filter.regex import compile_regex

# The words and numbers of the language, shared with the lexer so that what is rendered bare
# is exactly what reads back as a name, a word or a number. Keywords are valid names in
# go-bexpr; they are rendered quoted only to read clearly.
KEYWORDS = frozenset(
    {"and", "or", "not", "in", "is", "empty", "nil", "contains", "matches", "any", "all", "as"}
)
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_/]*")
_NAME_OR_INDEX = re.compile(r"[A-Za-z][A-Za-z0-9_/]*|[0-9]+")
WORD = re.compile(r"[A-Za-z][A-Za-z0-9_/]*(?:\.(?:[A-Za-z][A-Za-z0-9_/]*|[0-9]+))*")
NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_POINTER_PUNCTUATION = frozenset("-_.~:|")


def is_pointer_char(char: str) -> bool:
    """A character of a quoted selector's segment: go-bexpr's ``[\\pL\\pN-_.~:|]``."""
    return char in _POINTER_PUNCTUATION or unicodedata.category(char)[0] in "LN"


@dataclass(frozen=True)
class Selector:
    """A path into the properties: the property name, then map keys or list indexes."""

    path: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("a selector needs at least one name")
        if _render_selector(self.path) is None:
            raise ValueError(f"selector {self.path!r} cannot be written in a filter")

    def __str__(self) -> str:
        rendered = _render_selector(self.path)
        assert rendered is not None
        return rendered


def _render_selector(path: tuple[str, ...]) -> str | None:
    """The selector as a dotted name, else a JSON pointer, else with indexes; None if impossible."""
    first, *rest = path
    if NAME.fullmatch(first) and first not in KEYWORDS and all(_NAME_OR_INDEX.fullmatch(p) for p in rest):
        return ".".join(path)
    if path == ("",):
        return '""'
    escaped = [part.replace("~", "~0").replace("/", "~1") for part in path]
    if all(part and all(is_pointer_char(char) for char in part) for part in escaped):
        return '"/' + "/".join(escaped) + '"'
    if NAME.fullmatch(first):
        return first + "".join(
            f".{part}" if _NAME_OR_INDEX.fullmatch(part) else f"[{_quote(part)}]" for part in rest
        )
    return None


class ValueKind(enum.Enum):
    """How a value was written. Only its text takes part in matching, as in go-bexpr."""

    NUMBER = "number"
    STRING = "string"
    WORD = "word"


@dataclass(frozen=True)
class Literal:
    """A value as written in the filter; ``text`` is what gets converted and compared.

    ``text`` is go-bexpr's raw value: a string's decoded contents, a number as written, a word's
    parts joined with '.', and a quoted JSON pointer's parts joined with '/' (so ``"/a/b"`` as a
    value means ``a/b``).
    """

    text: str
    # Kept to render the filter the way it was written; two literals with the same text mean
    # the same thing, so the kind takes no part in equality.
    kind: ValueKind = field(default=ValueKind.STRING, compare=False)

    def __str__(self) -> str:
        if self.kind is ValueKind.NUMBER and NUMBER.fullmatch(self.text):
            return self.text
        if self.kind is ValueKind.WORD and WORD.fullmatch(self.text) and self.text not in KEYWORDS:
            return self.text
        return _quote(self.text)


# Characters escaped when rendering a string: the quote (as \x22: go-bexpr ends a string at any
# '"'), the backslash, and the characters an artifact path forbids inside its filter, so a
# rendered filter always fits back into a path.
_RENDER_ESCAPES = {
    '"': r"\x22",
    "\\": r"\\",
    "[": r"\x5b",
    "]": r"\x5d",
    ":": r"\x3a",
    "\n": r"\n",
    "\r": r"\r",
    "\t": r"\t",
}
_POINTER_LIKE = re.compile(r"(?:/[^/]+)+")


def _quote(text: str) -> str:
    out = []
    for char in text:
        if char in _RENDER_ESCAPES:
            out.append(_RENDER_ESCAPES[char])
        elif "\udc80" <= char <= "\udcff":
            out.append(f"\\x{ord(char) - 0xDC00:02x}")  # a byte that is not UTF-8 (see the lexer)
        elif char.isprintable() or char == " ":
            out.append(char)
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    if _POINTER_LIKE.fullmatch(text) and all(is_pointer_char(c) for c in text.replace("/", "")):
        # "/a/b" would read back as a JSON pointer, whose value is "a/b"; an escape keeps it text.
        out[0] = r"\x2f"
    return '"' + "".join(out) + '"'


class MatchOperator(enum.Enum):
    EQUAL = "=="
    NOT_EQUAL = "!="
    IN = "in"
    NOT_IN = "not in"
    CONTAINS = "contains"
    NOT_CONTAINS = "not contains"
    IS_EMPTY = "is empty"
    IS_NOT_EMPTY = "is not empty"
    IS_NIL = "is nil"
    IS_NOT_NIL = "is not nil"
    MATCHES = "matches"
    NOT_MATCHES = "not matches"


_VALUE_FIRST = frozenset({MatchOperator.IN, MatchOperator.NOT_IN})
WITHOUT_VALUE = frozenset(
    {MatchOperator.IS_EMPTY, MatchOperator.IS_NOT_EMPTY, MatchOperator.IS_NIL, MatchOperator.IS_NOT_NIL}
)
REGEX_OPERATORS = frozenset({MatchOperator.MATCHES, MatchOperator.NOT_MATCHES})


@dataclass(frozen=True)
class Match:
    """One comparison of a selected property with a value."""

    selector: Selector
    operator: MatchOperator
    value: Literal | None = None
    # The compiled regular expression of 'matches' and 'not matches', compiled when the filter
    # is read: an invalid one makes the filter invalid.
    regex: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.value is None) != (self.operator in WITHOUT_VALUE):
            raise ValueError(f"operator {self.operator.value!r} and value {self.value!r} do not fit")
        if self.operator in REGEX_OPERATORS:
            assert self.value is not None
            object.__setattr__(self, "regex", compile_regex(self.value.text))

    def __str__(self) -> str:
        if self.operator in _VALUE_FIRST:
            return f"{self.value} {self.operator.value} {self.selector}"
        if self.value is None:
            return f"{self.selector} {self.operator.value}"
        return f"{self.selector} {self.operator.value} {self.value}"


class CollectionOperator(enum.Enum):
    ANY = "any"
    ALL = "all"


@dataclass(frozen=True)
class Binding:
    """The names a collection expression gives to each item.

    ``as x`` binds ``default``: the item of a list, the key of a map. ``as k, v`` binds ``index``
    (a list index or a map key) and ``value``; ``as k, _`` and ``as _, v`` bind one of them.
    """

    default: str | None = None
    index: str | None = None
    value: str | None = None

    def __post_init__(self) -> None:
        names = [name for name in (self.default, self.index, self.value) if name is not None]
        if not names or (self.default is not None and len(names) > 1):
            raise ValueError("a binding is one name, or an index and a value name (either may be '_')")
        if not all(NAME.fullmatch(name) for name in names):
            raise ValueError(f"binding names {names!r} must be names such as item")

    def __str__(self) -> str:
        if self.default is not None:
            return self.default
        return f"{self.index or '_'}, {self.value or '_'}"


@dataclass(frozen=True)
class Collection:
    """``any``/``all`` SELECTOR ``as`` BINDING ``{ BODY }``: BODY for some/every item."""

    operator: CollectionOperator
    selector: Selector
    binding: Binding
    body: Expression

    def __str__(self) -> str:
        return f"{self.operator.value} {self.selector} as {self.binding} {{ {self.body} }}"


@dataclass(frozen=True)
class Not:
    operand: Expression

    def __str__(self) -> str:
        return f"not {_render_operand(self.operand, (And, Or))}"


@dataclass(frozen=True)
class And:
    operands: tuple[Expression, ...]

    def __str__(self) -> str:
        return " and ".join(_render_operand(operand, (And, Or)) for operand in self.operands)


@dataclass(frozen=True)
class Or:
    operands: tuple[Expression, ...]

    def __str__(self) -> str:
        return " or ".join(_render_operand(operand, (Or,)) for operand in self.operands)


Expression = Match | Not | And | Or | Collection


def _render_operand(operand: Expression, grouped: tuple[type, ...]) -> str:
    # Parenthesise exactly where the parser would otherwise build a different tree. go-bexpr
    # reads a collection expression only alone or in parentheses (or last after 'or').
    return f"({operand})" if isinstance(operand, (*grouped, Collection)) else str(operand)
