"""The lexer of artifact filters: the text cut into tokens, strings decoded as Go decodes them."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from reconcilers.artifacts.filter.errors import InvalidArtifactFilter
from reconcilers.artifacts.filter.syntax import NUMBER, WORD


class Kind(enum.Enum):
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
class Token:
    kind: Kind
    text: str  # the token as written
    value: str  # a string's contents, or the text of anything else
    position: int

    def is_keyword(self, *words: str) -> bool:
        return self.kind is Kind.WORD and self.text in words

    def describe(self) -> str:
        if self.kind is Kind.END:
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

    def _next(self) -> Token:
        text = self._text
        while self._position < len(text) and text[self._position] in _WHITESPACE:
            self._position += 1
        start = self._position
        if start == len(text):
            return Token(Kind.END, "", "", start)
        char = text[start]
        if char in "()":
            self._position += 1
            return Token(Kind.LEFT_PAREN if char == "(" else Kind.RIGHT_PAREN, char, char, start)
        if text.startswith("==", start) or text.startswith("!=", start):
            self._position += 2
            kind = Kind.EQUAL if char == "=" else Kind.NOT_EQUAL
            return Token(kind, text[start : start + 2], text[start : start + 2], start)
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

    def _word(self, start: int) -> Token:
        match = WORD.match(self._text, start)
        assert match is not None
        end = match.end()
        if self._text.startswith(".", end):
            raise self._error("expected a name or a list index after '.'", end + 1)
        self._position = end
        return Token(Kind.WORD, match.group(), match.group(), start)

    def _number(self, start: int) -> Token:
        match = NUMBER.match(self._text, start)
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
        return Token(Kind.NUMBER, match.group(), match.group(), start)

    def _raw_string(self, start: int) -> Token:
        end = self._text.find("`", start + 1)
        if end < 0:
            raise self._error("unterminated string: missing the closing '`'", start)
        self._position = end + 1
        # As Go does for raw strings, carriage returns are dropped.
        contents = self._text[start + 1 : end].replace("\r", "")
        return Token(Kind.RAW_STRING, self._text[start : end + 1], contents, start)

    def _double_quoted(self, start: int) -> Token:
        text = self._text
        position = start + 1
        contents: list[str] = []
        while position < len(text):
            char = text[position]
            if char == '"':
                self._position = position + 1
                return Token(Kind.STRING, text[start : position + 1], "".join(contents), start)
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
