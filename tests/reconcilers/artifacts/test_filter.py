from __future__ import annotations

import string
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from reconcilers.artifacts.filter import (
    MAX_EVALUATION_STEPS,
    MAX_FILTER_LENGTH,
    MAX_NESTING_DEPTH,
    And,
    Binding,
    Collection,
    CollectionOperator,
    Expression,
    FilterEvaluationError,
    InvalidArtifactFilter,
    Literal,
    Match,
    MatchOperator,
    Not,
    Or,
    Selector,
    ValueKind,
    parse_filter,
    parser,
)
from reconcilers.artifacts.filter.syntax import WITHOUT_VALUE

Op = MatchOperator


def sel(dotted: str) -> Selector:
    return Selector(tuple(dotted.split(".")))


def eq(selector: str, value: str) -> Match:
    return Match(sel(selector), Op.EQUAL, Literal(value))


# --------------------------------------------------------------------------------------------
# Parsing: the tree each form of the language produces
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pushed == 1", eq("pushed", "1")),
        ("pushed==1", eq("pushed", "1")),
        ("pushed != 1", Match(sel("pushed"), Op.NOT_EQUAL, Literal("1"))),
        ("prod in tags", Match(sel("tags"), Op.IN, Literal("prod"))),
        ("prod not in tags", Match(sel("tags"), Op.NOT_IN, Literal("prod"))),
        ("tags contains prod", Match(sel("tags"), Op.CONTAINS, Literal("prod"))),
        ("tags not contains prod", Match(sel("tags"), Op.NOT_CONTAINS, Literal("prod"))),
        ("tags is empty", Match(sel("tags"), Op.IS_EMPTY)),
        ("tags is not empty", Match(sel("tags"), Op.IS_NOT_EMPTY)),
        ('name matches "^v[0-9]+$"', Match(sel("name"), Op.MATCHES, Literal("^v[0-9]+$"))),
        ('name not matches "^v"', Match(sel("name"), Op.NOT_MATCHES, Literal("^v"))),
        ("  \t\r\npushed == 1\n", eq("pushed", "1")),
    ],
)
def test_each_operator_parses_to_its_match(text: str, expected: Expression) -> None:
    assert parse_filter(text).expression == expected


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("a == 1", ("a",)),
        ("a.b.c == 1", ("a", "b", "c")),
        ("tags.0 == 1", ("tags", "0")),
        ("a/b.c_d == 1", ("a/b", "c_d")),
        ('"/metrics/accuracy" == 1', ("metrics", "accuracy")),
        ('"/a~1b/c~0d" == 1', ("a/b", "c~d")),
        ('"/ключ/x-y.z|w" == 1', ("ключ", "x-y.z|w")),
        ('1 in "/tags"', ("tags",)),
        ('"" == 1', ("",)),
        ('a["b"] == 1', ("a", "b")),
        ('a[ "b c" ].d[`e`].0 == 1', ("a", "b c", "d", "e", "0")),
        ('a[""] == 1', ("a", "")),
    ],
)
def test_selectors_are_dotted_names_or_json_pointers(text: str, path: tuple[str, ...]) -> None:
    expression = parse_filter(text).expression
    assert isinstance(expression, Match)
    assert expression.selector.path == path


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        ("x == 1", "1", ValueKind.NUMBER),
        ("x == 0", "0", ValueKind.NUMBER),
        ("x == -12", "-12", ValueKind.NUMBER),
        ("x == 0.75", "0.75", ValueKind.NUMBER),
        ("x == -3.50", "-3.50", ValueKind.NUMBER),
        ('x == "two words"', "two words", ValueKind.STRING),
        ('x == ""', "", ValueKind.STRING),
        (
            r'x == "tab\there \x22q\x22 \\ \x41\101\u00e9\U0001F600"',
            'tab\there "q" \\ AAé😀',
            ValueKind.STRING,
        ),
        # Bytes that are not UTF-8 are kept; \xc3\xa9 is the UTF-8 of é.
        (r'x == "caf\xc3\xa9"', "café", ValueKind.STRING),
        (r'x == "\xff"', "\udcff", ValueKind.STRING),
        (r'x == "\a\b\f\n\r\v"', "\a\b\f\n\r\v", ValueKind.STRING),
        ('x == `raw \\n "q"`', 'raw \\n "q"', ValueKind.STRING),
        ("x == `a\r\nb`", "a\nb", ValueKind.STRING),
        ("x == prod", "prod", ValueKind.WORD),
        ("x == v1.2.3", "v1.2.3", ValueKind.WORD),
        ("x == true", "true", ValueKind.WORD),
        ("x == gs/bucket", "gs/bucket", ValueKind.WORD),
        # go-bexpr reads a quoted value that spells a JSON pointer as one: its parts joined by '/'.
        ('x == "/a/b"', "a/b", ValueKind.STRING),
        ('x == "/a~1b/~0"', "a/b/~", ValueKind.STRING),
        ('x == ""', "", ValueKind.STRING),
        ('x == "/a b"', "/a b", ValueKind.STRING),
        (r'x == "\x2fa"', "/a", ValueKind.STRING),
        ("x == `/a`", "/a", ValueKind.STRING),
        # A word is a selector to go-bexpr, whose value is its parts joined by '.'.
        ('x == a["b c"].d', "a.b c.d", ValueKind.WORD),
    ],
)
def test_value_forms_give_their_text(text: str, value: str, kind: ValueKind) -> None:
    expression = parse_filter(text).expression
    assert isinstance(expression, Match)
    assert expression.value is not None
    assert expression.value.text == value
    assert expression.value.kind is kind


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a == 1 or b == 1 and c == 1",
            Or((eq("a", "1"), And((eq("b", "1"), eq("c", "1"))))),
        ),
        (
            "a == 1 and b == 1 or c == 1",
            Or((And((eq("a", "1"), eq("b", "1"))), eq("c", "1"))),
        ),
        ("not a == 1 and b == 1", And((Not(eq("a", "1")), eq("b", "1")))),
        ("not (a == 1 and b == 1)", Not(And((eq("a", "1"), eq("b", "1"))))),
        ("(a == 1 or b == 1) and c == 1", And((Or((eq("a", "1"), eq("b", "1"))), eq("c", "1")))),
        ("(a == 1) and (b == 1)", And((eq("a", "1"), eq("b", "1")))),
        ("(a == 1)\tand\n(b == 1)", And((eq("a", "1"), eq("b", "1")))),
        ("a == 1 and b == 1 and c == 1", And((eq("a", "1"), eq("b", "1"), eq("c", "1")))),
        ("a == 1 and (b == 1 and c == 1)", And((eq("a", "1"), And((eq("b", "1"), eq("c", "1")))))),
        ("((a == 1))", eq("a", "1")),
        # go-bexpr drops double negations, also across parentheses.
        ("not not a == 1", eq("a", "1")),
        ("not not not a == 1", Not(eq("a", "1"))),
        ("not (not a == 1)", eq("a", "1")),
        ("not (not a == 1 and b == 1)", Not(And((Not(eq("a", "1")), eq("b", "1"))))),
    ],
)
def test_precedence_is_not_then_and_then_or(text: str, expected: Expression) -> None:
    assert parse_filter(text).expression == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Keywords followed by a match operator are names and values, as in go-bexpr.
        ("not == 1", eq("not", "1")),
        ("not in tags", Match(sel("tags"), Op.IN, Literal("not"))),
        ("not not in tags", Not(Match(sel("tags"), Op.IN, Literal("not")))),
        ("not contains x", Match(sel("not"), Op.CONTAINS, Literal("x"))),
        ("not is not nil", Match(sel("not"), Op.IS_NOT_NIL)),
        ("nil is nil", Match(sel("nil"), Op.IS_NIL)),
        ("any in any", Match(sel("any"), Op.IN, Literal("any"))),
        ("a == 1 and any == 2", And((eq("a", "1"), eq("any", "2")))),
        ("in in tags", Match(sel("tags"), Op.IN, Literal("in"))),
        ("a == and and b == or", And((eq("a", "and"), eq("b", "or")))),
        ("is is empty", Match(sel("is"), Op.IS_EMPTY)),
        ("a.not == 1", Match(Selector(("a", "not")), Op.EQUAL, Literal("1"))),
    ],
)
def test_keywords_serve_as_names_where_go_bexpr_allows(text: str, expected: Expression) -> None:
    assert parse_filter(text).expression == expected


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("pushed==1", "pushed == 1"),
        ("  a == 1   or (b==2)  ", "a == 1 or b == 2"),
        ("(a == 1 or b == 1) and not (c == 1)", "(a == 1 or b == 1) and not c == 1"),
        ("not (a == 1 or b == 1)", "not (a == 1 or b == 1)"),
        ("a == 1 and (b == 1 and c == 1)", "a == 1 and (b == 1 and c == 1)"),
        ("a == 1 or (b == 1 or c == 1)", "a == 1 or (b == 1 or c == 1)"),
        ("x == `raw`", 'x == "raw"'),
        ('x == "say \\x22hi\\x22\\n"', 'x == "say \\x22hi\\x22\\n"'),
        ('x == "caf\\xc3\\xa9\\xff"', 'x == "café\\xff"'),
        ("x == `/a/b`", 'x == "\\x2fa/b"'),
        ('x == "/a/b"', 'x == "a/b"'),
        ('x == a["b c"]', 'x == "a.b c"'),
        ('a["b"] == 1', "a.b == 1"),
        ('a["b c"] == 1', 'a["b c"] == 1'),
        ('"" == 1', '"" == 1'),
        ("x is nil", "x is nil"),
        ("x is not nil", "x is not nil"),
        ("any l as v { v == 1 }", "any l as v { v == 1 }"),
        ("all  m as k,v{v==1 and k != a}", "all m as k, v { v == 1 and k != a }"),
        ("any l as _ ,v { v == 1 }", "any l as _, v { v == 1 }"),
        ("a == 1 or any l as i, _ { i == 1 }", "a == 1 or (any l as i, _ { i == 1 })"),
        ("not (any l as v { v == 1 })", "not (any l as v { v == 1 })"),
        ('x == "a\\x3ab\\x5bc\\x5d"', 'x == "a\\x3ab\\x5bc\\x5d"'),
        ('"/a/b" is empty', "a.b is empty"),
        ('"/a~1b/c" == 1', "a/b.c == 1"),
        ('"/a.b/c" == 1', '"/a.b/c" == 1'),
        ("not == 1", '"/not" == 1'),
        ("a == and", 'a == "and"'),
        ("x == v1.2", "x == v1.2"),
        ("x == -0.5", "x == -0.5"),
        ("prod not in tags", "prod not in tags"),
        ("tags not contains prod", "tags not contains prod"),
    ],
)
def test_filters_render_canonically(text: str, rendered: str) -> None:
    assert str(parse_filter(text)) == rendered
    assert parse_filter(rendered) == parse_filter(text)


def test_rendering_never_emits_characters_an_artifact_path_forbids() -> None:
    rendered = str(parse_filter(r'x == "\x3a\x5b\x5d" or y matches "[a-z]:"'))
    assert not set(rendered) & set(":[]")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "any l as v { v == 1 }",
            Collection(CollectionOperator.ANY, sel("l"), Binding(default="v"), eq("v", "1")),
        ),
        (
            "all m.x as k, v { k == a and v != 1 }",
            Collection(
                CollectionOperator.ALL,
                sel("m.x"),
                Binding(index="k", value="v"),
                And((eq("k", "a"), Match(sel("v"), Op.NOT_EQUAL, Literal("1")))),
            ),
        ),
        (
            "any l as i, _ { i == 0 }",
            Collection(CollectionOperator.ANY, sel("l"), Binding(index="i"), eq("i", "0")),
        ),
        (
            'any "/l" as _ , v{v == x}',
            Collection(CollectionOperator.ANY, sel("l"), Binding(value="v"), eq("v", "x")),
        ),
        # Where go-bexpr reads a collection expression: alone, in parentheses, last after 'or'.
        (
            "a == 1 or any l as v { v == 1 }",
            Or(
                (
                    eq("a", "1"),
                    Collection(CollectionOperator.ANY, sel("l"), Binding(default="v"), eq("v", "1")),
                )
            ),
        ),
        (
            "(any l as v { v == 1 }) and a == 1",
            And(
                (
                    Collection(CollectionOperator.ANY, sel("l"), Binding(default="v"), eq("v", "1")),
                    eq("a", "1"),
                )
            ),
        ),
        (
            "not (all l as v { v == 1 })",
            Not(Collection(CollectionOperator.ALL, sel("l"), Binding(default="v"), eq("v", "1"))),
        ),
        # Only where an and-expression cannot start: this is a comparison of a property "any".
        ("any in l", Match(sel("l"), Op.IN, Literal("any"))),
    ],
)
def test_collection_expressions_parse_to_their_tree(text: str, expected: Expression) -> None:
    assert parse_filter(text).expression == expected


@pytest.mark.parametrize(
    ("text", "operator"),
    [("x is nil", Op.IS_NIL), ("x is not nil", Op.IS_NOT_NIL), ("x  is\tnot\nnil", Op.IS_NOT_NIL)],
)
def test_is_nil_parses(text: str, operator: MatchOperator) -> None:
    assert parse_filter(text).expression == Match(sel("x"), operator)


# --------------------------------------------------------------------------------------------
# Syntax errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("", "expected a comparison such as pushed == 1", 0),
        ("   ", "but found the end of the filter", 3),
        ("pushed", "expected an operator (==, !=, in, not in, contains", 6),
        ("pushed = 1", "unexpected character '=': use '==' to compare", 7),
        ("pushed == ", "expected a value after '=='", 10),
        ("pushed ! 1", "use '!=' or 'not'", 7),
        ("a <= 1", "no ordering comparisons", 2),
        ("a == 1 && b == 2", "use 'and'", 7),
        ("a == 'x'", "quote strings with", 5),
        ("a == 1 AND b == 1", "keywords are written in lower case", 7),
        ("a == 1 b == 1", "expected 'and', 'or' or the end of the filter but found 'b'", 7),
        ("(a == 1", "expected ')' to close the '(' at column 1", 7),
        ("a == 1)", "unexpected ')' without a matching '('", 6),
        ("()", "expected a comparison", 1),
        ("a == 1 and", "expected a comparison after 'and'", 10),
        ("a == 1 or not", "expected a comparison after 'not'", 13),
        ("(a == 1)and(b == 1)", "'and' needs whitespace on both sides", 8),
        ("a == 1 or(b == 1)", "'or' needs whitespace on both sides", 7),
        ("not(a == 1)", "'not' needs whitespace after it", 3),
        ("1 == x", "expected 'in' or 'not in' after the value '1'", 2),
        ("`x` == y", "expected 'in' or 'not in' after the value", 4),
        ('"x" == 1', "a quoted selector must be a JSON pointer", 0),
        ('1 in "x"', "a quoted selector after 'in' must be a JSON pointer", 5),
        ('"/a//b" == 1', "must be a JSON pointer", 0),
        ("1 in 2", "expected a property name such as pushed", 5),
        ("x is", "expected 'empty', 'not empty', 'nil' or 'not nil' after 'is'", 4),
        ("x is not", "expected 'empty', 'not empty', 'nil' or 'not nil' after 'is'", 5),
        ("x is emptyx", "expected 'empty' but found 'emptyx'", 5),
        ("x not == 1", "expected 'in', 'contains' or 'matches' after 'not'", 6),
        ("x == 01", "invalid number '01'", 5),
        ("x == 1.", "invalid number '1.'", 5),
        ("x == 1e5", "invalid number '1e5'", 5),
        ("x == 1.2.3", "invalid number '1.2.3'", 5),
        ("x == 1and y == 1", "invalid number '1and'", 5),
        ("any l as v { v == 1}", "invalid number '1}'", 18),
        ("x == +1", "unexpected character '+'", 5),
        ("x == -", "unexpected '-'", 5),
        ("my-model == 1", "quote text that contains '-', such as \"my-model\"", 2),
        ("a. == 1", "expected a name or a list index after '.'", 2),
        ("a.b. == 1", "expected a name or a list index after '.'", 4),
        ("_a == 1", "expected a property name or a value but found '_'", 0),
        ("a[0] == 1", 'an index needs a quoted key, as in x["key"]', 2),
        ('a["k" == 1', "expected ']' to close the index", 6),
        ("a] == 1", "']' without an opening '['", 1),
        ('x == "abc', "unterminated string: missing the closing '\"'", 5),
        ("x == `abc", "unterminated string: missing the closing '`'", 5),
        ('x == "a\\', "unterminated string: missing the closing '\"'", 5),
        ('x == "a\\"b"', "a string cannot contain '\"'; write \\x22", 7),
        ('x == "a\nb"', "line break inside a string", 7),
        ('x == "\\q"', "invalid escape \\q", 6),
        ('x == "\\\'"', "invalid escape \\'", 6),
        ('x == "\\x4"', "\\x needs 2 hexadecimal digits", 6),
        ('x == "\\u12G4"', "\\u needs 4 hexadecimal digits", 6),
        ('x == "\\400"', "an octal escape is \\ and 3 digits up to \\377", 6),
        ('x == "\\12"', "an octal escape is", 6),
        ('x == "\\ud800"', "U+D800 is not a character", 6),
        ('x == "\\U00110000"', "U+110000 is not a character", 6),
        ("x == \ud800", "invalid character U+D800", 5),
        ('x matches "("', 'invalid regular expression "(": missing )', 10),
        ('x not matches "a{2000}"', "invalid regular expression", 14),
        ('x matches "\\xff"', "invalid regular expression", 10),
        ("x == é", "unexpected character 'é'", 5),
        (
            "any l as v { v == 1 } or a == 1",
            "expected the end of the filter after a collection expression",
            22,
        ),
        ("a == 1 and any l as v { v == 1 }", "put a collection expression in parentheses", 11),
        ("not any l as v { v == 1 }", "put a collection expression in parentheses", 4),
        ("any l as _ { v == 1 }", "expected ',' and a name after '_'", 11),
        ("any l as v.x { v == 1 }", "expected a name for each item", 9),
        ("any l as v { v == 1", "expected '}' to close the '{' at column 12", 19),
        ("any l v { v == 1 }", "expected ' as ' after 'any l'", 6),
        ("any 1 as v { v == 1 }", "a property name such as pushed", 4),
        ("(not contains in )", "after 'in' but found ')'", 17),
    ],
)
def test_syntax_errors_say_what_was_expected_and_where(text: str, message: str, position: int) -> None:
    with pytest.raises(InvalidArtifactFilter) as caught:
        parse_filter(text)
    assert message in caught.value.message
    assert caught.value.position == position
    assert str(caught.value) == f"{caught.value.message} (at column {position + 1})"


# --------------------------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------------------------


def test_a_filter_of_the_maximum_length_is_accepted() -> None:
    text = 'a == "' + "x" * (MAX_FILTER_LENGTH - 7) + '"'
    assert len(text) == MAX_FILTER_LENGTH
    assert parse_filter(text).matches({"a": "x" * (MAX_FILTER_LENGTH - 7)})


def test_a_longer_filter_is_rejected() -> None:
    text = 'a == "' + "x" * (MAX_FILTER_LENGTH - 6) + '"'
    with pytest.raises(InvalidArtifactFilter, match="1025 characters long; the limit is 1024"):
        parse_filter(text)


@pytest.mark.parametrize(
    ("opening", "closing", "levels"),
    [
        ("(", ")", MAX_NESTING_DEPTH),
        ("not ", "", 250),
        ("not (", ")", MAX_NESTING_DEPTH),
        ("any l as v { ", " }", MAX_NESTING_DEPTH),
        ("(any l as v { ", " })", MAX_NESTING_DEPTH // 2),
    ],
)
def test_nesting_up_to_the_limit_is_accepted(opening: str, closing: str, levels: int) -> None:
    text = opening * levels + "a == 1 " + closing * levels
    assert len(text) <= MAX_FILTER_LENGTH
    assert parse_filter(text).evaluate({"a": 1, "l": [1]}) is (opening.count("not") * levels % 2 == 0)


def test_long_chains_of_not_and_and_or_are_accepted() -> None:
    # None of them nests: a run of 'not's is read in a loop, 'and' and 'or' chains as lists.
    assert parse_filter("not " * 250 + "a == 1").evaluate({"a": 1}) is True
    assert parse_filter(" and ".join(["a == 1"] * 90)).evaluate({"a": 1}) is True
    assert parse_filter(" or ".join(["a == 2"] * 100)).evaluate({"a": 1}) is False


@pytest.mark.parametrize(
    "text",
    [
        "(" * (MAX_NESTING_DEPTH + 1) + "a == 1" + ")" * (MAX_NESTING_DEPTH + 1),
        "not (" * (MAX_NESTING_DEPTH + 1) + "a == 1" + ")" * (MAX_NESTING_DEPTH + 1),
        "(any l as v{" * 17 + "v == v" + "})" * 17,
        "any l as v{" * (MAX_NESTING_DEPTH + 1) + "v == v" + "}" * (MAX_NESTING_DEPTH + 1),
        "(" * 1000,
        "not (" * 200,
    ],
)
def test_deeper_nesting_is_rejected_without_exhausting_the_stack(text: str) -> None:
    with pytest.raises(InvalidArtifactFilter, match=f"more than {MAX_NESTING_DEPTH} levels deep"):
        parse_filter(text)


# --------------------------------------------------------------------------------------------
# Evaluation: operators
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "properties", "expected"),
    [
        ("s == abc", {"s": "abc"}, True),
        ("s == abd", {"s": "abc"}, False),
        ("s != abd", {"s": "abc"}, True),
        ("s != abc", {"s": "abc"}, False),
        ('s == "a b"', {"s": "a b"}, True),
        ("s == a.b", {"s": "a.b"}, True),
        ("x in s", {"s": "xyz"}, True),
        ('"" in s', {"s": "xyz"}, True),
        ("w in s", {"s": "xyz"}, False),
        ("w not in s", {"s": "xyz"}, True),
        ("s contains yz", {"s": "xyz"}, True),
        ("s not contains yz", {"s": "xyz"}, False),
        ("prod in tags", {"tags": ["dev", "prod"]}, True),
        ("qa in tags", {"tags": ["dev", "prod"]}, False),
        ("qa not in tags", {"tags": ["dev", "prod"]}, True),
        ("tags contains dev", {"tags": ["dev", "prod"]}, True),
        ("tags not contains dev", {"tags": ["dev", "prod"]}, False),
        ("k in m", {"m": {"k": 1}}, True),
        ("v in m", {"m": {"k": "v"}}, False),
        ("m contains k", {"m": {"k": 1}}, True),
        ("m not contains z", {"m": {"k": 1}}, True),
        ("s is empty", {"s": ""}, True),
        ("s is empty", {"s": "x"}, False),
        ("s is not empty", {"s": "x"}, True),
        ("l is empty", {"l": []}, True),
        ("l is not empty", {"l": [1.0]}, True),
        ("m is empty", {"m": {}}, True),
        ("m is not empty", {"m": {}}, False),
        ('s matches "v[0-9]"', {"s": "model-v2"}, True),
        ('s matches "^v[0-9]"', {"s": "model-v2"}, False),
        ('s not matches "^v[0-9]"', {"s": "model-v2"}, True),
        ('s matches "^model-v2$"', {"s": "model-v2"}, True),
        ('s matches "É"', {"s": "café"}, False),
        ('s matches "é$"', {"s": "café"}, True),
        ('s matches "^.{4}$"', {"s": "café"}, True),
        ("s matches `\\d`", {"s": "v2"}, True),
    ],
)
def test_operators_evaluate_as_documented(text: str, properties: dict[str, object], expected: bool) -> None:
    assert parse_filter(text).evaluate(properties) is expected
    assert parse_filter(text).matches(properties) is expected


@pytest.mark.parametrize(
    ("text", "properties", "reason"),
    [
        ("l == 1", {"l": [1]}, "cannot compare l (a list) with '=='"),
        ("m != 1", {"m": {}}, "cannot compare m (a map) with '=='"),
        ("n == 1", {"n": None}, "cannot compare n (null)"),
        ("p == 1", {"p": b"bytes"}, "(a value of type bytes)"),
        ("n is empty", {"n": 0}, "'is empty' needs a string, list or map"),
        ("n is not empty", {"n": 1.5}, "'is empty' needs a string, list or map"),
        ("n matches x", {"n": 1}, "'matches' needs a string"),
        ("l not matches x", {"l": ["x"]}, "'matches' needs a string"),
        ("1 in n", {"n": 1}, "'in' and 'contains' need a string, list or map"),
        ("b contains x", {"b": True}, "'in' and 'contains' need a string, list or map"),
        ("1 in l", {"l": [None]}, "it holds null"),
        ("1 in l", {"l": [[1]]}, "it holds a list"),
    ],
)
def test_operators_on_unsuitable_properties_are_errors(
    text: str, properties: dict[str, object], reason: str
) -> None:
    with pytest.raises(FilterEvaluationError) as caught:
        parse_filter(text).evaluate(properties)
    assert reason in str(caught.value)
    assert parse_filter(text).matches(properties) is False


# --------------------------------------------------------------------------------------------
# Evaluation: converting the value to the property's type
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "datum", "expected"),
    [
        # Integer properties (KFP booleans, TFX pushed): Go's ParseInt with base 0.
        ("1", 1, True),
        ('"1"', 1, True),
        ("`1`", 1, True),
        ("2", 1, False),
        ("-7", -7, True),
        ('"+7"', 7, True),
        ('"0x1F"', 31, True),
        ('"0b101"', 5, True),
        ('"0o17"', 15, True),
        ('"017"', 15, True),
        ('"1_000"', 1000, True),
        ('"9223372036854775807"', 2**63 - 1, True),
        # Number properties (everything else KFP writes): Go's ParseFloat.
        ("1", 1.0, True),
        ("1.0", 1.0, True),
        ("0.9", 0.9, True),
        ("0.8", 0.9, False),
        ('"1e3"', 1000.0, True),
        ('"1_000.5"', 1000.5, True),
        ('".5"', 0.5, True),
        ('"0x1.8p1"', 3.0, True),
        ('"inf"', float("inf"), True),
        ('"-Infinity"', float("-inf"), True),
        ("nan", float("nan"), False),
        # Boolean properties: Go's ParseBool.
        ("true", True, True),
        ("True", True, True),
        ("TRUE", True, True),
        ("t", True, True),
        ("1", True, True),
        ("false", True, False),
        ("0", False, True),
        ("F", False, True),
        # String properties: the value's text, exactly.
        ("1", "1", True),
        ("1.0", "1", False),
        ('"1"', "1", True),
        ("true", "true", True),
        ("abc", "ABC", False),
    ],
)
def test_values_are_converted_to_the_property_type(value: str, datum: object, expected: bool) -> None:
    assert parse_filter(f"p == {value}").evaluate({"p": datum}) is expected
    assert parse_filter(f"p != {value}").evaluate({"p": datum}) is not expected


@pytest.mark.parametrize(
    ("value", "datum", "reason"),
    [
        ("1.0", 1, "not an integer"),
        ("true", 1, "not an integer"),
        ('" 1"', 1, "not an integer"),
        ('"08"', 8, "not an integer"),
        ('"1__0"', 10, "not an integer"),
        ('"٣"', 3, "not an integer"),
        ('"9223372036854775808"', 1, "out of the range of a 64-bit integer"),
        ("abc", 1.0, "not a number"),
        ('"0x1"', 1.0, "not a number"),
        ('"-nan"', 1.0, "not a number"),
        ('"1e999"', 1.0, "out of the range of a 64-bit floating-point number"),
        ("yes", True, "not a boolean"),
        ("2", False, "not a boolean"),
    ],
)
def test_values_that_cannot_be_converted_are_errors(value: str, datum: object, reason: str) -> None:
    for operator in ("==", "!="):
        with pytest.raises(FilterEvaluationError, match=reason):
            parse_filter(f"p {operator} {value}").evaluate({"p": datum})
        assert parse_filter(f"p {operator} {value}").matches({"p": datum}) is False


@pytest.mark.parametrize(
    ("text", "items", "expected"),
    [
        ("1 in l", [1.0, 2.0], True),
        ("3 in l", [1.0, 2.0], False),
        ("1 in l", [1, 2], True),
        ("1.0 in l", [1, 2], False),
        ("x in l", [1, 2], False),
        ("true in l", [True], True),
        ("1 in l", [True], True),
        ("a in l", [1.0, "a"], True),
        ("1 in l", ["a", 1], True),
        ("1 not in l", ["a", 1], False),
        ('"1" in l', ["1"], True),
    ],
)
def test_list_items_are_compared_by_their_own_type(text: str, items: list[object], expected: bool) -> None:
    assert parse_filter(text).evaluate({"l": items}) is expected


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ('"9223372036854775808" in l', [1]),
        ('"1e999" in l', [1.0]),
    ],
)
def test_a_value_out_of_a_list_items_range_is_an_error(text: str, items: list[object]) -> None:
    with pytest.raises(FilterEvaluationError, match="out of the range"):
        parse_filter(text).evaluate({"l": items})


# --------------------------------------------------------------------------------------------
# Evaluation: selectors and missing properties
# --------------------------------------------------------------------------------------------

ALL_OPERATOR_FORMS = [
    "p == 1",
    "p != 1",
    "x in p",
    "x not in p",
    "p contains x",
    "p not contains x",
    "p is empty",
    "p is not empty",
    "p matches x",
    "p not matches x",
]


@pytest.mark.parametrize("text", ALL_OPERATOR_FORMS)
def test_a_missing_property_matches_no_artifact_whatever_the_operator(text: str) -> None:
    compiled = parse_filter(text)
    assert compiled.matches({"other": 1}) is False
    with pytest.raises(FilterEvaluationError, match="the artifact has no property 'p'"):
        compiled.evaluate({"other": 1})


def test_pushed_not_equal_one_does_not_select_an_artifact_without_pushed() -> None:
    assert parse_filter("pushed != 1").matches({"pushed_destination": "gs://x"}) is False
    assert parse_filter("pushed != 1").matches({"pushed": 0}) is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("m.p == 1", False),
        ("m.p != 1", True),
        ("x in m.p", False),
        ("x not in m.p", True),
        ("m.p contains x", False),
        ("m.p not contains x", True),
        ("m.p is empty", True),
        ("m.p is not empty", False),
        ("m.p matches x", False),
        ("m.p not matches x", True),
        ('"/m/p" != 1', True),
        ("l.0.p != 1", True),
        ("l.0.p == 1", False),
    ],
)
def test_a_missing_last_key_of_an_existing_map_counts_as_absent(text: str, expected: bool) -> None:
    properties = {"m": {"q": 1.0}, "l": [{"q": 1.0}]}
    assert parse_filter(text).evaluate(properties) is expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("m.p.r is empty", "'p' is missing from m"),
        ("m.p.r != 1", "'p' is missing from m"),
        ("n.p != 1", "cannot look up 'p' in an integer"),
        ("s.p is empty", "cannot look up 'p' in a string"),
        ("l.1.q == 1", "'1' is not an index of a list of 1 items"),
        ("l.q == 1", "'q' is not an index of a list"),
        ('"/l/-1/q" == 1', "'-1' is not an index of a list"),
        ('"/l/08" == 1', "'08' is not an index of a list"),
        ('"/l/\u0661" == 1', "'\u0661' is not an index of a list"),
    ],
)
def test_selectors_that_cannot_be_followed_are_errors(text: str, reason: str) -> None:
    properties = {"m": {"q": 1.0}, "l": [{"q": 1.0}], "n": 1, "s": "x"}
    with pytest.raises(FilterEvaluationError) as caught:
        parse_filter(text).evaluate(properties)
    assert reason in str(caught.value)
    assert parse_filter(text).matches(properties) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("m.q == 1", True),
        ("l.0.q == 1", True),
        ("l.1 == b", True),
        ('"/m/q" == 1', True),
        ('"/a~1b" == 2', True),
        ("a/b == 2", True),
        ("nested.x.y == z", True),
    ],
)
def test_nested_selectors_reach_into_maps_and_lists(text: str, expected: bool) -> None:
    properties = {"m": {"q": 1.0}, "l": [{"q": 1.0}, "b"], "a/b": 2, "nested": {"x": {"y": "z"}}}
    assert parse_filter(text).evaluate(properties) is expected


# --------------------------------------------------------------------------------------------
# Evaluation: boolean structure, order and short-circuit
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "properties", "expected"),
    [
        # or binds loosest: true only as a == 1 or (b == 1 and c == 1).
        ("a == 1 or b == 1 and c == 1", {"a": 1, "b": 0, "c": 0}, True),
        ("(a == 1 or b == 1) and c == 1", {"a": 1, "b": 0, "c": 0}, False),
        # not binds tightest: (not a == 1) and b == 1.
        ("not a == 1 and b == 1", {"a": 0, "b": 0}, False),
        ("not (a == 1 and b == 1)", {"a": 0, "b": 0}, True),
        ("not not a == 1", {"a": 1}, True),
    ],
)
def test_boolean_operators_follow_their_precedence(
    text: str, properties: dict[str, object], expected: bool
) -> None:
    assert parse_filter(text).evaluate(properties) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pushed == 1 or missing == 1", True),
        ("pushed == 0 and missing == 1", False),
        ("(pushed == 1 or missing == 1) and pushed != 0", True),
    ],
)
def test_evaluation_stops_once_the_result_is_known(text: str, expected: bool) -> None:
    assert parse_filter(text).evaluate({"pushed": 1}) is expected


@pytest.mark.parametrize(
    "text",
    [
        "missing == 1 or pushed == 1",
        "pushed == 1 and missing == 1",
        "not missing == 1",
        "pushed == 0 or not missing == 1",
        "pushed == 1 and (pushed == 0 or missing is empty)",
    ],
)
def test_an_error_reached_before_the_result_is_known_fails_the_whole_filter(text: str) -> None:
    with pytest.raises(FilterEvaluationError, match="the artifact has no property 'missing'"):
        parse_filter(text).evaluate({"pushed": 1})
    assert parse_filter(text).matches({"pushed": 1}) is False


# --------------------------------------------------------------------------------------------
# Evaluation: is nil, collections, list indexes, bytes, budgets
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("datum", "expected"),
    [(None, True), ([], False), ({}, False), ([None], False)],
)
def test_is_nil_is_true_for_null_only(datum: object, expected: bool) -> None:
    assert parse_filter("x is nil").evaluate({"x": datum}) is expected
    assert parse_filter("x is not nil").evaluate({"x": datum}) is not expected


@pytest.mark.parametrize("datum", [1.0, 0.0, "", "x", True, 1])
def test_is_nil_on_a_number_string_or_boolean_is_an_error(datum: object) -> None:
    # So `pushed is not nil` never selects an artifact whose pushed is a number, as in go-bexpr.
    with pytest.raises(FilterEvaluationError, match="'is nil' needs a list, a map or null"):
        parse_filter("x is not nil").evaluate({"x": datum})


def test_is_nil_on_a_missing_key_of_a_map_is_true() -> None:
    assert parse_filter("m.x is nil").evaluate({"m": {}}) is True
    assert parse_filter("m.x is not nil").evaluate({"m": {}}) is False
    assert parse_filter("x is not nil").matches({}) is False


COLLECTIONS = {
    "l": [1.0, 2.0, 3.0],
    "rows": [{"k": 1.0, "name": "a"}, {"k": 2.0, "name": "b"}],
    "m": {"a": 1.0, "b": 2.0},
    "empty": [],
    "nested": {"lists": [[1.0, 2.0], [3.0]]},
    "s": "abc",
    "n": None,
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("any l as v { v == 2 }", True),
        ("any l as v { v == 4 }", False),
        ("all l as v { v != 4 }", True),
        ("all l as v { v != 1 }", False),
        # 'as i, v' binds the index (an integer) and the item; 'as k' on a map binds the key.
        ("any l as i, v { i == 2 and v == 3 }", True),
        ('any l as i, _ { i == "0x2" }', True),
        ("any m as k { k == b }", True),
        ("any m as k, v { k == b and v == 2 }", True),
        ("any m as _, v { v == 3 }", False),
        ("any rows as row { row.name == b and row.k == 2 }", True),
        ("all rows as row { row.missing is empty }", True),
        ("any nested.lists as inner { any inner as v { v == 3 } }", True),
        ("any nested.lists as i, inner { all inner as j, v { i == 0 and v < 3 } }", None),
        ("any nested.lists as i, inner { any inner as j, v { i == 1 and j == 0 and v == 3 } }", True),
        # An empty collection: 'any' is false, 'all' true; so is a missing key of a map.
        ("any empty as v { v == 1 }", False),
        ("all empty as v { v == 1 }", True),
        ("any nested.missing as v { v == 1 }", False),
        ("all nested.missing as v { v == 1 }", True),
    ],
)
def test_collection_expressions_evaluate(text: str, expected: bool | None) -> None:
    if expected is None:
        with pytest.raises(InvalidArtifactFilter):
            parse_filter(text)
        return
    assert parse_filter(text).evaluate(COLLECTIONS) is expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("any s as v { v == a }", "s (a string) is not a list or a map"),
        ("any n as v { v == a }", "n (null) is not a list or a map"),
        ("any missing as v { v == 1 }", "the artifact has no property 'missing'"),
        ("any l as v, v { v == 1 }", "'v' cannot name both the index and the value"),
        ("any l as i, v { i.x == 1 }", "'i' is a list index or a map key, so it has no 'x'"),
        ("any l as i, v { i is empty }", "'is empty' needs a string, list or map"),
        ("any l as i, v { i == 1.0 }", "cannot compare i (an integer) with '1.0': not an integer"),
    ],
)
def test_collection_expressions_that_cannot_be_evaluated_are_errors(text: str, reason: str) -> None:
    with pytest.raises(FilterEvaluationError) as caught:
        parse_filter(text).evaluate(COLLECTIONS)
    assert reason in str(caught.value)


def test_the_same_name_for_index_and_value_is_only_an_error_for_a_collection_with_items() -> None:
    assert parse_filter("any empty as v, v { v == 1 }").evaluate(COLLECTIONS) is False


def test_maps_are_gone_through_in_their_own_order() -> None:
    # go-bexpr takes Go's random map order, so which item is met first can decide between an
    # error and a result; here the mapping's order decides (mlmd_values builds it in key order).
    text = "any m as k, v { v == 1 }"
    assert parse_filter(text).evaluate({"m": {"b": 1.0, "a": [1.0]}}) is True
    with pytest.raises(FilterEvaluationError):
        parse_filter(text).evaluate({"m": {"a": [1.0], "b": 1.0}})


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("l.1", "b"),
        ("l.010", "i"),  # octal, as Go's strconv.ParseInt with base 0 reads it
        ('"/l/0x2"', "c"),
        ('"/l/0b11"', "d"),
        ('l[""]', "a"),  # the empty string reads as 0
        ('"/l/1_0"', "k"),
    ],
)
def test_list_indexes_are_read_as_go_integers(selector: str, expected: str) -> None:
    assert parse_filter(f"{selector} == {expected}").evaluate({"l": list("abcdefghijk")}) is True


@pytest.mark.parametrize("selector", ["l.08", '"/l/-1"', '"/l/11"', "l.x"])
def test_list_indexes_that_are_not_go_integers_in_range_are_errors(selector: str) -> None:
    with pytest.raises(FilterEvaluationError, match="is not an index of a list"):
        parse_filter(f"{selector} == a").evaluate({"l": list("abcdefghijk")})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r's == "caf\xc3\xa9"', True),  # the bytes of é
        (r's == "caf\351"', False),  # é in Latin-1: not UTF-8, so not equal
        (r'"\xc3" in s', True),  # Go compares bytes: the first byte of é is in "café"
        (r'"\xa9" in s', True),
        (r'"\xe9" in s', False),
        (r'"\xc3" in l', False),
    ],
)
def test_strings_hold_bytes_as_in_go(text: str, expected: bool) -> None:
    assert parse_filter(text).evaluate({"s": "café", "l": ["é"]}) is expected


def test_evaluation_stops_after_its_step_budget() -> None:
    # 12 nested 'all' over 4 items would take 4**12 steps.
    text = "all l as v { " * 12 + "v == 1 " + "}" * 12
    with pytest.raises(FilterEvaluationError, match=f"more than {MAX_EVALUATION_STEPS} steps"):
        parse_filter(text).evaluate({"l": [1.0, 1.0, 1.0, 1.0]})
    assert parse_filter(text).matches({"l": [1.0, 1.0, 1.0, 1.0]}) is False


def test_regular_expressions_with_the_any_byte_escape_are_invalid_as_in_go() -> None:
    with pytest.raises(InvalidArtifactFilter, match=r"invalid escape sequence: \\C"):
        parse_filter(r"s matches `a\Cb`")
    assert parse_filter(r"s matches `\Qa\Cb`").evaluate({"s": r"xa\Cby"}) is True
    assert parse_filter(r"s matches `\\C`").evaluate({"s": r"\C"}) is True


def test_a_filters_regular_expressions_have_a_size_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parser, "MAX_REGEX_PROGRAM_SIZE", 150)
    parse_filter("s matches `[a-z]{100}`")
    with pytest.raises(InvalidArtifactFilter, match="regular expressions are too large") as caught:
        parse_filter("s matches `[a-z]{100}` or s matches `[a-z]{200}`")
    assert caught.value.position == len("s matches `[a-z]{100}` or s matches ")


# --------------------------------------------------------------------------------------------
# Building trees by hand
# --------------------------------------------------------------------------------------------


def test_a_match_operator_without_its_value_is_rejected() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        Match(sel("a"), Op.EQUAL)
    with pytest.raises(ValueError, match="do not fit"):
        Match(sel("a"), Op.IS_EMPTY, Literal("x"))


def test_a_selector_that_cannot_be_written_is_rejected() -> None:
    with pytest.raises(ValueError, match="cannot be written"):
        Selector(("a b",))
    with pytest.raises(ValueError, match="at least one name"):
        Selector(())


def test_literals_mean_their_text_whatever_their_form() -> None:
    assert Literal("1", ValueKind.NUMBER) == Literal("1", ValueKind.STRING)
    assert parse_filter('x == "1"') == parse_filter("x == 1")


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

FAST = settings(deadline=timedelta(seconds=1), max_examples=300, suppress_health_check=[HealthCheck.too_slow])

TOKENS = [
    "a",
    "b.c",
    "pushed",
    "tags.0",
    '"/a/b"',
    '"x"',
    "`y`",
    "1",
    "-2.5",
    "==",
    "!=",
    "in",
    "not",
    "and",
    "or",
    "is",
    "empty",
    "contains",
    "matches",
    "(",
    ")",
    " ",
    '"(a+)+$"',
    "\\",
    '"',
    "`",
    ".",
    "-",
    "=",
]


@FAST
@given(st.text(max_size=MAX_FILTER_LENGTH + 50))
@example("(" * 5000)
@example("not " * 2000)
@example('"' + "\\" * 3000)
def test_arbitrary_text_only_ever_raises_invalid_artifact_filter(text: str) -> None:
    try:
        parse_filter(text)
    except InvalidArtifactFilter as error:
        assert 0 <= error.position <= len(text)


@FAST
@given(st.lists(st.sampled_from(TOKENS), max_size=80).map(" ".join))
def test_token_soup_only_ever_raises_invalid_artifact_filter(text: str) -> None:
    try:
        parsed = parse_filter(text)
    except InvalidArtifactFilter as error:
        assert 0 <= error.position <= len(text)
    else:
        assert parse_filter(str(parsed)) == parsed


NAMES = st.one_of(
    st.from_regex(r"[A-Za-z][A-Za-z0-9_/]{0,5}", fullmatch=True),
    st.sampled_from(
        ["and", "or", "not", "in", "is", "empty", "nil", "contains", "matches", "any", "as", "true"]
    ),
)
BINDINGS = st.one_of(
    st.builds(Binding, default=NAMES),
    st.builds(Binding, index=NAMES, value=st.none() | NAMES),
    st.builds(Binding, value=NAMES),
)
POINTER_PARTS = st.text(alphabet=string.ascii_letters + string.digits + "-_.~:|/é", min_size=1, max_size=5)
SELECTORS = st.one_of(
    st.builds(
        lambda first, rest: Selector((first, *rest)),
        st.one_of(NAMES, POINTER_PARTS),
        st.lists(st.one_of(NAMES, POINTER_PARTS, st.from_regex(r"[0-9]{1,3}", fullmatch=True)), max_size=3),
    ),
    # Index keys may be any text (written x["key"]) after a name.
    st.builds(
        lambda first, rest: Selector((first, *rest)),
        st.from_regex(r"[A-Za-z][A-Za-z0-9_/]{0,5}", fullmatch=True),
        st.lists(st.text(st.characters(exclude_categories=["Cs"]), max_size=4), min_size=1, max_size=2),
    ),
    st.just(Selector(("",))),
)
LITERALS = st.one_of(
    st.builds(
        Literal,
        st.from_regex(r"-?(0|[1-9][0-9]{0,5})(\.[0-9]{1,4})?", fullmatch=True),
        st.just(ValueKind.NUMBER),
    ),
    st.builds(
        Literal,
        st.one_of(NAMES, st.from_regex(r"[a-z][a-z0-9]{0,3}(\.[a-z0-9]{1,3}){0,2}", fullmatch=True)),
        st.just(ValueKind.WORD),
    ),
    st.builds(
        Literal, st.text(st.characters(exclude_categories=["Cs"]), max_size=8), st.just(ValueKind.STRING)
    ),
)
PATTERNS = st.sampled_from(["^v[0-9]+$", "a|b", ".*", "[:alpha:]", "x{2,3}", r"\d", "é", "(?i)abc", ""])
MATCHES = st.one_of(
    st.builds(
        Match,
        SELECTORS,
        st.sampled_from(
            [op for op in MatchOperator if op not in WITHOUT_VALUE and op not in (Op.MATCHES, Op.NOT_MATCHES)]
        ),
        LITERALS,
    ),
    st.builds(Match, SELECTORS, st.sampled_from(sorted(WITHOUT_VALUE, key=lambda op: op.value))),
    st.builds(
        Match,
        SELECTORS,
        st.sampled_from([Op.MATCHES, Op.NOT_MATCHES]),
        st.builds(Literal, PATTERNS, st.just(ValueKind.STRING)),
    ),
)
EXPRESSIONS = st.recursive(
    MATCHES,
    lambda children: st.one_of(
        # go-bexpr drops a double negation, so a Not is never directly inside a Not.
        children.map(lambda child: child.operand if isinstance(child, Not) else Not(child)),
        st.builds(
            Collection,
            st.sampled_from(list(CollectionOperator)),
            SELECTORS,
            BINDINGS,
            children,
        ),
        st.lists(children, min_size=2, max_size=3).map(lambda items: And(tuple(items))),
        st.lists(children, min_size=2, max_size=3).map(lambda items: Or(tuple(items))),
    ),
    max_leaves=12,
)


def nesting(expression: Expression) -> int:
    """How deep the parser finds the rendered expression: each '(' and '{' is a level."""
    if isinstance(expression, Match):
        return 0
    if isinstance(expression, Collection):
        return 1 + nesting(expression.body)
    if isinstance(expression, Not):
        return isinstance(expression.operand, And | Or | Collection) + nesting(expression.operand)
    grouped = (And, Or, Collection) if isinstance(expression, And) else (Or, Collection)
    return max(isinstance(operand, grouped) + nesting(operand) for operand in expression.operands)


@FAST
@given(EXPRESSIONS)
def test_generated_expressions_render_and_parse_back_to_the_same_tree(expression: Expression) -> None:
    rendered = str(expression)
    assume(len(rendered) <= MAX_FILTER_LENGTH and nesting(expression) <= MAX_NESTING_DEPTH)
    parsed = parse_filter(rendered)
    assert parsed.expression == expression
    assert str(parsed) == rendered


JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=6),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(["a", "b", "0", "not", "x"]), children, max_size=4),
    ),
    max_leaves=10,
)
PROPERTY_NAMES = st.sampled_from(["a", "b", "0", "not", "x", "pushed", "tags"])


@FAST
@given(EXPRESSIONS, st.dictionaries(PROPERTY_NAMES, JSON_VALUES, max_size=6))
def test_evaluation_over_arbitrary_properties_never_raises(
    expression: Expression, properties: dict[str, object]
) -> None:
    rendered = str(expression)
    assume(len(rendered) <= MAX_FILTER_LENGTH and nesting(expression) <= MAX_NESTING_DEPTH)
    parsed = parse_filter(rendered)
    result = parsed.matches(properties)
    assert isinstance(result, bool)
    try:
        assert parsed.evaluate(properties) is result
    except FilterEvaluationError:
        assert result is False


# The deadline fails a slow engine; a backtracking one never returns from its C code, which
# only the timeout can stop.
@pytest.mark.timeout(120)
@settings(deadline=timedelta(seconds=1), max_examples=30)
@given(st.integers(min_value=1_000, max_value=50_000))
@pytest.mark.parametrize("pattern", ["(a+)+$", "(a|a)*b", "(a|aa)+$", "(.*a){12}$", "^(a?){25}a{25}$"])
def test_regular_expressions_match_in_linear_time(pattern: str, length: int) -> None:
    hostile = parse_filter(f"s matches `{pattern}`")
    assert hostile.matches({"s": "a" * length + "!"}) is False
