"""The lexer of artifact filters: the text cut into tokens, strings decoded as Go decodes them.

go-bexpr's grammar is a PEG over characters; the lexer does its character-level part. Every
token kind here is produced by exactly one of its rules, so a character sequence that the lexer
rejects (an invalid number, escape or index, an unterminated string, a stray character) is one
that go-bexpr rejects too, wherever it appears: its parser either records the same error or
cannot consume those characters at all.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from reconcilers.artifacts.filter.errors import InvalidArtifactFilter
from reconcilers.artifacts.filter.syntax import NUMBER, is_pointer_char

WHITESPACE = frozenset(" \t\r\n")


class Kind(enum.Enum):
    WORD = "word"  # a name, a dotted or indexed selector, or a keyword: pushed, a.b.0, m["k"], and
    NUMBER = "number"
    STRING = "string"  # "double quoted": a value, or a JSON pointer selector
    RAW_STRING = "raw string"  # `backquoted`
    EQUAL = "=="
    NOT_EQUAL = "!="
    LEFT_PAREN = "("
    RIGHT_PAREN = ")"
    LEFT_BRACE = "{"
    RIGHT_BRACE = "}"
    COMMA = ","
    UNDERSCORE = "_"
    END = "end"


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str  # the token as written
    position: int
    # Whitespace right before the token: go-bexpr requires it around its word operators.
    spaced: bool
    # WORD: the selector's parts (one for a plain name); STRING and RAW_STRING: the decoded
    # contents; NUMBER: the number as written.
    value: str = ""
    parts: tuple[str, ...] = ()
    # STRING: the parts of the JSON pointer it spells, or None if it does not spell one.
    pointer: tuple[str, ...] | None = None

    def is_name(self) -> bool:
        """A single name, without '.' or an index: what collection bindings need."""
        return self.kind is Kind.WORD and len(self.parts) == 1 and self.text == self.parts[0]

    def is_keyword(self, word: str) -> bool:
        return self.is_name() and self.text == word

    def describe(self) -> str:
        if self.kind is Kind.END:
            return "the end of the filter"
        shown = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        return f"'{shown}'"


_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_/]*")
_DIGITS = re.compile(r"[0-9]+")
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
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
    "[": 'an index such as x["key"] follows a name directly',
    "]": "']' without an opening '['",
}


class Lexer:
    def __init__(self, text: str) -> None:
        self._text = text
        self._position = 0

    def tokens(self) -> list[Token]:
        tokens = []
        while True:
            token = self._next()
            tokens.append(token)
            if token.kind is Kind.END:
                return tokens

    def _error(self, message: str, position: int) -> InvalidArtifactFilter:
        return InvalidArtifactFilter(message, position)

    def _skip_whitespace(self) -> bool:
        start = self._position
        while self._position < len(self._text) and self._text[self._position] in WHITESPACE:
            self._position += 1
        return self._position > start

    def _next(self) -> Token:
        spaced = self._skip_whitespace()
        text = self._text
        start = self._position
        if start == len(text):
            return Token(Kind.END, "", start, spaced)
        char = text[start]
        punctuation = {
            "(": Kind.LEFT_PAREN,
            ")": Kind.RIGHT_PAREN,
            "{": Kind.LEFT_BRACE,
            "}": Kind.RIGHT_BRACE,
            ",": Kind.COMMA,
            "_": Kind.UNDERSCORE,
        }
        if char in punctuation:
            self._position += 1
            return Token(punctuation[char], char, start, spaced)
        if text.startswith("==", start) or text.startswith("!=", start):
            self._position += 2
            kind = Kind.EQUAL if char == "=" else Kind.NOT_EQUAL
            return Token(kind, text[start : start + 2], start, spaced)
        if char == '"' or char == "`":
            value, end = self._string(start)
            self._position = end
            raw = text[start:end]
            kind = Kind.STRING if char == '"' else Kind.RAW_STRING
            pointer = _json_pointer(raw[1:-1]) if kind is Kind.STRING else None
            return Token(kind, raw, start, spaced, value=value, pointer=pointer)
        if char.isascii() and (char.isdigit() or char == "-"):
            return self._number(start, spaced)
        if char.isascii() and char.isalpha():
            return self._word(start, spaced)
        hint = _UNEXPECTED_CHARACTER_HINTS.get(char)
        message = f"unexpected character {char!r}" + (f": {hint}" if hint else "")
        raise self._error(message, start)

    def _word(self, start: int, spaced: bool) -> Token:
        """A name and what follows it without whitespace: .name, .0 and ["key"] (a selector)."""
        text = self._text
        match = _NAME.match(text, start)
        assert match is not None
        parts = [match.group()]
        position = match.end()
        while position < len(text):
            if text[position] == ".":
                following = _NAME.match(text, position + 1) or _DIGITS.match(text, position + 1)
                if following is None:
                    # Nothing else can follow a selector's '.', so go-bexpr fails here too.
                    raise self._error("expected a name or a list index after '.'", position + 1)
                parts.append(following.group())
                position = following.end()
            elif text[position] == "[":
                key, position = self._index(position)
                parts.append(key)
            else:
                break
        self._position = position
        return Token(Kind.WORD, text[start:position], start, spaced, parts=tuple(parts))

    def _index(self, bracket: int) -> tuple[str, int]:
        """The key of an index ["key"] at ``bracket``, and the position after its ']'."""
        self._position = bracket + 1
        self._skip_whitespace()
        if self._position == len(self._text) or self._text[self._position] not in '"`':
            raise self._error('an index needs a quoted key, as in x["key"]', self._position)
        key, end = self._string(self._position)
        self._position = end
        self._skip_whitespace()
        if not self._text.startswith("]", self._position):
            raise self._error("expected ']' to close the index", self._position)
        return key, self._position + 1

    def _number(self, start: int, spaced: bool) -> Token:
        text = self._text
        match = NUMBER.match(text, start)
        if match is None:
            raise self._error(
                "unexpected '-': a number must follow it; quote text that contains '-', such as \"my-model\"",
                start,
            )
        end = match.end()
        # go-bexpr ends a number with whitespace, ')' or the end of the filter, and nothing else.
        if end < len(text) and text[end] not in WHITESPACE and text[end] != ")":
            stop = end
            while stop < len(text) and text[stop] not in WHITESPACE and stop - start < 40:
                stop += 1
            raise self._error(
                f"invalid number '{text[start:stop]}': write numbers like 1, -2 or 0.5, "
                "followed by a space, ')' or the end of the filter, and quote other text",
                start,
            )
        self._position = end
        return Token(Kind.NUMBER, match.group(), start, spaced, value=match.group())

    def _string(self, start: int) -> tuple[str, int]:
        """Decode the string at ``start`` as Go's strconv.Unquote does; return it and its end."""
        text = self._text
        quote = text[start]
        # The string ends at the next quote character: a backslash does not escape it (go-bexpr's
        # grammar cuts the string there before decoding it).
        end = text.find(quote, start + 1)
        if end < 0:
            raise self._error(f"unterminated string: missing the closing '{quote}'", start)
        if quote == "`":
            # As Go does for raw strings, carriage returns are dropped.
            return text[start + 1 : end].replace("\r", ""), end + 1
        return self._decode_double_quoted(start + 1, end), end + 1

    def _decode_double_quoted(self, start: int, end: int) -> str:
        # Go strings are bytes: \xHH and octal escapes add single bytes, which may not form UTF-8.
        # Those bytes survive as lone surrogates (the 'surrogateescape' error handler), so the
        # value still equals exactly the property values Go would find equal.
        text = self._text
        contents = bytearray()
        position = start
        while position < end:
            char = text[position]
            if char == "\n":
                raise self._error("line break inside a string: write \\n instead", position)
            if char == "\\":
                position = self._escape(position, end, contents)
            else:
                contents += char.encode("utf-8")
                position += 1
        return contents.decode("utf-8", "surrogateescape")

    def _escape(self, backslash: int, end: int, contents: bytearray) -> int:
        """Decode the escape at ``backslash`` into ``contents``; return the position after it."""
        text = self._text[:end]
        letter = text[backslash + 1 : backslash + 2]
        if letter in _SIMPLE_ESCAPES:
            contents += _SIMPLE_ESCAPES[letter].encode()
            return backslash + 2
        if letter in _HEX_ESCAPE_LENGTHS:
            length = _HEX_ESCAPE_LENGTHS[letter]
            digits = text[backslash + 2 : backslash + 2 + length]
            if len(digits) < length or not set(digits) <= _HEX_DIGITS:
                raise self._error(f"invalid escape: \\{letter} needs {length} hexadecimal digits", backslash)
            code = int(digits, 16)
            if letter == "x":
                contents.append(code)
            elif 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
                raise self._error(f"invalid escape: U+{code:X} is not a character", backslash)
            else:
                contents += chr(code).encode("utf-8")
            return backslash + 2 + length
        if letter in _OCTAL_DIGITS:
            digits = text[backslash + 1 : backslash + 4]
            if len(digits) < 3 or not set(digits) <= _OCTAL_DIGITS or int(digits, 8) > 0o377:
                raise self._error("invalid escape: an octal escape is \\ and 3 digits up to \\377", backslash)
            contents.append(int(digits, 8))
            return backslash + 4
        if not letter:
            # The string's closing quote came right after the backslash: `"a\"` is a string "a\".
            raise self._error(
                "invalid escape at the end of the string: a string cannot contain '\"'; write \\x22",
                backslash,
            )
        raise self._error(f"invalid escape \\{letter} in a string", backslash)


_POINTER_SEGMENT = re.compile(r"/([^/]+)")


def _json_pointer(contents: str) -> tuple[str, ...] | None:
    """The parts of the JSON pointer that the contents of a "string" spell, or None.

    go-bexpr reads a quoted selector as '/'-separated segments of letters, digits and ``-_.~:|``
    (none empty, no escapes), then unescapes ``~1`` to ``/`` and ``~0`` to ``~``. ``""`` has no
    segment and is the pointer to the property with the empty name.
    """
    if not contents:
        return ("",)
    if not contents.startswith("/"):
        return None
    segments = contents[1:].split("/")
    if not all(segment and all(is_pointer_char(char) for char in segment) for segment in segments):
        return None
    return tuple(segment.replace("~1", "/").replace("~0", "~") for segment in segments)
