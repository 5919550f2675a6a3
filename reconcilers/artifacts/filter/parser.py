"""The parser of artifact filters: ``parse_filter`` and the limits it enforces.

go-bexpr (v0.1.16) parses with a PEG, whose ordered choices commit to the first alternative that
succeeds. The parser follows that grammar rule by rule over the lexer's tokens, so that it
accepts exactly the filters go-bexpr accepts and builds the same tree:

    filter     = or-expr END
    or-expr    = and-expr ( _or_ or-expr )?  |  collection
    and-expr   = not-expr ( _and_ and-expr )?
    not-expr   = "not"_ not-expr  |  group
    group      = "(" or-expr ")"  |  match
    match      = selector op value  |  selector is-op  |  value in-op selector
    collection = ("any" | "all")_ selector _as_ binding "{" or-expr "}"

where ``_`` marks the whitespace go-bexpr requires. What the choices imply:

* a collection expression is tried only where an and-expression cannot even start, so it stands
  alone, in parentheses, or last in a chain of 'or';
* ``not`` is first taken as the operator and, when what follows cannot be read, as a property
  or value named "not" (``not == 1``, ``not in tags``);
* once a choice has succeeded it is never revisited, even if the text after it then fails.

The only backtracking is at those two choices (over at most the length of a run of 'not's), so
parsing takes time linear in the filter's length.
"""

from __future__ import annotations

from reconcilers.artifacts.filter.errors import InvalidArtifactFilter
from reconcilers.artifacts.filter.evaluation import Filter
from reconcilers.artifacts.filter.lexer import Kind, Lexer, Token
from reconcilers.artifacts.filter.regex import InvalidRegex, program_size
from reconcilers.artifacts.filter.syntax import (
    KEYWORDS,
    WITHOUT_VALUE,
    And,
    Binding,
    Collection,
    CollectionOperator,
    Expression,
    Literal,
    Match,
    MatchOperator,
    Not,
    Or,
    Selector,
    ValueKind,
)

# The artifact path's CRD pattern caps the whole path at 1024 characters, so no valid filter is
# longer. The cap keeps parsing, rendering and evaluation cheap whatever a manifest holds.
MAX_FILTER_LENGTH = 1024
# How deep parentheses and collection expressions may nest: deep enough for any hand-written
# filter (go-bexpr's own parser gives up on more than about six nested parentheses, its budget of
# 2,000,000 steps), shallow enough that the recursive parser, evaluator and renderer (about six
# frames a level) stay far from Python's recursion limit whatever the caller's depth. go-bexpr
# has no such cap on collection expressions, of which 1024 characters hold up to 85.
MAX_NESTING_DEPTH = 32
# How large, in RE2 instructions, a filter's regular expressions may compile to together. Everyday
# patterns take a few dozen; one of the largest anyone could want, \pL{1000}, 1.2 million. The cap
# bounds the time and memory one filter's patterns take (about a second and 20 MB per million).
MAX_REGEX_PROGRAM_SIZE = 2_000_000

_OPERATORS_HELP = (
    "==, !=, in, not in, contains, not contains, matches, not matches, is empty, is not empty, "
    "is nil or is not nil"
)


class _NoMatch(Exception):
    """The rule being tried does not match here; the caller may try another alternative."""


class _Parser:
    """One method per grammar rule. Failures that go-bexpr reports as errors, or after which it
    cannot succeed, raise InvalidArtifactFilter at once; others raise _NoMatch, and the farthest
    of those becomes the message if no alternative succeeds."""

    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = tokens
        self._index = 0
        # The failure that got farthest: (token index, message, whether a stronger message at
        # the same token should replace it).
        self._farthest = (-1, "", False)
        self._after_bare_collection = -1
        self._regex_program_size = 0

    def parse(self) -> Expression:
        try:
            expression = self._or(0)
            if self._peek().kind is not Kind.END:
                self._fail(*self._unexpected_after_expression())
            return expression
        except _NoMatch:
            index, message, _ = self._farthest
            raise InvalidArtifactFilter(message, self._tokens[index].position) from None

    def _unexpected_after_expression(self) -> tuple[str, int]:
        """What is wrong with the token after a complete expression, and how far ahead."""
        token = self._peek()
        if token.kind is Kind.RIGHT_PAREN:
            return "unexpected ')' without a matching '('", 0
        if self._index == self._after_bare_collection:
            return (
                f"expected the end of the filter after a collection expression but found {token.describe()}; "
                "put it in parentheses to combine it with 'and' or 'or'"
            ), 0
        message = f"expected 'and', 'or' or the end of the filter but found {token.describe()}"
        if token.kind is Kind.WORD and token.text.lower() in KEYWORDS and token.text not in KEYWORDS:
            return message + "; keywords are written in lower case", 0
        if token.is_keyword("and") or token.is_keyword("or"):
            if self._peek(1).kind is Kind.END:
                return f"expected a comparison after '{token.text}'", 1
            return f"'{token.text}' needs whitespace on both sides", 0
        return message, 0

    # -- tokens -------------------------------------------------------------------------------

    def _peek(self, ahead: int = 0) -> Token:
        return self._tokens[min(self._index + ahead, len(self._tokens) - 1)]

    def _advance(self) -> Token:
        token = self._peek()
        self._index = min(self._index + 1, len(self._tokens) - 1)
        return token

    def _keyword(self, word: str, ahead: int = 0, *, space_after: bool = True) -> bool:
        """The token ``ahead`` is the word operator ``word`` with the whitespace go-bexpr needs:
        before it always, after it unless it ends the operator (``empty``, ``nil``)."""
        token = self._peek(ahead)
        return token.is_keyword(word) and token.spaced and (not space_after or self._peek(ahead + 1).spaced)

    def _fail(self, message: str, ahead: int = 0, *, weak: bool = False) -> _NoMatch:
        """Record why the rule does not match and raise _NoMatch. A weak message (for a reading
        that is only a fallback) gives way to another one at the same place."""
        index = min(self._index + ahead, len(self._tokens) - 1)
        farthest, _, farthest_weak = self._farthest
        if index > farthest or (index == farthest and farthest_weak and not weak):
            self._farthest = (index, message, weak)
        raise _NoMatch

    def _expected(self, what: str, ahead: int = 0, *, weak: bool = False) -> _NoMatch:
        return self._fail(f"expected {what} but found {self._peek(ahead).describe()}", ahead, weak=weak)

    def _fatal(self, message: str, ahead: int = 0) -> InvalidArtifactFilter:
        return InvalidArtifactFilter(message, self._peek(ahead).position)

    def _nest(self, depth: int) -> int:
        if depth >= MAX_NESTING_DEPTH:
            raise self._fatal(
                f"the filter nests parentheses and collection expressions more than "
                f"{MAX_NESTING_DEPTH} levels deep"
            )
        return depth + 1

    # -- boolean structure --------------------------------------------------------------------

    def _or(self, depth: int) -> Expression:
        operands: list[Expression] = []
        while True:
            start = self._index
            try:
                first: Expression | None = self._not(depth)
            except _NoMatch:
                first = None
            if first is None:
                # Only an and-expression that cannot even start gives way to a collection, and
                # that ends the chain: go-bexpr reads no 'or' or 'and' after a bare collection.
                self._index = start
                operands.append(self._collection(depth))
                self._after_bare_collection = self._index
                break
            operands.append(self._and(first, depth))
            if not self._keyword("or"):
                break
            self._advance()
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def _and(self, first: Expression, depth: int) -> Expression:
        operands = [first]
        while self._keyword("and"):
            self._advance()
            operands.append(self._not(depth))
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def _not(self, depth: int) -> Expression:
        # "not" followed by whitespace is first read as the operator: with n of them in a row,
        # the group after all n is tried first, then the one starting at the last "not" (where
        # "not" is a name or a value), and so on back, as go-bexpr's ordered choice does.
        start = self._index
        count = 0
        while self._peek(count).is_keyword("not") and self._peek(count + 1).spaced:
            count += 1
        for negations in range(count, -1, -1):
            self._index = start + negations
            try:
                group = self._group(depth)
            except _NoMatch:
                continue
            # go-bexpr drops double negations: "not not x" and "not (not x)" are x.
            for _ in range(negations):
                group = group.operand if isinstance(group, Not) else Not(group)
            return group
        self._index = start
        raise _NoMatch

    def _group(self, depth: int) -> Expression:
        token = self._peek()
        if token.kind is not Kind.LEFT_PAREN:
            return self._match()
        inner = self._nest(depth)
        self._advance()
        expression = self._or(inner)
        if self._peek().kind is not Kind.RIGHT_PAREN:
            raise self._expected(f"')' to close the '(' at column {token.position + 1}")
        self._advance()
        return expression

    # -- collections --------------------------------------------------------------------------

    def _collection(self, depth: int) -> Collection:
        token = self._peek()
        if not (token.is_keyword("any") or token.is_keyword("all")) or not self._peek(1).spaced:
            raise self._expected("a comparison such as pushed == 1, 'not', '(', 'any' or 'all'")
        operator = CollectionOperator(token.text)
        self._advance()
        selector = self._selector(f"after '{operator.value}'")
        if not self._keyword("as"):
            raise self._expected(f"' as ' after '{operator.value} {selector}'")
        self._advance()
        binding = self._binding()
        brace = self._peek()
        if brace.kind is not Kind.LEFT_BRACE:
            raise self._expected("'{' after the names")
        inner = self._nest(depth)
        self._advance()
        body = self._or(inner)
        if self._peek().kind is not Kind.RIGHT_BRACE:
            raise self._expected(f"'}}' to close the '{{' at column {brace.position + 1}")
        self._advance()
        return Collection(operator, selector, binding, body)

    def _binding(self) -> Binding:
        first, second, third = self._peek(), self._peek(1), self._peek(2)
        if first.kind is Kind.UNDERSCORE and second.kind is not Kind.COMMA:
            raise self._expected("',' and a name after '_', as in _, v", 1)
        if second.kind is Kind.COMMA:
            if first.is_name() and third.is_name():
                names = Binding(index=first.text, value=third.text)
            elif first.is_name() and third.kind is Kind.UNDERSCORE:
                names = Binding(index=first.text)
            elif first.kind is Kind.UNDERSCORE and third.is_name():
                names = Binding(value=third.text)
            else:
                raise self._expected("a name or '_' after ','", 2)
            self._index += 3
            return names
        if first.is_name():
            self._advance()
            return Binding(default=first.text)
        raise self._expected("a name for each item, or two names such as k, v, after 'as'")

    # -- comparisons --------------------------------------------------------------------------

    def _match(self) -> Match:
        first = self._peek()
        if first.kind in (Kind.END, Kind.RIGHT_PAREN, Kind.RIGHT_BRACE):
            raise self._expected("a comparison such as pushed == 1, 'not' or '('")
        if first.kind not in (Kind.WORD, Kind.NUMBER, Kind.STRING, Kind.RAW_STRING):
            raise self._expected("a property name or a value")
        operator = self._operator(ahead=1)
        if operator in (MatchOperator.IN, MatchOperator.NOT_IN):
            value = self._value("a value")
            self._index += 2 if operator is MatchOperator.IN else 3
            token = self._peek()
            if not self._is_selector(token):
                # go-bexpr reports this as an error, whatever else the filter could mean.
                if token.kind is Kind.STRING:
                    message = (
                        f"a quoted selector after '{operator.value}' must be a JSON pointer such as "
                        f'"/metrics/accuracy", not {token.describe()}'
                    )
                else:
                    message = (
                        f'expected a property name such as pushed, a.b or "/a/b" after '
                        f"'{operator.value}' but found {token.describe()}"
                    )
                raise self._fatal(message)
            return Match(self._selector(""), operator, value)
        if not self._is_selector(first):
            if first.kind is Kind.STRING:
                raise self._fail(
                    'a quoted selector must be a JSON pointer such as "/metrics/accuracy", '
                    f"not {first.describe()}"
                )
            raise self._expected(f"'in' or 'not in' after the value {first.describe()}", 1)
        if operator is None:
            raise self._no_operator(first)
        selector = self._selector("")
        self._index += _OPERATOR_LENGTHS[operator]
        if operator in WITHOUT_VALUE:
            return Match(selector, operator)
        value_token = self._peek()
        value = self._value(f"a value after '{operator.value}'")
        self._advance()
        try:
            match = Match(selector, operator, value)
        except InvalidRegex as error:
            raise InvalidArtifactFilter(
                f"invalid regular expression {value_token.text}: {error}", value_token.position
            ) from None
        if match.regex is not None:
            self._regex_program_size += program_size(match.regex)
            if self._regex_program_size > MAX_REGEX_PROGRAM_SIZE:
                raise InvalidArtifactFilter(
                    f"the filter's regular expressions are too large: together more than "
                    f"{MAX_REGEX_PROGRAM_SIZE} RE2 instructions",
                    value_token.position,
                )
        return match

    def _no_operator(self, first: Token) -> _NoMatch:
        """Why no operator follows the selector ``first``, said as helpfully as possible."""
        after = self._peek(1)
        if first.is_keyword("not"):
            if after.kind in (Kind.END, Kind.RIGHT_PAREN, Kind.RIGHT_BRACE):
                return self._expected("a comparison after 'not'", 1)
            if not after.spaced:
                return self._fail("'not' needs whitespace after it", 1)
            # "not" was read as the operator first; reading it as a name is the fallback.
            return self._expected(f"an operator ({_OPERATORS_HELP}) after 'not'", 1, weak=True)
        if (first.is_keyword("any") or first.is_keyword("all")) and after.spaced and self._keyword("as", 2):
            return self._fail(
                "put a collection expression in parentheses to combine it with 'and' or 'not' "
                "(or write it last after 'or')",
                weak=True,
            )
        if after.is_keyword("is") and after.spaced:
            return self._expected(
                "'empty', 'not empty', 'nil' or 'not nil' after 'is'", 2 + self._keyword("not", 2)
            )
        if after.is_keyword("not") and after.spaced:
            return self._expected("'in', 'contains' or 'matches' after 'not'", 2)
        return self._expected(f"an operator ({_OPERATORS_HELP}) after {first.describe()}", 1)

    def _operator(self, ahead: int) -> MatchOperator | None:
        """The match operator starting ``ahead`` tokens on, if any."""
        token = self._peek(ahead)
        if token.kind is Kind.EQUAL:
            return MatchOperator.EQUAL
        if token.kind is Kind.NOT_EQUAL:
            return MatchOperator.NOT_EQUAL
        for word, operator in (
            ("contains", MatchOperator.CONTAINS),
            ("matches", MatchOperator.MATCHES),
            ("in", MatchOperator.IN),
        ):
            if self._keyword(word, ahead):
                return operator
        if self._keyword("not", ahead):
            for word, operator in (
                ("contains", MatchOperator.NOT_CONTAINS),
                ("matches", MatchOperator.NOT_MATCHES),
                ("in", MatchOperator.NOT_IN),
            ):
                if self._keyword(word, ahead + 1):
                    return operator
        if self._keyword("is", ahead):
            negated = self._keyword("not", ahead + 1)
            last = self._peek(ahead + 1 + negated)
            for word in ("empty", "nil"):
                if last.is_keyword(word) and last.spaced:
                    return _IS_OPERATORS[word, negated]
                if last.kind is Kind.WORD and last.spaced and last.text.startswith(word):
                    # go-bexpr takes "emptyx" as "empty" and then cannot read the "x".
                    raise self._fatal(f"expected '{word}' but found {last.describe()}", ahead + 1 + negated)
        return None

    @staticmethod
    def _is_selector(token: Token) -> bool:
        return token.kind is Kind.WORD or (token.kind is Kind.STRING and token.pointer is not None)

    def _selector(self, where: str) -> Selector:
        token = self._peek()
        if token.kind is Kind.WORD:
            self._advance()
            return Selector(token.parts)
        if token.kind is Kind.STRING and token.pointer is not None:
            self._advance()
            return Selector(token.pointer)
        context = f" {where}" if where else ""
        raise self._expected(f'a property name such as pushed, a.b or "/a/b"{context}')

    def _value(self, what: str) -> Literal:
        """The value at the current token, which it does not consume."""
        token = self._peek()
        if token.kind is Kind.WORD:
            return Literal(".".join(token.parts), ValueKind.WORD)
        if token.kind is Kind.STRING and token.pointer is not None:
            # A quoted value that spells a JSON pointer is read as one: "/a/b" means a/b.
            return Literal("/".join(token.pointer), ValueKind.STRING)
        if token.kind in (Kind.STRING, Kind.RAW_STRING):
            return Literal(token.value, ValueKind.STRING)
        if token.kind is Kind.NUMBER:
            return Literal(token.value, ValueKind.NUMBER)
        raise self._expected(f'{what} (a number, a "string" or a word)')


_IS_OPERATORS = {
    ("empty", False): MatchOperator.IS_EMPTY,
    ("empty", True): MatchOperator.IS_NOT_EMPTY,
    ("nil", False): MatchOperator.IS_NIL,
    ("nil", True): MatchOperator.IS_NOT_NIL,
}
_OPERATOR_LENGTHS = {
    MatchOperator.EQUAL: 1,
    MatchOperator.NOT_EQUAL: 1,
    MatchOperator.CONTAINS: 1,
    MatchOperator.MATCHES: 1,
    MatchOperator.NOT_CONTAINS: 2,
    MatchOperator.NOT_MATCHES: 2,
    MatchOperator.IS_EMPTY: 2,
    MatchOperator.IS_NIL: 2,
    MatchOperator.IS_NOT_EMPTY: 3,
    MatchOperator.IS_NOT_NIL: 3,
}


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
