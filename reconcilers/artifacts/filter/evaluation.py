"""A parsed artifact filter and its evaluation against an artifact's custom properties.

Properties are plain Python values standing for the Go values go-bexpr sees: ``float`` for
float64 (every number the reference operator's JSON-decoded metadata holds), ``int`` for int64
(the index a collection expression binds), ``bool``, ``str``, ``None`` for JSON null, ``list``
and ``dict``. Each operator applies to each of them as in go-bexpr; see the package docstring.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reconcilers.artifacts.filter.conversion import (
    ConversionError,
    convert,
    go_bytes,
    parse_bool,
    parse_float64,
    parse_index,
    parse_int64,
)
from reconcilers.artifacts.filter.errors import FilterEvaluationError
from reconcilers.artifacts.filter.regex import search
from reconcilers.artifacts.filter.syntax import (
    REGEX_OPERATORS,
    And,
    Binding,
    Collection,
    CollectionOperator,
    Expression,
    Match,
    MatchOperator,
    Not,
    Or,
    Selector,
)

# Evaluation stops with an error (so the artifact is not selected) after this many steps. No
# realistic filter comes near it; nested collection expressions over long lists could otherwise
# take time exponential in their depth.
MAX_EVALUATION_STEPS = 100_000


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
        return _Evaluation(properties).evaluate(self.expression, ())


@dataclass(frozen=True)
class _Local:
    """A name bound by a collection expression: to a path into the properties (an item), or to
    a value of its own (a list index or a map key)."""

    name: str
    path: tuple[str, ...] | None
    value: object = None


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
    MatchOperator.IS_NIL: True,
    MatchOperator.IS_NOT_NIL: False,
    MatchOperator.MATCHES: False,
    MatchOperator.NOT_MATCHES: True,
}
_NEGATED = frozenset(
    {
        MatchOperator.NOT_EQUAL,
        MatchOperator.NOT_IN,
        MatchOperator.NOT_CONTAINS,
        MatchOperator.IS_NOT_EMPTY,
        MatchOperator.IS_NOT_NIL,
        MatchOperator.NOT_MATCHES,
    }
)


class _Absent:
    """A selector's last key is missing from a map that exists."""


_ABSENT = _Absent()


class _Evaluation:
    def __init__(self, properties: Mapping[str, object]) -> None:
        self._properties = properties
        self._steps = 0

    def evaluate(self, expression: Expression, scope: tuple[_Local, ...]) -> bool:
        self._steps += 1
        if self._steps > MAX_EVALUATION_STEPS:
            raise FilterEvaluationError(f"the filter takes more than {MAX_EVALUATION_STEPS} steps")
        match expression:
            case Match():
                return self._match(expression, scope)
            case Not(operand=operand):
                return not self.evaluate(operand, scope)
            case And(operands=operands):
                return all(self.evaluate(operand, scope) for operand in operands)
            case Or(operands=operands):
                return any(self.evaluate(operand, scope) for operand in operands)
            case Collection():
                return self._collection(expression, scope)
        raise TypeError(f"not a filter expression: {expression!r}")

    # -- selectors ----------------------------------------------------------------------------

    def _lookup(self, path: tuple[str, ...], scope: tuple[_Local, ...]) -> object:
        # Innermost names first; a name bound to an item stands for that item's path, whose
        # first part may itself be a name bound further out.
        for local in reversed(scope):
            if path[0] != local.name:
                continue
            if local.path is None:
                if len(path) > 1:
                    raise FilterEvaluationError(
                        f"'{local.name}' is a list index or a map key, so it has no '{path[1]}'"
                    )
                return local.value
            path = local.path + path[1:]
        return _get(self._properties, path)

    # -- comparisons --------------------------------------------------------------------------

    def _match(self, match: Match, scope: tuple[_Local, ...]) -> bool:
        datum = self._lookup(match.selector.path, scope)
        operator = match.operator
        if datum is _ABSENT:
            return _RESULT_WHEN_ABSENT[operator]
        subject = _Subject(match.selector, datum)
        text = match.value.text if match.value is not None else ""
        if operator in (MatchOperator.EQUAL, MatchOperator.NOT_EQUAL):
            result = _equals(text, datum, subject)
        elif operator in (MatchOperator.IS_EMPTY, MatchOperator.IS_NOT_EMPTY):
            if not isinstance(datum, str | list | tuple | Mapping):
                raise FilterEvaluationError(f"'is empty' needs a string, list or map, but {subject} is not")
            result = len(datum) == 0
        elif operator in (MatchOperator.IS_NIL, MatchOperator.IS_NOT_NIL):
            if not isinstance(datum, list | tuple | Mapping | None):
                raise FilterEvaluationError(f"'is nil' needs a list, a map or null, but {subject} is not")
            result = datum is None
        elif operator in REGEX_OPERATORS:
            if not isinstance(datum, str):
                raise FilterEvaluationError(f"'matches' needs a string, but {subject} is not")
            result = search(match.regex, datum)
        else:
            result = _contains(datum, text, subject)
        return result != (operator in _NEGATED)

    # -- collections --------------------------------------------------------------------------

    def _collection(self, collection: Collection, scope: tuple[_Local, ...]) -> bool:
        path = collection.selector.path
        datum = self._lookup(path, scope)
        every = collection.operator is CollectionOperator.ALL
        if datum is _ABSENT:
            return every
        binding = collection.binding
        if isinstance(datum, Mapping):
            if not all(isinstance(key, str) for key in datum):
                raise FilterEvaluationError(f"{collection.selector} is a map whose keys are not all strings")
            bound = [_map_item_names(binding, path, key) for key in datum]
        elif isinstance(datum, list | tuple):
            bound = [_list_item_names(binding, path, index) for index in range(len(datum))]
        else:
            raise FilterEvaluationError(f"{collection.selector} ({_describe(datum)}) is not a list or a map")
        for names in bound:
            if binding.index is not None and binding.index == binding.value:
                raise FilterEvaluationError(f"'{binding.index}' cannot name both the index and the value")
            result = self.evaluate(collection.body, scope + names)
            if result != every:
                return result
        return every


def _map_item_names(binding: Binding, path: tuple[str, ...], key: str) -> tuple[_Local, ...]:
    # As in go-bexpr: "as k" names a map's key, "as k, v" its key and its value.
    names = []
    if binding.default is not None:
        names.append(_Local(binding.default, None, key))
    if binding.index is not None:
        names.append(_Local(binding.index, None, key))
    if binding.value is not None:
        names.append(_Local(binding.value, (*path, key)))
    return tuple(names)


def _list_item_names(binding: Binding, path: tuple[str, ...], index: int) -> tuple[_Local, ...]:
    # "as v" names a list's item, "as i, v" its index (an int64 to go-bexpr) and its item.
    names = []
    if binding.index is not None:
        names.append(_Local(binding.index, None, index))
    for name in (binding.default, binding.value):
        if name is not None:
            names.append(_Local(name, (*path, str(index))))
    return tuple(names)


def _get(properties: Mapping[str, object], path: tuple[str, ...]) -> object:
    """Follow ``path`` into the properties as go-bexpr's selector library does."""
    current: object = properties
    for depth, part in enumerate(path):
        if isinstance(current, Mapping):
            if part in current:
                current = current[part]
                continue
            if depth == 0:
                raise FilterEvaluationError(f"the artifact has no property '{part}'")
            if depth == len(path) - 1:
                return _ABSENT
            raise FilterEvaluationError(f"'{part}' is missing from {'.'.join(path[:depth])}")
        if isinstance(current, list | tuple):
            try:
                index = parse_index(part)
            except ConversionError:
                index = -1
            if not 0 <= index < len(current):
                raise FilterEvaluationError(f"'{part}' is not an index of a list of {len(current)} items")
            current = current[index]
            continue
        raise FilterEvaluationError(f"cannot look up '{part}' in {_describe(current)}")
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


@dataclass(frozen=True)
class _Subject:
    """What a comparison is about, rendered only for an error message."""

    selector: Selector
    datum: object

    def __str__(self) -> str:
        return f"{self.selector} ({_describe(self.datum)})"


def _equals(text: str, datum: object, subject: _Subject) -> bool:
    if isinstance(datum, str):
        return text == datum
    if isinstance(datum, bool | int | float):
        try:
            return convert(text, datum) == datum
        except ConversionError as error:
            raise FilterEvaluationError(f"cannot compare {subject} with {text!r}: {error}") from None
    raise FilterEvaluationError(f"cannot compare {subject} with '=='")


def _contains(container: object, text: str, subject: _Subject) -> bool:
    if isinstance(container, str):
        # Go compares bytes, which matters only for values holding bytes that are not UTF-8.
        return go_bytes(text) in go_bytes(container)
    if isinstance(container, Mapping):
        return text in container
    if isinstance(container, list | tuple):
        return any(_list_item_equals(item, text, subject) for item in container)
    raise FilterEvaluationError(f"'in' and 'contains' need a string, list or map, but {subject} is not")


_ITEM_PARSERS = {bool: parse_bool, int: parse_int64, float: parse_float64}


def _list_item_equals(item: object, text: str, subject: _Subject) -> bool:
    if isinstance(item, str):
        return item == text
    parse = _ITEM_PARSERS.get(type(item))
    if parse is None:
        # go-bexpr fails on items that are lists or maps, and crashes on null ones.
        raise FilterEvaluationError(f"cannot look for {text!r} in {subject}: it holds {_describe(item)}")
    try:
        return parse(text) == item
    except ConversionError as error:
        # As go-bexpr does: items the value is not written like are skipped, but a value
        # out of an item type's range is an error.
        if error.out_of_range:
            raise FilterEvaluationError(f"cannot look for {text!r} in {subject}: {error}") from None
        return False
