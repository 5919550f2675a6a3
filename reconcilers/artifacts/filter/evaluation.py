"""A parsed artifact filter and its evaluation against an artifact's custom properties.

Each operator applies to each type of property as in go-bexpr; see the package docstring.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reconcilers.artifacts.filter.conversion import ConversionError, convert
from reconcilers.artifacts.filter.errors import FilterEvaluationError
from reconcilers.artifacts.filter.syntax import (
    REGEX_OPERATORS,
    WITHOUT_VALUE,
    And,
    Expression,
    Match,
    MatchOperator,
    Not,
    Or,
    Selector,
)


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


class _Absent:
    """A nested selector's last key is missing from a map that exists."""


_ABSENT = _Absent()


def _evaluate_match(match: Match, properties: Mapping[str, object]) -> bool:
    datum = _select(match.selector, properties)
    if datum is _ABSENT:
        return _RESULT_WHEN_ABSENT[match.operator]
    operator = match.operator
    subject = f"{match.selector} ({_describe(datum)})"
    if operator in WITHOUT_VALUE:
        if not isinstance(datum, str | list | tuple | Mapping):
            raise FilterEvaluationError(f"'is empty' needs a string, list or map, but {subject} is not")
        return (len(datum) == 0) == (operator is MatchOperator.IS_EMPTY)
    assert match.value is not None
    text = match.value.text
    if operator in (MatchOperator.EQUAL, MatchOperator.NOT_EQUAL):
        return _equals(text, datum, subject) == (operator is MatchOperator.EQUAL)
    if operator in REGEX_OPERATORS:
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
            return convert(text, datum) == datum
        except ConversionError as error:
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
        return convert(text, item) == item
    except ConversionError as error:
        # As go-bexpr does: items the value is not written like are skipped, but a value
        # out of an item type's range is an error.
        if error.out_of_range:
            raise FilterEvaluationError(f"cannot look for {text!r} in {subject}: {error}") from None
        return False
