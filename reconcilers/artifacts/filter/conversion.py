"""Go-compatible value conversions: a filter value's text to the type of a property.

Text is converted the way Go's strconv does (ParseBool, ParseInt base 0, ParseFloat), as go-bexpr
converts it, and list indexes the way its selector library reads them.
"""

from __future__ import annotations

import math
import re


class ConversionError(ValueError):
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


def convert(text: str, like: bool | float) -> bool | float:
    """Convert the text of a value to the type of ``like``, as go-bexpr converts it.

    ``like`` stands for a Go value: ``bool`` for bool, ``int`` for int64, ``float`` for float64.
    """
    if isinstance(like, bool):
        return parse_bool(text)
    if isinstance(like, int):
        return parse_int64(text)
    return parse_float64(text)


def parse_bool(text: str) -> bool:
    """Go's strconv.ParseBool."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConversionError("not a boolean (true, false, 1, 0, t or f)")


def parse_int64(text: str) -> int:
    """Go's strconv.ParseInt(text, 0, 64): decimal, 0x, 0o, 0b or 0 (octal) prefixed."""
    if not _GO_INTEGER.fullmatch(text):
        raise ConversionError("not an integer")
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
        raise ConversionError("out of the range of a 64-bit integer", out_of_range=True)
    return value


def parse_float64(text: str) -> float:
    """Go's strconv.ParseFloat(text, 64)."""
    if _GO_FLOAT_SPECIAL.fullmatch(text):
        return float(text)
    try:
        if _GO_DECIMAL_FLOAT.fullmatch(text):
            value = float(text.replace("_", ""))
        elif _GO_HEX_FLOAT.fullmatch(text):
            value = float.fromhex(text.replace("_", ""))
        else:
            raise ConversionError("not a number")
    except OverflowError:
        value = math.inf
    if math.isinf(value):
        raise ConversionError("out of the range of a 64-bit floating-point number", out_of_range=True)
    return value


def parse_index(part: str) -> int:
    """A list index in a selector: ParseInt base 0, with "" meaning 0 (mapstructure's weak decoding,
    which go-bexpr's selector library uses), so ``l.010`` is item 8."""
    return parse_int64(part or "0")


def go_bytes(text: str) -> bytes:
    """The bytes of the Go string that ``text`` stands for.

    A string in a filter may hold bytes that are not UTF-8 (``"\\xff"``); the lexer keeps each
    as a lone surrogate U+DC80..U+DCFF (Python's 'surrogateescape'), turned back into the byte here.
    """
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")
