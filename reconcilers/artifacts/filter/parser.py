"""The parser of artifact filters: ``parse_filter`` and the limits it enforces.

A recursive descent over the tokens builds the syntax tree, reporting what was expected and where.
"""

from __future__ import annotations

from reconcilers.artifacts.filter.errors import InvalidArtifactFilter
from reconcilers.artifacts.filter.evaluation import Filter
from reconcilers.artifacts.filter.lexer import Kind, Lexer, Token
from reconcilers.artifacts.filter.regex import InvalidRegex
from reconcilers.artifacts.filter.syntax import (
    KEYWORDS,
    WITHOUT_VALUE,
    And,
    Expression,
    Literal,
    Match,
    MatchOperator,
    Not,
    Or,
    Selector,
    ValueKind,
    is_pointer_char,
)

# The artifact path's CRD pattern caps the whole path at 1024 characters, so no valid filter is
# longer. The cap keeps parsing, rendering and evaluation cheap whatever a manifest holds.
MAX_FILTER_LENGTH = 1024
# Deep enough for any hand-written filter, shallow enough that the recursive parser, renderer
# and evaluator stay far from Python's recursion limit.
MAX_NESTING_DEPTH = 32

_OPERATORS_HELP = "==, !=, in, not in, contains, not contains, is empty, is not empty, matches or not matches"


class _Parser:
    """Recursive descent over the tokens; recursion is bounded by MAX_NESTING_DEPTH."""

    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = tokens
        self._index = 0

    def parse(self) -> Expression:
        expression = self._or(0)
        token = self._peek()
        if token.kind is not Kind.END:
            message = f"expected 'and', 'or' or the end of the filter but found {token.describe()}"
            if token.kind is Kind.RIGHT_PAREN:
                message = "unexpected ')' without a matching '('"
            elif token.kind is Kind.WORD and token.text.lower() in KEYWORDS:
                message += "; keywords are written in lower case"
            raise InvalidArtifactFilter(message, token.position)
        return expression

    def _peek(self, ahead: int = 0) -> Token:
        return self._tokens[min(self._index + ahead, len(self._tokens) - 1)]

    def _advance(self) -> Token:
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
    def _starts_match_operator(token: Token) -> bool:
        return token.kind in (Kind.EQUAL, Kind.NOT_EQUAL) or token.is_keyword(
            "in", "is", "contains", "matches"
        )

    def _primary(self, depth: int) -> Expression:
        token = self._peek()
        if token.kind is Kind.LEFT_PAREN:
            inner = self._nest(depth)
            self._advance()
            expression = self._or(inner)
            if self._peek().kind is not Kind.RIGHT_PAREN:
                raise self._expected(f"')' to close the '(' at column {token.position + 1}")
            self._advance()
            return expression
        return self._match()

    def _match(self) -> Match:
        first = self._peek()
        if first.kind is Kind.END or first.kind is Kind.RIGHT_PAREN:
            raise self._expected("a comparison such as pushed == 1, 'not' or '('")
        if first.kind not in (Kind.WORD, Kind.NUMBER, Kind.STRING, Kind.RAW_STRING):
            raise self._expected("a property name or a value")
        after = self._peek(1)
        if after.is_keyword("in") or (after.is_keyword("not") and self._peek(2).is_keyword("in")):
            value = self._value("a value")
            operator = MatchOperator.IN
            if self._advance().text == "not":
                self._advance()  # the "in" after it
                operator = MatchOperator.NOT_IN
            return Match(self._selector(f"after '{operator.value}'"), operator, value)
        if first.kind in (Kind.NUMBER, Kind.RAW_STRING):
            self._advance()
            raise self._expected(f"'in' or 'not in' after the value {first.describe()}")
        selector = self._selector("")
        operator = self._operator(selector)
        if operator in WITHOUT_VALUE:
            return Match(selector, operator)
        value_token = self._peek()
        value = self._value(f"a value after '{operator.value}'")
        try:
            return Match(selector, operator, value)
        except InvalidRegex as error:
            raise InvalidArtifactFilter(
                f"invalid regular expression {value_token.text}: {error}", value_token.position
            ) from None

    def _operator(self, selector: Selector) -> MatchOperator:
        token = self._advance()
        if token.kind is Kind.EQUAL:
            return MatchOperator.EQUAL
        if token.kind is Kind.NOT_EQUAL:
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
        if token.kind is Kind.WORD:
            self._advance()
            return Selector(tuple(token.text.split(".")))
        if token.kind is Kind.STRING:
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
            Kind.NUMBER: ValueKind.NUMBER,
            Kind.WORD: ValueKind.WORD,
            Kind.STRING: ValueKind.STRING,
            Kind.RAW_STRING: ValueKind.STRING,
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
    if not all(part and all(is_pointer_char(char) for char in part) for part in parts):
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
    return Filter(_Parser(Lexer(text).tokens()).parse())
