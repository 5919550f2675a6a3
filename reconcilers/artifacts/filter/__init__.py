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

from reconcilers.artifacts.filter.errors import FilterEvaluationError, InvalidArtifactFilter
from reconcilers.artifacts.filter.evaluation import Filter
from reconcilers.artifacts.filter.parser import MAX_FILTER_LENGTH, MAX_NESTING_DEPTH, parse_filter
from reconcilers.artifacts.filter.syntax import (
    And,
    Expression,
    Literal,
    Match,
    MatchOperator,
    Not,
    Or,
    Selector,
    ValueKind,
)

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
