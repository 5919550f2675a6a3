"""The syntax tree of artifact filters and its canonical rendering.

The nodes are immutable; ``str()`` of a node is filter text that parses back to the same tree.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from reconcilers.artifacts.filter.regex import compile_regex

# The words and numbers of the language, shared with the lexer so that what is rendered bare
# is exactly what reads back as a name, a word or a number.
KEYWORDS = frozenset({"and", "or", "not", "in", "is", "empty", "contains", "matches"})
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_/]*")
_NAME_OR_INDEX = re.compile(r"[A-Za-z][A-Za-z0-9_/]*|[0-9]+")
WORD = re.compile(r"[A-Za-z][A-Za-z0-9_/]*(?:\.(?:[A-Za-z][A-Za-z0-9_/]*|[0-9]+))*")
NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_POINTER_PUNCTUATION = frozenset("-_.~:|")


def is_pointer_char(char: str) -> bool:
    return char in _POINTER_PUNCTUATION or unicodedata.category(char)[0] in "LN"


@dataclass(frozen=True)
class Selector:
    """A path into the properties: the property name, then map keys or list indexes."""

    path: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("a selector needs at least one name")
        if not all(part and all(is_pointer_char(c) or c == "/" for c in part) for part in self.path):
            raise ValueError(f"selector {self.path!r} cannot be written in a filter")

    def __str__(self) -> str:
        first, *rest = self.path
        if (
            first not in KEYWORDS
            and _NAME.fullmatch(first)
            and all(_NAME_OR_INDEX.fullmatch(part) for part in rest)
        ):
            return ".".join(self.path)
        escaped = (part.replace("~", "~0").replace("/", "~1") for part in self.path)
        return '"/' + "/".join(escaped) + '"'


class ValueKind(enum.Enum):
    """How a value was written. Only its text takes part in matching, as in go-bexpr."""

    NUMBER = "number"
    STRING = "string"
    WORD = "word"


@dataclass(frozen=True)
class Literal:
    """A value as written in the filter; ``text`` is what gets converted and compared."""

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


# Characters escaped when rendering a string: the quote (as \x22 rather than \" so that go-bexpr
# reads the result too), the backslash, and the characters an artifact path forbids inside its
# filter, so a rendered filter always fits back into a path.
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


def _quote(text: str) -> str:
    out = []
    for char in text:
        if char in _RENDER_ESCAPES:
            out.append(_RENDER_ESCAPES[char])
        elif char.isprintable() or char == " ":
            out.append(char)
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
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
    MATCHES = "matches"
    NOT_MATCHES = "not matches"


_VALUE_FIRST = frozenset({MatchOperator.IN, MatchOperator.NOT_IN})
WITHOUT_VALUE = frozenset({MatchOperator.IS_EMPTY, MatchOperator.IS_NOT_EMPTY})
REGEX_OPERATORS = frozenset({MatchOperator.MATCHES, MatchOperator.NOT_MATCHES})


@dataclass(frozen=True)
class Match:
    """One comparison of a selected property with a value."""

    selector: Selector
    operator: MatchOperator
    value: Literal | None = None
    _regex: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.value is None) != (self.operator in WITHOUT_VALUE):
            raise ValueError(f"operator {self.operator.value!r} and value {self.value!r} do not fit")
        if self.operator in REGEX_OPERATORS:
            assert self.value is not None
            object.__setattr__(self, "_regex", compile_regex(self.value.text))

    def __str__(self) -> str:
        if self.operator in _VALUE_FIRST:
            return f"{self.value} {self.operator.value} {self.selector}"
        if self.value is None:
            return f"{self.selector} {self.operator.value}"
        return f"{self.selector} {self.operator.value} {self.value}"


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


Expression = Match | Not | And | Or


def _render_operand(operand: Expression, grouped: tuple[type, ...]) -> str:
    # Parenthesise exactly where the parser would otherwise build a different tree.
    return f"({operand})" if isinstance(operand, grouped) else str(operand)
