"""Artifact filters: which output artifacts of a run an artifact path selects.

An artifact path such as ``Pusher:pushed_model:0[pushed == 1]`` may end with a filter between
square brackets. The filter is a boolean expression over the artifact's custom properties in
ML Metadata; only artifacts for which it is true are selected. The language is the one of
hashicorp/go-bexpr, which the Go kfp-operator used, so existing manifests keep their meaning.

Selectors
    ``pushed``, ``metrics.accuracy``, ``tags.0``: a property name, then ``.name`` to look inside a
    map or ``.N`` to take item N (counting from 0) of a list. Names start with an ASCII letter and
    continue with letters, digits, ``_`` and ``/``. A selector can also be written as a quoted
    JSON pointer, ``"/metrics/accuracy"``, whose parts may also hold ``-``, ``.``, ``~``, ``|`` and
    any Unicode letter or digit (``~1`` stands for ``/`` and ``~0`` for ``~``). A property named
    like a keyword (``in``, ``is``, ``not``, ...) is clearest written as a pointer: ``"/in"``.

Values
    Numbers: ``1``, ``-2``, ``0.75`` (no ``+`` sign, exponent or leading zeros).
    Strings: ``"double quoted"`` with Go's escapes (``\\n``, ``\\t``, ``\\\\``, ``\\"``, ``\\x41``,
    ``\\u00e9``, ...), or between backquotes, where a backslash is an ordinary character.
    Bare words: ``prod``, ``v1.2``: written like a selector, meaning that text.
    A value is only text until it meets a property: see "Comparing" below.

Match expressions
    ``selector == value``            the property equals the value
    ``selector != value``            the property does not equal the value
    ``value in selector``            the property contains the value (see below)
    ``value not in selector``
    ``selector contains value``      the same as ``value in selector``
    ``selector not contains value``
    ``selector is empty``            the property is an empty string, list or map
    ``selector is not empty``
    ``selector matches "regex"``     part of the string property matches the regular expression
    ``selector not matches "regex"``

    Containing means: an item of a list equal to the value, a key of a map equal to the value,
    or, for a string property, the value as a substring.

Boolean expressions
    ``not``, ``and``, ``or`` and parentheses, in that order of precedence: ``a == 1 or b == 1 and
    not c == 1`` means ``a == 1 or (b == 1 and (not c == 1))``. Keywords are lower case. Operands
    are evaluated from left to right and evaluation stops as soon as the result is known.

Comparing
    The value is converted to the type of the property it is compared with, as go-bexpr does:

    * integer property (booleans written by KFP, and TFX's ``pushed``, are integers 0 and 1):
      the value must be a whole number, decimal or with a ``0x``, ``0o``, ``0b`` or ``0``
      (octal) prefix. ``pushed == 1`` and ``pushed == "1"`` both match an artifact with
      ``pushed`` = 1; ``pushed == 1.0`` cannot be converted.
    * number (floating point) property: any decimal or hexadecimal number, ``inf`` or ``nan``;
      ``accuracy == 1`` matches 1.0.
    * boolean property: ``1``, ``t``, ``T``, ``true``, ``True``, ``TRUE`` and ``0``, ``f``, ``F``,
      ``false``, ``False``, ``FALSE``.
    * string property: the text of the value, exactly.
    * list: each item is compared by the rules above; items the value cannot be converted to
      are skipped, so ``"x" in scores`` is false for a list of numbers.
    * map: its keys are strings, compared with the text of the value.

Errors and missing properties
    A filter that cannot be evaluated for an artifact does not select it. That happens when:

    * the first name of a selector is not a property of the artifact, whatever the operator:
      ``pushed != 1`` does not select an artifact without a ``pushed`` property;
    * a value cannot be converted to the property's type (``pushed == yes``);
    * the operator does not apply to the property (``==`` on a list, ``is empty`` on a number,
      ``matches`` on anything but a string, ``in`` on a number);
    * a selector goes through something that is not a map or a list, past the end of a list,
      or through a map key that is missing before its last name;
    * ``in`` or ``contains`` on a list meets an item that is ``null``, a list or a map before it
      finds the value, or the value is out of the range of a number item (``"1e999" in scores``).

    An error stops the evaluation at once, even under ``not`` or inside ``or``, unless the
    result was already decided by an operand to its left.

    A nested selector whose last name is missing from a map that does exist is not an error:
    the property counts as absent, and ``==``, ``in``, ``contains``, ``matches`` and
    ``is not empty`` are false while ``!=``, ``not in``, ``not contains``, ``not matches`` and
    ``is empty`` are true. With ``metrics`` = ``{"accuracy": 0.9}``, ``metrics.loss is empty`` is
    true but ``metrics.loss.value is empty`` is an error.

Regular expressions
    RE2 syntax, the syntax of Go's regexp package, searched anywhere in the string
    (use ``^`` and ``$`` to anchor). Matching takes time linear in the length of the string
    whatever the pattern, so no pattern can stall the operator. An invalid pattern makes the
    filter invalid.

Limits
    A filter is at most ``MAX_FILTER_LENGTH`` (1024) characters long, and parentheses and ``not``
    together nest at most ``MAX_NESTING_DEPTH`` (32) levels deep.

Differences from go-bexpr
    * Whitespace is needed only between two words and after a number: ``not(a == 1)`` and
      ``(a == 1)and(b == 2)`` are accepted.
    * A double-quoted string may contain ``\\"``.
    * A quoted value always means its own text; go-bexpr drops the leading ``/`` of a quoted
      value that looks like a JSON pointer (``x == "/a/b"`` compared with ``a/b``).
    * ``\\xHH`` and octal escapes above 0x7f are rejected instead of making invalid UTF-8: write
      ``\\u00e9`` for ``é``.
    * An invalid regular expression is reported when the filter is read, not when it is
      evaluated.
    * Where go-bexpr would crash (``is empty`` on a number, ``in`` on a list holding ``null``),
      evaluation fails instead, so the artifact is not selected.
    * The index form ``x["key"]`` is not accepted: artifact paths forbid ``[`` and ``]`` inside
      the filter. Write ``x.key`` or ``"/x/key"``.
"""

from __future__ import annotations

import enum
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import re2

__all__ = [
    "MAX_FILTER_LENGTH",
    "MAX_NESTING_DEPTH",
    "And",
    "Expression",
    "Filter",
    "FilterEvaluationError",
    "InvalidArtifactFilter",
    "Literal",
    "Match",
    "MatchOperator",
    "Not",
    "Or",
    "Selector",
    "ValueKind",
    "parse_filter",
]

# The artifact path's CRD pattern caps the whole path at 1024 characters, so no valid filter is
# longer. The cap keeps parsing, rendering and evaluation cheap whatever a manifest holds.
MAX_FILTER_LENGTH = 1024
# Deep enough for any hand-written filter, shallow enough that the recursive parser, renderer
# and evaluator stay far from Python's recursion limit.
MAX_NESTING_DEPTH = 32


class InvalidArtifactFilter(ValueError):
    """A filter that is not valid; ``position`` is the 0-based offset in the filter text."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message, position)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return f"{self.message} (at column {self.position + 1})"


class FilterEvaluationError(Exception):
    """A filter could not be evaluated for an artifact; such an artifact is not selected."""


# --------------------------------------------------------------------------------------------
# The syntax tree
# --------------------------------------------------------------------------------------------

_KEYWORDS = frozenset({"and", "or", "not", "in", "is", "empty", "contains", "matches"})
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_/]*")
_NAME_OR_INDEX = re.compile(r"[A-Za-z][A-Za-z0-9_/]*|[0-9]+")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_/]*(?:\.(?:[A-Za-z][A-Za-z0-9_/]*|[0-9]+))*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_POINTER_PUNCTUATION = frozenset("-_.~:|")


def _is_pointer_char(char: str) -> bool:
    return char in _POINTER_PUNCTUATION or unicodedata.category(char)[0] in "LN"


@dataclass(frozen=True)
class Selector:
    """A path into the properties: the property name, then map keys or list indexes."""

    path: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("a selector needs at least one name")
        if not all(part and all(_is_pointer_char(c) or c == "/" for c in part) for part in self.path):
            raise ValueError(f"selector {self.path!r} cannot be written in a filter")

    def __str__(self) -> str:
        first, *rest = self.path
        if (
            first not in _KEYWORDS
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
        if self.kind is ValueKind.NUMBER and _NUMBER.fullmatch(self.text):
            return self.text
        if self.kind is ValueKind.WORD and _WORD.fullmatch(self.text) and self.text not in _KEYWORDS:
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
_WITHOUT_VALUE = frozenset({MatchOperator.IS_EMPTY, MatchOperator.IS_NOT_EMPTY})
_REGEX_OPERATORS = frozenset({MatchOperator.MATCHES, MatchOperator.NOT_MATCHES})

# go-bexpr's rule for a missing last key of a map that exists.
_RESULT_WHEN_ABSENT = {
    MatchOperator.EQUAL: False,
    MatchOperator.NOT_EQUAL: True,
    MatchOperator.IN: False,
    MatchOperator.NOT_IN: True,
    MatchOperator.CONTAINS: False,
    MatchOperator.NOT_CONTAINS: True,
    MatchOperator.IS_EMPTY: True,
    MatchOperator.IS_NOT_EMPTY: False,
    MatchOperator.MATCHES: False,
    MatchOperator.NOT_MATCHES: True,
}


class _InvalidRegex(ValueError):
    pass


def _regex_options() -> re2.Options:
    options = re2.Options()
    # Errors are reported to the user through InvalidArtifactFilter, not RE2's own log.
    options.log_errors = False
    return options


_REGEX_OPTIONS = _regex_options()


def _compile_regex(pattern: str) -> Any:
    # RE2 (the engine behind Go's regexp, so the syntax users know from go-bexpr) matches in
    # time linear in the subject whatever the pattern: no catastrophic backtracking, so neither
    # a hostile pattern nor a huge property value can stall a reconcile. Its memory per pattern
    # is capped by RE2 itself (8 MiB), and the filter length caps the number of patterns.
    try:
        return re2.compile(pattern.encode("utf-8", "surrogatepass"), _REGEX_OPTIONS)
    except re2.error as error:
        detail = error.args[0] if error.args else ""
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise _InvalidRegex(str(detail)) from None


@dataclass(frozen=True)
class Match:
    """One comparison of a selected property with a value."""

    selector: Selector
    operator: MatchOperator
    value: Literal | None = None
    _regex: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.value is None) != (self.operator in _WITHOUT_VALUE):
            raise ValueError(f"operator {self.operator.value!r} and value {self.value!r} do not fit")
        if self.operator in _REGEX_OPERATORS:
            assert self.value is not None
            object.__setattr__(self, "_regex", _compile_regex(self.value.text))

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


# --------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------


class _Kind(enum.Enum):
    WORD = "word"
    NUMBER = "number"
    STRING = "string"
    RAW_STRING = "raw string"
    EQUAL = "=="
    NOT_EQUAL = "!="
    LEFT_PAREN = "("
    RIGHT_PAREN = ")"
    END = "end"


@dataclass(frozen=True)
class _Token:
    kind: _Kind
    text: str  # the token as written
    value: str  # a string's contents, or the text of anything else
    position: int

    def is_keyword(self, *words: str) -> bool:
        return self.kind is _Kind.WORD and self.text in words

    def describe(self) -> str:
        if self.kind is _Kind.END:
            return "the end of the filter"
        shown = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        return f"'{shown}'"


_WHITESPACE = frozenset(" \t\r\n")
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
}
_HEX_ESCAPE_LENGTHS = {"x": 2, "u": 4, "U": 8}
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_OCTAL_DIGITS = frozenset("01234567")
_UNEXPECTED_CHARACTER_HINTS = {
    "=": "use '==' to compare",
    "!": "use '!=' or 'not'",
    "<": "filters have no ordering comparisons",
    ">": "filters have no ordering comparisons",
    "&": "use 'and'",
    "|": "use 'or'",
    "'": "quote strings with '\"' or '`'",
    "[": 'use x.key or "/x/key" to look inside a map',
    "]": 'use x.key or "/x/key" to look inside a map',
}


class _Lexer:
    def __init__(self, text: str) -> None:
        self._text = text
        self._position = 0

    def tokens(self) -> list[_Token]:
        tokens = []
        while True:
            token = self._next()
            tokens.append(token)
            if token.kind is _Kind.END:
                return tokens

    def _error(self, message: str, position: int) -> InvalidArtifactFilter:
        return InvalidArtifactFilter(message, position)

    def _next(self) -> _Token:
        text = self._text
        while self._position < len(text) and text[self._position] in _WHITESPACE:
            self._position += 1
        start = self._position
        if start == len(text):
            return _Token(_Kind.END, "", "", start)
        char = text[start]
        if char in "()":
            self._position += 1
            return _Token(_Kind.LEFT_PAREN if char == "(" else _Kind.RIGHT_PAREN, char, char, start)
        if text.startswith("==", start) or text.startswith("!=", start):
            self._position += 2
            kind = _Kind.EQUAL if char == "=" else _Kind.NOT_EQUAL
            return _Token(kind, text[start : start + 2], text[start : start + 2], start)
        if char == '"':
            return self._double_quoted(start)
        if char == "`":
            return self._raw_string(start)
        if char.isascii() and (char.isdigit() or char == "-"):
            return self._number(start)
        if char.isascii() and char.isalpha():
            return self._word(start)
        hint = _UNEXPECTED_CHARACTER_HINTS.get(char)
        message = f"unexpected character {char!r}" + (f": {hint}" if hint else "")
        raise self._error(message, start)

    def _word(self, start: int) -> _Token:
        match = _WORD.match(self._text, start)
        assert match is not None
        end = match.end()
        if self._text.startswith(".", end):
            raise self._error("expected a name or a list index after '.'", end + 1)
        self._position = end
        return _Token(_Kind.WORD, match.group(), match.group(), start)

    def _number(self, start: int) -> _Token:
        match = _NUMBER.match(self._text, start)
        if match is None:
            raise self._error(
                "unexpected '-': a number must follow it; quote text that contains '-', such as \"my-model\"",
                start,
            )
        end = match.end()
        if end < len(self._text) and self._text[end] not in _WHITESPACE and self._text[end] != ")":
            stop = end
            while stop < len(self._text) and self._text[stop] not in _WHITESPACE and stop - start < 40:
                stop += 1
            raise self._error(
                f"invalid number '{self._text[start:stop]}': write numbers like 1, -2 or 0.5, "
                "followed by a space, ')' or the end of the filter, and quote other text",
                start,
            )
        self._position = end
        return _Token(_Kind.NUMBER, match.group(), match.group(), start)

    def _raw_string(self, start: int) -> _Token:
        end = self._text.find("`", start + 1)
        if end < 0:
            raise self._error("unterminated string: missing the closing '`'", start)
        self._position = end + 1
        # As Go does for raw strings, carriage returns are dropped.
        contents = self._text[start + 1 : end].replace("\r", "")
        return _Token(_Kind.RAW_STRING, self._text[start : end + 1], contents, start)

    def _double_quoted(self, start: int) -> _Token:
        text = self._text
        position = start + 1
        contents: list[str] = []
        while position < len(text):
            char = text[position]
            if char == '"':
                self._position = position + 1
                return _Token(_Kind.STRING, text[start : position + 1], "".join(contents), start)
            if char == "\n":
                raise self._error("line break inside a string: write \\n instead", position)
            if char == "\\":
                decoded, position = self._escape(position)
                contents.append(decoded)
            else:
                contents.append(char)
                position += 1
        raise self._error("unterminated string: missing the closing '\"'", start)

    def _escape(self, backslash: int) -> tuple[str, int]:
        """Decode the escape sequence at ``backslash``; return it and the position after it."""
        text = self._text
        letter = text[backslash + 1 : backslash + 2]
        if letter in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[letter], backslash + 2
        if letter in _HEX_ESCAPE_LENGTHS:
            digits = text[backslash + 2 : backslash + 2 + _HEX_ESCAPE_LENGTHS[letter]]
            if len(digits) < _HEX_ESCAPE_LENGTHS[letter] or not set(digits) <= _HEX_DIGITS:
                raise self._error(
                    f"invalid escape: \\{letter} needs {_HEX_ESCAPE_LENGTHS[letter]} hexadecimal digits",
                    backslash,
                )
            code = int(digits, 16)
            end = backslash + 2 + len(digits)
        elif letter in _OCTAL_DIGITS:
            digits = text[backslash + 1 : backslash + 4]
            if len(digits) < 3 or not set(digits) <= _OCTAL_DIGITS or int(digits, 8) > 0o377:
                raise self._error("invalid escape: an octal escape is \\ and 3 digits up to \\377", backslash)
            code = int(digits, 8)
            end = backslash + 4
        else:
            if not letter:
                raise self._error("unterminated string: it ends with '\\'", backslash)
            raise self._error(f"invalid escape \\{letter} in a string", backslash)
        if letter in "x01234567" and code > 0x7F:
            # Go would put this raw byte into the string, making it invalid UTF-8, which no
            # property value (valid UTF-8 in MLMD) could ever equal.
            raise self._error(f"invalid escape: use \\u{code:04x} for the character U+{code:04X}", backslash)
        if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
            raise self._error(f"invalid escape: U+{code:X} is not a character", backslash)
        return chr(code), end


# --------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------

_OPERATORS_HELP = "==, !=, in, not in, contains, not contains, is empty, is not empty, matches or not matches"


class _Parser:
    """Recursive descent over the tokens; recursion is bounded by MAX_NESTING_DEPTH."""

    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._index = 0

    def parse(self) -> Expression:
        expression = self._or(0)
        token = self._peek()
        if token.kind is not _Kind.END:
            message = f"expected 'and', 'or' or the end of the filter but found {token.describe()}"
            if token.kind is _Kind.RIGHT_PAREN:
                message = "unexpected ')' without a matching '('"
            elif token.kind is _Kind.WORD and token.text.lower() in _KEYWORDS:
                message += "; keywords are written in lower case"
            raise InvalidArtifactFilter(message, token.position)
        return expression

    def _peek(self, ahead: int = 0) -> _Token:
        return self._tokens[min(self._index + ahead, len(self._tokens) - 1)]

    def _advance(self) -> _Token:
        token = self._peek()
        self._index += 1
        return token

    def _expected(self, what: str) -> InvalidArtifactFilter:
        token = self._peek()
        return InvalidArtifactFilter(f"expected {what} but found {token.describe()}", token.position)

    def _nest(self, depth: int) -> int:
        if depth >= MAX_NESTING_DEPTH:
            raise InvalidArtifactFilter(
                f"the filter nests parentheses and 'not' more than {MAX_NESTING_DEPTH} levels deep",
                self._peek().position,
            )
        return depth + 1

    def _or(self, depth: int) -> Expression:
        operands = [self._and(depth)]
        while self._peek().is_keyword("or"):
            self._advance()
            operands.append(self._and(depth))
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def _and(self, depth: int) -> Expression:
        operands = [self._not(depth)]
        while self._peek().is_keyword("and"):
            self._advance()
            operands.append(self._not(depth))
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def _not(self, depth: int) -> Expression:
        # As in go-bexpr, "not" directly followed by a match operator is a property (or value)
        # named "not": `not == 1`, `not in tags`.
        if self._peek().is_keyword("not") and not self._starts_match_operator(self._peek(1)):
            inner = self._nest(depth)
            self._advance()
            return Not(self._not(inner))
        return self._primary(depth)

    @staticmethod
    def _starts_match_operator(token: _Token) -> bool:
        return token.kind in (_Kind.EQUAL, _Kind.NOT_EQUAL) or token.is_keyword(
            "in", "is", "contains", "matches"
        )

    def _primary(self, depth: int) -> Expression:
        token = self._peek()
        if token.kind is _Kind.LEFT_PAREN:
            inner = self._nest(depth)
            self._advance()
            expression = self._or(inner)
            if self._peek().kind is not _Kind.RIGHT_PAREN:
                raise self._expected(f"')' to close the '(' at column {token.position + 1}")
            self._advance()
            return expression
        return self._match()

    def _match(self) -> Match:
        first = self._peek()
        if first.kind is _Kind.END or first.kind is _Kind.RIGHT_PAREN:
            raise self._expected("a comparison such as pushed == 1, 'not' or '('")
        if first.kind not in (_Kind.WORD, _Kind.NUMBER, _Kind.STRING, _Kind.RAW_STRING):
            raise self._expected("a property name or a value")
        after = self._peek(1)
        if after.is_keyword("in") or (after.is_keyword("not") and self._peek(2).is_keyword("in")):
            value = self._value("a value")
            operator = MatchOperator.IN
            if self._advance().text == "not":
                self._advance()  # the "in" after it
                operator = MatchOperator.NOT_IN
            return Match(self._selector(f"after '{operator.value}'"), operator, value)
        if first.kind in (_Kind.NUMBER, _Kind.RAW_STRING):
            self._advance()
            raise self._expected(f"'in' or 'not in' after the value {first.describe()}")
        selector = self._selector("")
        operator = self._operator(selector)
        if operator in _WITHOUT_VALUE:
            return Match(selector, operator)
        value_token = self._peek()
        value = self._value(f"a value after '{operator.value}'")
        try:
            return Match(selector, operator, value)
        except _InvalidRegex as error:
            raise InvalidArtifactFilter(
                f"invalid regular expression {value_token.text}: {error}", value_token.position
            ) from None

    def _operator(self, selector: Selector) -> MatchOperator:
        token = self._advance()
        if token.kind is _Kind.EQUAL:
            return MatchOperator.EQUAL
        if token.kind is _Kind.NOT_EQUAL:
            return MatchOperator.NOT_EQUAL
        if token.is_keyword("contains"):
            return MatchOperator.CONTAINS
        if token.is_keyword("matches"):
            return MatchOperator.MATCHES
        if token.is_keyword("is"):
            if self._peek().is_keyword("empty"):
                self._advance()
                return MatchOperator.IS_EMPTY
            if self._peek().is_keyword("not") and self._peek(1).is_keyword("empty"):
                self._advance()
                self._advance()
                return MatchOperator.IS_NOT_EMPTY
            raise self._expected("'empty' or 'not empty' after 'is'")
        if token.is_keyword("not"):
            if self._peek().is_keyword("contains"):
                self._advance()
                return MatchOperator.NOT_CONTAINS
            if self._peek().is_keyword("matches"):
                self._advance()
                return MatchOperator.NOT_MATCHES
            raise self._expected("'in', 'contains' or 'matches' after 'not'")
        self._index -= 1
        raise self._expected(f"an operator ({_OPERATORS_HELP}) after {selector}")

    def _selector(self, where: str) -> Selector:
        token = self._peek()
        context = f" {where}" if where else ""
        if token.kind is _Kind.WORD:
            self._advance()
            return Selector(tuple(token.text.split(".")))
        if token.kind is _Kind.STRING:
            path = _parse_json_pointer(token.text[1:-1])
            if path is None:
                raise InvalidArtifactFilter(
                    f'a quoted selector{context} must be a JSON pointer such as "/metrics/accuracy", '
                    f"not {token.describe()}",
                    token.position,
                )
            self._advance()
            return Selector(path)
        raise self._expected(f'a property name such as pushed, a.b or "/a/b"{context}')

    def _value(self, what: str) -> Literal:
        token = self._peek()
        kinds = {
            _Kind.NUMBER: ValueKind.NUMBER,
            _Kind.WORD: ValueKind.WORD,
            _Kind.STRING: ValueKind.STRING,
            _Kind.RAW_STRING: ValueKind.STRING,
        }
        if token.kind not in kinds:
            raise self._expected(f'{what} (a number, a "string" or a word)')
        self._advance()
        return Literal(token.value, kinds[token.kind])


def _parse_json_pointer(pointer: str) -> tuple[str, ...] | None:
    """The parts of a JSON pointer in go-bexpr's selector syntax, or None if it is not one."""
    if not pointer.startswith("/"):
        return None
    parts = pointer[1:].split("/")
    if not all(part and all(_is_pointer_char(char) for char in part) for part in parts):
        return None
    return tuple(part.replace("~1", "/").replace("~0", "~") for part in parts)


def parse_filter(text: str) -> Filter:
    """Parse a filter, raising InvalidArtifactFilter with what was expected and where."""
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidArtifactFilter(
            f"the filter is {len(text)} characters long; the limit is {MAX_FILTER_LENGTH}",
            MAX_FILTER_LENGTH,
        )
    for position, char in enumerate(text):
        # Lone surrogates cannot come from valid UTF-8 and would not survive re-encoding.
        if "\ud800" <= char <= "\udfff":
            raise InvalidArtifactFilter(f"invalid character U+{ord(char):04X}", position)
    return Filter(_Parser(_Lexer(text).tokens()).parse())


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    """A parsed filter. Build one with parse_filter; ``str()`` renders it canonically."""

    expression: Expression

    def __str__(self) -> str:
        return str(self.expression)

    def matches(self, properties: Mapping[str, object]) -> bool:
        """Whether an artifact with these custom properties is selected; errors select nothing."""
        try:
            return self.evaluate(properties)
        except FilterEvaluationError:
            return False

    def evaluate(self, properties: Mapping[str, object]) -> bool:
        """Evaluate the filter, raising FilterEvaluationError to say why it cannot be."""
        return _evaluate(self.expression, properties)


def _evaluate(expression: Expression, properties: Mapping[str, object]) -> bool:
    match expression:
        case Match():
            return _evaluate_match(expression, properties)
        case Not(operand=operand):
            return not _evaluate(operand, properties)
        case And(operands=operands):
            return all(_evaluate(operand, properties) for operand in operands)
        case Or(operands=operands):
            return any(_evaluate(operand, properties) for operand in operands)
    raise TypeError(f"not a filter expression: {expression!r}")


class _Absent:
    """A nested selector's last key is missing from a map that exists."""


_ABSENT = _Absent()


def _evaluate_match(match: Match, properties: Mapping[str, object]) -> bool:
    datum = _select(match.selector, properties)
    if datum is _ABSENT:
        return _RESULT_WHEN_ABSENT[match.operator]
    operator = match.operator
    subject = f"{match.selector} ({_describe(datum)})"
    if operator in _WITHOUT_VALUE:
        if not isinstance(datum, str | list | tuple | Mapping):
            raise FilterEvaluationError(f"'is empty' needs a string, list or map, but {subject} is not")
        return (len(datum) == 0) == (operator is MatchOperator.IS_EMPTY)
    assert match.value is not None
    text = match.value.text
    if operator in (MatchOperator.EQUAL, MatchOperator.NOT_EQUAL):
        return _equals(text, datum, subject) == (operator is MatchOperator.EQUAL)
    if operator in _REGEX_OPERATORS:
        if not isinstance(datum, str):
            raise FilterEvaluationError(f"'matches' needs a string, but {subject} is not")
        # Encoded by hand so that even a lone surrogate is searched rather than raising.
        found = match._regex.search(datum.encode("utf-8", "surrogatepass")) is not None
        return found == (operator is MatchOperator.MATCHES)
    return _contains(datum, text, subject) == (operator in (MatchOperator.IN, MatchOperator.CONTAINS))


def _select(selector: Selector, properties: Mapping[str, object]) -> object:
    current: object = properties
    last = len(selector.path) - 1
    for depth, part in enumerate(selector.path):
        if isinstance(current, Mapping):
            if part in current:
                current = current[part]
                continue
            if depth == 0:
                raise FilterEvaluationError(f"the artifact has no property '{part}'")
            if depth == last:
                return _ABSENT
            raise FilterEvaluationError(f"{selector}: '{part}' is missing")
        if isinstance(current, list | tuple):
            if not (part.isascii() and part.isdigit()) or int(part) >= len(current):
                raise FilterEvaluationError(
                    f"{selector}: '{part}' is not an index of a list of {len(current)} items"
                )
            current = current[int(part)]
            continue
        raise FilterEvaluationError(f"{selector}: cannot look up '{part}' in {_describe(current)}")
    return current


def _describe(datum: object) -> str:
    match datum:
        case bool():
            return "a boolean"
        case int():
            return "an integer"
        case float():
            return "a number"
        case str():
            return "a string"
        case list() | tuple():
            return "a list"
        case Mapping():
            return "a map"
        case None:
            return "null"
    return f"a value of type {type(datum).__name__}"


def _equals(text: str, datum: object, subject: str) -> bool:
    if isinstance(datum, str):
        return text == datum
    if isinstance(datum, bool | int | float):
        try:
            return _convert(text, datum) == datum
        except _ConversionError as error:
            raise FilterEvaluationError(f"cannot compare {subject} with {text!r}: {error}") from None
    raise FilterEvaluationError(f"cannot compare {subject} with '=='")


def _contains(container: object, text: str, subject: str) -> bool:
    if isinstance(container, str):
        return text in container
    if isinstance(container, Mapping):
        return text in container
    if isinstance(container, list | tuple):
        return any(_list_item_equals(item, text, subject) for item in container)
    raise FilterEvaluationError(f"'in' and 'contains' need a string, list or map, but {subject} is not")


def _list_item_equals(item: object, text: str, subject: str) -> bool:
    if isinstance(item, str):
        return item == text
    if not isinstance(item, bool | int | float):
        raise FilterEvaluationError(f"cannot look for {text!r} in {subject}: it holds {_describe(item)}")
    try:
        return _convert(text, item) == item
    except _ConversionError as error:
        # As go-bexpr does: items the value is not written like are skipped, but a value
        # out of an item type's range is an error.
        if error.out_of_range:
            raise FilterEvaluationError(f"cannot look for {text!r} in {subject}: {error}") from None
        return False


# --------------------------------------------------------------------------------------------
# Converting values the way Go's strconv does (ParseBool, ParseInt base 0, ParseFloat)
# --------------------------------------------------------------------------------------------


class _ConversionError(ValueError):
    def __init__(self, message: str, out_of_range: bool = False) -> None:
        super().__init__(message)
        self.out_of_range = out_of_range


_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# Underscores may only separate digits (or follow a base prefix), as in Go literals.
_GO_INTEGER = re.compile(
    r"[+-]?(?:0[xX](?:_?[0-9a-fA-F])+|0[bB](?:_?[01])+|0[oO](?:_?[0-7])+|0(?:_?[0-7])*|[1-9](?:_?[0-9])*)"
)
_DIGITS = r"[0-9](?:_?[0-9])*"
_HEX_DIGITS_RUN = r"[0-9a-fA-F](?:_?[0-9a-fA-F])*"
_GO_DECIMAL_FLOAT = re.compile(rf"[+-]?(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?")
_GO_HEX_FLOAT = re.compile(
    rf"[+-]?0[xX](?:_?{_HEX_DIGITS_RUN}(?:\.(?:{_HEX_DIGITS_RUN})?)?|\.{_HEX_DIGITS_RUN})[pP][+-]?{_DIGITS}"
)
_GO_FLOAT_SPECIAL = re.compile(r"[+-]?(?:inf|infinity)|nan", re.IGNORECASE)


def _convert(text: str, like: bool | float) -> bool | float:
    """Convert the text of a value to the type of ``like``, as go-bexpr converts it."""
    if isinstance(like, bool):
        return _parse_bool(text)
    if isinstance(like, int):
        return _parse_int64(text)
    return _parse_float64(text)


def _parse_bool(text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _ConversionError("not a boolean (true, false, 1, 0, t or f)")


def _parse_int64(text: str) -> int:
    if not _GO_INTEGER.fullmatch(text):
        raise _ConversionError("not an integer")
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-").replace("_", "")
    prefix = digits[:2].lower()
    if prefix in ("0x", "0b", "0o"):
        magnitude = int(digits[2:], {"0x": 16, "0b": 2, "0o": 8}[prefix])
    elif len(digits) > 1 and digits.startswith("0"):
        magnitude = int(digits, 8)
    else:
        magnitude = int(digits)
    value = sign * magnitude
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise _ConversionError("out of the range of a 64-bit integer", out_of_range=True)
    return value


def _parse_float64(text: str) -> float:
    if _GO_FLOAT_SPECIAL.fullmatch(text):
        return float(text)
    try:
        if _GO_DECIMAL_FLOAT.fullmatch(text):
            value = float(text.replace("_", ""))
        elif _GO_HEX_FLOAT.fullmatch(text):
            value = float.fromhex(text.replace("_", ""))
        else:
            raise _ConversionError("not a number")
    except OverflowError:
        value = math.inf
    if math.isinf(value):
        raise _ConversionError("out of the range of a 64-bit floating-point number", out_of_range=True)
    return value
