"""The corpus of filters and property sets on which the Python filters must agree with go-bexpr.

Each case is a filter and the artifact properties it is evaluated against, written as the JSON
the Go kfp-operator decoded them from (see reconcilers/artifacts/mlmd_values.py). Hand-written
cases cover every operator, value form, escape, selector form and go-bexpr quirk; generated
cases (a seeded random walk over the grammar and the value kinds, some of them then mangled)
cover their combinations. A case whose answer differs from go-bexpr's on purpose says so in
``difference``, which names one of DIFFERENCES.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass, field

from ml_metadata.proto import metadata_store_pb2

# The differences from go-bexpr that are kept on purpose (see docs/artifacts.md).
DIFFERENCES = {
    # A regular expression Go's regexp refuses: go-bexpr fails when it evaluates it (no match);
    # the filter is rejected when it is read.
    "regex": "an invalid regular expression is rejected when the filter is read",
    # go-bexpr crashes (a Go panic) on `matches` against null and `in` on a list holding null;
    # evaluation fails instead (no match).
    "panic": "where go-bexpr crashes, evaluation fails",
    # go-bexpr's parser gives up after 2,000,000 steps, which about seven nested parentheses
    # take; the filter is accepted up to MAX_NESTING_DEPTH levels.
    "parse-budget": "deeply nested parentheses are accepted",
    # Nesting is capped at MAX_NESTING_DEPTH levels; go-bexpr nests collection expressions as
    # deep as 1024 characters allow.
    "nesting": "parentheses and collection expressions nest at most 32 levels",
    # Longer filters cannot come from an artifact path (the CRD caps it at 1024 characters).
    "length": "a filter is at most 1024 characters long",
    # Go's regexp compiles patterns up to 128 MiB; a filter's patterns together are kept to
    # MAX_REGEX_PROGRAM_SIZE RE2 instructions, to bound the time and memory reading it takes.
    "regex-size": "a filter's regular expressions are at most 2,000,000 RE2 instructions together",
}


@dataclass(frozen=True)
class Case:
    filter: str
    data: dict[str, object] = field(default_factory=dict)
    difference: str | None = None
    # Properties ML Metadata holds but the reference left out of its map (bool and proto
    # values): given to the Python side only, which must leave them out too.
    dropped: dict[str, metadata_store_pb2.Value] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        assert self.difference is None or self.difference in DIFFERENCES, self.difference

    def json_line(self, repeat: int) -> str:
        return json.dumps({"filter": self.filter, "data": self.data, "repeat": repeat}) + "\n"


# --------------------------------------------------------------------------------------------
# Hand-written cases
# --------------------------------------------------------------------------------------------

# A KFP v2 artifact's properties as the reference saw them: numbers JSON-decoded, KFP's list
# and object wrapping kept.
KFP = {
    "pushed": 1,
    "display_name": "pushed_model",
    "accuracy": 0.93,
    "runs": 100,
    "big": 9007199254740993,
    "negative": -2.5,
    "name": "model-v2",
    "empty": "",
    "unicode": "café",
    "uri": "gs://bucket/a b/model",
    "tags": {"list": ["prod", "eu", 1, True]},
    "metrics": {"struct": {"loss": 0.1, "per_class": {"cat": 0.9, "dog": 0.8}}},
    "nested": {"x": {"y": "z"}, "n": None, "b": True, "f": False, "l": [], "m": {}, "s": ""},
    "list": {"l": [1, 2.5, "a", True, None], "ll": [[1]], "lm": [{"k": 1}], "bools": [True, False]},
    "seq": {"l": list(range(12))},
    "": 5,
    "not": 1,
    "in": "in",
    "any": {"x": 1},
    "a/b": 2,
    "a~b": 3,
    "ключ": "значение",
}

# A property set for collection expressions.
COLLECTIONS = {
    "l": {"v": [1, 2, 3]},
    "strings": {"v": ["a", "b", "prod"]},
    "maps": {"v": [{"k": 1, "name": "a"}, {"k": 2, "name": "b"}]},
    "m": {"a": 1, "b": 2},
    "mixed": {"a": [1], "b": 1},
    "empty": {"v": [], "m": {}},
    "nested": {"v": [[1, 2], [3]]},
    "s": "abc",
    "n": 1,
    "nul": {"v": None},
}


def _cases(data: dict[str, object], *filters: str, difference: str | None = None) -> list[Case]:
    return [Case(text, data, difference) for text in filters]


HAND_WRITTEN: list[Case] = [
    # Every operator on every kind of property.
    *_cases(
        KFP,
        "pushed == 1",
        "pushed == 1.0",
        'pushed == "1"',
        "pushed == `1`",
        "pushed != 1",
        "pushed != 0",
        "pushed == true",
        "pushed == 0x1",
        'pushed == "0x1"',
        'pushed == "0x1p0"',
        'pushed == "1e0"',
        'pushed == "1_0"',
        'pushed == "1__0"',
        'pushed == "+1"',
        'pushed == "01"',
        'pushed == ".1e1"',
        'pushed == "0b1"',
        'pushed == " 1"',
        "runs == 100",
        "runs == 1e2",
        'runs == "1e2"',
        'runs == "0x64"',
        'runs == "0x64p0"',
        'runs == "1_00"',
        'runs == "100."',
        "big == 9007199254740993",
        "big == 9007199254740992",
        "accuracy == 0.93",
        "accuracy != 0.93",
        "accuracy == 0.930",
        'accuracy == "9.3e-1"',
        'accuracy == "inf"',
        'accuracy == "nan"',
        'accuracy == "1e999"',
        'accuracy == "1e-999"',
        'accuracy == "0x1p-2000"',
        "negative == -2.5",
        "negative == -2.50",
        'negative == "-Infinity"',
        "name == model-v2",
        'name == "model-v2"',
        "name == `model-v2`",
        "name != model",
        'name == "model"',
        "display_name == pushed_model",
        'empty == ""',
        "empty == ``",
        "empty is empty",
        "empty is not empty",
        "name is empty",
        "name is not empty",
        "pushed is empty",
        "pushed is nil",
        "pushed is not nil",
        "name is nil",
        "name is not nil",
        "tags is nil",
        "tags is not nil",
        "nested.n is nil",
        "nested.n is not nil",
        "nested.n == 1",
        "nested.n is empty",
        "x in nested.n",
        "nested.l is nil",
        "nested.l is empty",
        "nested.m is nil",
        "nested.m is empty",
        "nested.s is empty",
        "nested.b == true",
        "nested.b == T",
        "nested.b == 1",
        "nested.b == yes",
        "nested.b != false",
        "nested.f == False",
        "nested.f == 0",
        "nested.b is nil",
        "nested.b is empty",
        "nested.b matches t",
        "nested.x.y == z",
        "nested.missing is nil",
        "nested.missing is not nil",
        "nested.missing == 1",
        "nested.missing != 1",
        "nested.missing is empty",
        "nested.missing is not empty",
        "nested.missing matches x",
        "nested.missing not matches x",
        "x in nested.missing",
        "x not in nested.missing",
        "nested.missing contains x",
        "nested.missing not contains x",
        "nested.missing.deeper is empty",
        "nested.x.missing == 1",
        "nested.b.x == 1",
        "missing == 1",
        "missing != 1",
        "missing is empty",
        "missing is nil",
        "missing is not nil",
        "missing matches x",
        "x in missing",
        "x not in missing",
        # Containment.
        "mod in name",
        '"" in name',
        "model-v3 in name",
        "name contains v2",
        "name not contains v2",
        "v2 not in name",
        "é in unicode",
        '"\\xc3" in unicode',
        'name contains "-"',
        "prod in tags",
        "list in tags",
        "prod in tags.list",
        "eu in tags.list",
        "1 in tags.list",
        "true in tags.list",
        "x in tags.list",
        "tags.list contains prod",
        "tags.list not contains prod",
        "loss in metrics.struct",
        "metrics.struct contains loss",
        "cat in metrics.struct.per_class",
        "0.9 in metrics.struct.per_class",
        "1 in list.l",
        "2.5 in list.l",
        "a in list.l",
        "1.0 in list.l",
        "true in list.l",
        "t in list.l",
        "1 in list.ll",
        "1 in list.lm",
        "x in list.ll",
        "true in list.bools",
        "0 in list.bools",
        "yes in list.bools",
        '"1e999" in list.bools',
        '"1e999" in seq.l',
        '"0x1" in seq.l',
        "1 in pushed",
        "x in pushed",
        "1 in nested.b",
        # Regular expressions.
        'name matches "v[0-9]"',
        'name matches "^v[0-9]"',
        'name not matches "^v[0-9]"',
        'name matches "^model-v2$"',
        "name matches `\\d`",
        'name matches "\\\\d"',
        'name matches "(?i)MODEL"',
        'unicode matches "é$"',
        'unicode matches "^.{4}$"',
        'unicode matches "\\\\pL{4}"',
        'uri matches "a b"',
        'name matches ""',
        "pushed matches 1",
        "tags.list matches prod",
        "tags matches prod",
        # Selectors: dotted, list indexes, JSON pointers, indexes.
        "seq.l.0 == 0",
        "seq.l.11 == 11",
        "seq.l.12 == 12",
        "seq.l.010 == 8",
        "seq.l.08 == 8",
        "seq.l.x == 1",
        '"/seq/l/0x1" == 1',
        '"/seq/l/0b11" == 3',
        '"/seq/l/-1" == 11',
        '"/seq/l/1_0" == 10',
        'seq.l[""] == 0',
        'seq.l["1"] == 1',
        "tags.list.0 == prod",
        '"/metrics/struct/loss" == 0.1',
        '"/metrics/struct/per_class/cat" == 0.9',
        'metrics["struct"].loss == 0.1',
        'metrics[ "struct" ]["per_class"].cat == 0.9',
        "metrics[`struct`].loss == 0.1",
        'metrics["struct"].missing is empty',
        '"" == 5',
        '"/" == 5',
        '"//" == 5',
        '"/not" == 1',
        "not == 1",
        '"/in" == in',
        "in == in",
        '"/a~1b" == 2',
        "a/b == 2",
        '"/a~0b" == 3',
        '"/ключ" == значение',
        '"/ключ" == "значение"',
        '"/any/x" == 1',
        "any.x == 1",
        # A quoted value that spells a JSON pointer means its parts joined with '/'.
        'display_name == "/pushed_model"',
        'a/b == "/a/b"',
        'uri == "gs://bucket/a b/model"',
        'name == "/model-v2"',
        'in == "/in"',
        'empty == ""',
        'display_name == "\\x2fpushed_model"',
        # A word value means its parts joined with '.'.
        "name == model-v2.x",
        "display_name == pushed_model.x",
        # Boolean structure and evaluation order.
        "pushed == 1 and accuracy == 0.93",
        "pushed == 0 or accuracy == 0.93",
        "pushed == 1 or missing == 1",
        "missing == 1 or pushed == 1",
        "pushed == 0 and missing == 1",
        "pushed == 1 and missing == 1",
        "not missing == 1",
        "not pushed == 1",
        "not not pushed == 1",
        "not not not pushed == 1",
        "not (not pushed == 1)",
        "(pushed == 1 or missing == 1) and pushed != 0",
        "pushed == 0 or not missing == 1",
        "pushed == 1 and (pushed == 0 or missing is empty)",
        "pushed == 1 or pushed == 0 and missing == 1",
        "(pushed == 1 or pushed == 0) and missing == 1",
        "name == model-v2 and name == model-v2 and pushed == 1 and runs == 100",
        "name == x or name == y or name == model-v2",
        "((pushed == 1))",
        "((((((pushed == 1))))))",
        "((((((not pushed == 0))))))",
        # Keywords as names and values, where go-bexpr allows them.
        "not == 1",
        "not != 1",
        "in in in",
        "in in x",
        "not in in",
        "not not in in",
        "not contains 1",
        "not not contains 1",
        "not is empty",
        "not is not nil",
        "not matches 1",
        "in == in",
        "pushed == and and pushed == 1",
        "name == or or pushed == 1",
        "pushed == not",
        "any.x == 1",
        "any in any",
        "pushed == empty",
        "pushed == nil",
        # Whitespace.
        "pushed==1",
        "pushed ==1",
        "pushed== 1",
        "  \t\r\npushed == 1\n",
        "( pushed == 1 )",
        "(pushed == 1)",
        "pushed == 1\tand\naccuracy == 0.93",
        "prod\tin\ttags.list",
        "not\npushed == 0",
        # Value forms and escapes.
        'name == "model\\x2dv2"',
        'name == "model\\055v2"',
        'name == "model\\u002dv2"',
        'name == "model\\U0000002dv2"',
        'unicode == "caf\\u00e9"',
        'unicode == "caf\\xc3\\xa9"',
        'unicode == "caf\\303\\251"',
        'unicode == "caf\\xe9"',
        'empty == "\\a\\b\\f\\n\\r\\t\\v\\\\"',
        'name == "a\\tb"',
        "name == `a\\tb`",
        "name == `model\r-v2`",
        'name == "model-v2\r"',
        "pushed == -1",
        "pushed == -0",
        "pushed == 0",
        "negative == -2.5",
        "pushed == 1.00",
        "pushed in 1",
    ),
    # Inputs go-bexpr rejects.
    *_cases(
        KFP,
        "",
        "   ",
        "pushed",
        "pushed = 1",
        "pushed == ",
        "pushed ! 1",
        "pushed <= 1",
        "pushed > 1",
        "pushed == 1 && runs == 1",
        "pushed == 1 || runs == 1",
        "pushed == 'x'",
        "pushed == 1 AND runs == 1",
        "pushed == 1 And runs == 1",
        "NOT pushed == 1",
        "pushed == 1 runs == 1",
        "(pushed == 1",
        "pushed == 1)",
        "()",
        "pushed == 1 and",
        "pushed == 1 or not",
        "1 == pushed",
        "`x` == y",
        '"x" == 1',
        '"/a b" == 1',
        '"/a//b" == 1',
        '1 in "x"',
        "1 in 2",
        "1 in (",
        "x is",
        "x is not",
        "x not == 1",
        "x is emptyx",
        "x is not nilx",
        "x is empty.y",
        "pushed == 01",
        "pushed == 1.",
        "pushed == .5",
        "pushed == 1e5",
        "pushed == 1.2.3",
        "pushed == 1and runs == 1",
        "pushed == 1 and(runs == 1)",
        "(pushed == 1)and(runs == 1)",
        "(pushed == 1) and(runs == 1)",
        "pushed == 1 or(runs == 1)",
        "not(pushed == 1)",
        "not (pushed == 1)",
        "pushed == +1",
        "pushed == -",
        "pushed == - 1",
        "my-model == 1",
        "a. == 1",
        "a.b. == 1",
        "_a == 1",
        "a._b == 1",
        'x == "abc',
        "x == `abc",
        'x == "a\\"',
        'x == "a\\"b"',
        'x == "a\nb"',
        'x == "\\q"',
        'x == "\\\'"',
        'x == "\\x4"',
        'x == "\\u12G4"',
        'x == "\\400"',
        'x == "\\12"',
        'x == "\\ud800"',
        'x == "\\U00110000"',
        "x == é",
        "é == x",
        "x == a[0]",
        "x == a[",
        'x == a["k"',
        'x == a["k"]x',
        'a["k" == 1',
        "a[k] == 1",
        "a] == 1",
        "x == 1 [",
        "pushed == 1 ]",
        "x == a:b",
        "pushed == 1}",
        "{pushed == 1}",
        "pushed == 1,",
        "pushed == 1 ,",
        "pushed ==== 1",
        "pushed =! 1",
        "not not",
        "not",
        "not pushed",
        "pushed not 1",
        "pushed not in",
        "pushed in",
        "in",
        "(not contains in )",
        "not contains in ",
        "not contains in 5",
        "pushed == 1 or 5",
        "(pushed == 1 or 5)",
        "pushed == 1 and and",
        "pushed contains",
        'pushed contains"1"',
        "pushed matches(",
        "pushed is  empty",
        "pushed is\tnot\nnil",
    ),
    # Collection expressions.
    *_cases(
        COLLECTIONS,
        "any l.v as v { v == 1 }",
        "any l.v as v { v == 4 }",
        "all l.v as v { v != 4 }",
        "all l.v as v { v != 1 }",
        "any l.v as v { v == 1}",
        "any l.v as v {v == 1 }",
        "any l.v as v{ v == 1 }",
        "any l.v as v{v == v}",
        'any l.v as v { v == "1" }',
        "any l.v as i, v { i == 0 and v == 1 }",
        "any l.v as i, v { i == 2 and v == 3 }",
        'any l.v as i, v { i == "0x2" and v == 3 }',
        "any l.v as i, v { i == 1.0 }",
        "any l.v as i, v { i == true }",
        "any l.v as i, v { i is empty }",
        "any l.v as i, v { i is nil }",
        "any l.v as i, v { 1 in i }",
        'any l.v as i, v { i matches "1" }',
        "any l.v as i, v { i.x == 1 }",
        "any l.v as i, _ { i == 2 }",
        "any l.v as _, v { v == 2 }",
        "any l.v as i , v { v == 2 }",
        "any l.v as i,v { v == 2 }",
        "any l.v as v, v { v == 2 }",
        "any empty.v as v, v { v == 2 }",
        "all l.v as _, v { v is nil }",
        "any l.v as _ { v == 1 }",
        "any l.v as _, _ { v == 1 }",
        "any l.v as v.x { v == 1 }",
        "any l.v as 1 { v == 1 }",
        "any l.v as v { }",
        "any l.v as v { v == 1 ",
        "any l.v v { v == 1 }",
        "any l.v as v",
        "any l.v as{ v == 1 }",
        "anyl.v as v { v == 1 }",
        "ANY l.v as v { v == 1 }",
        "some l.v as v { v == 1 }",
        "any strings.v as v { v == prod }",
        'any strings.v as v { v matches "^p" }',
        "all strings.v as v { v is not empty }",
        "any strings.v as v { r in v }",
        "any maps.v as v { v.k == 2 }",
        "any maps.v as v { v.name == b and v.k == 2 }",
        "any maps.v as v { v.missing == 1 }",
        "all maps.v as v { v.missing is empty }",
        "any maps.v as i, v { v.k == 2 and i == 1 }",
        'any maps.v as v { "/v/k" == 2 }',
        "any maps.v as v { any v as k { k == name } }",
        "any maps.v as v { all v as k, x { x is not empty } }",
        "any m as k { k == a }",
        "any m as k { k == c }",
        'any m as k { k matches "^b" }',
        "all m as k { k is not empty }",
        "any m as k, v { k == b and v == 2 }",
        "any m as k, v { v == 3 }",
        "any m as _, v { v == 2 }",
        "any m as k, _ { k == a }",
        "any m as k { k.x == 1 }",
        "any m as k, v { v.x == 1 }",
        "any m as k, v { v.x is empty }",
        "any mixed as k, v { v == 1 }",
        "all mixed as k, v { v != 1 }",
        "any empty.v as v { v == 1 }",
        "all empty.v as v { v == 1 }",
        "any empty.m as k { k == 1 }",
        "all empty.m as k { k == 1 }",
        "any nested.v as v { any v as w { w == 3 } }",
        "all nested.v as v { all v as w { w != 4 } }",
        "any nested.v as v { 3 in v }",
        "any nested.v as i, v { any v as j, w { i == 1 and j == 0 and w == 3 } }",
        "any nested.v as v { any l.v as w { w == 1 } }",
        "any nested.v as l { l == 1 }",
        "any nested.v as l { any l as x { x == 3 } }",
        "any l.v as s { s == abc }",
        "any l.v as v { s == abc }",
        "any s as v { v == a }",
        "any n as v { v == 1 }",
        "any nul.v as v { v == 1 }",
        "all nul.v as v { v == 1 }",
        "any missing as v { v == 1 }",
        "all missing as v { v == 1 }",
        "any l.missing as v { v == 1 }",
        "all l.missing as v { v == 1 }",
        "any l.missing.deeper as v { v == 1 }",
        'any "/l/v" as v { v == 1 }',
        'any maps["v"] as v { v.k == 1 }',
        "n == 1 or any l.v as v { v == 1 }",
        "n == 2 or any l.v as v { v == 1 }",
        "n == 2 or n == 3 or any l.v as v { v == 1 }",
        "any l.v as v { v == 1 } or n == 1",
        "n == 1 and any l.v as v { v == 1 }",
        "n == 1 and (any l.v as v { v == 1 })",
        "(any l.v as v { v == 1 }) and n == 1",
        "(any l.v as v { v == 1 })",
        "not any l.v as v { v == 1 }",
        "not (any l.v as v { v == 1 })",
        "not (all l.v as v { v == 1 })",
        "(n == 2 or any l.v as v { v == 1 }) and n == 1",
        "any l.v as v { v == 1 or v == 2 }",
        "any l.v as v { v == 1 and v == 2 }",
        "any l.v as v { not v == 1 }",
        "any l.v as v { (v == 1) }",
        "any l.v as v { any l.v as v { v == 1 } }",
        "any contains as v { v == 1 }",
        "any contains as and { n == 1 }",
        "any in as v { v == 1 }",
        "any as as v { v == 1 }",
        "all l.v as any { any == 2 }",
        "any l.v as in { in == 2 }",
        "any l.v as not { not == 2 }",
        'any l.v as not { "/not" == 2 }',
        "any l.v as all { all == 2 }",
        "any l.v as v { v == 1 } ",
        "  any l.v as v { v == 1 }",
        "any\tl.v\tas\tv\t{\tv == 1\t}",
    ),
    # Go crashes (panics) where evaluation fails instead.
    Case('nested.n matches "a"', KFP, "panic"),
    Case('nested.n not matches "a"', KFP, "panic"),
    Case("1 in list.l", {"list": {"l": [None, 1]}}, "panic"),
    Case("x in list.l", KFP, "panic"),
    Case("x not in list.l", KFP, "panic"),
    Case("pushed == 1 and nested.n matches x", KFP, "panic"),
    # Regular expressions Go's regexp refuses are rejected when the filter is read.
    Case('name matches "("', KFP, "regex"),
    Case('name matches "[a-"', KFP, "regex"),
    Case('name not matches "a{2000}"', KFP, "regex"),
    Case('name matches "(?P=x)"', KFP, "regex"),
    Case('name matches "\\\\8"', KFP, "regex"),
    Case('name matches "\\xff"', KFP, "regex"),
    Case('missing matches "("', KFP, "regex"),
    Case('pushed == 0 and name matches "("', KFP, "regex"),
    # RE2 knows \C (any byte); Go's regexp does not.
    Case("name matches `\\C`", KFP, "regex"),
    Case("name matches `a\\Eb\\C`", KFP, "regex"),
    Case("name matches `\\Qa\\Cb`", KFP),
    Case("name matches `\\\\C`", KFP),
    # Large patterns compile in both (this one is beyond RE2's default memory budget)...
    Case("name matches `\\pL{700}`", KFP),
    # ...but not many of them.
    Case("name matches `\\pL{900}` or name matches `\\pL{900}`", KFP, "regex-size"),
    # go-bexpr's parser gives up on more than about six nested parentheses.
    Case("(((((((pushed == 1)))))))", KFP, "parse-budget"),
    Case("(" * 30 + "pushed == 1" + ")" * 30, KFP, "parse-budget"),
    Case("not (" * 7 + "pushed == 1" + ")" * 7, KFP, "parse-budget"),
    # Longer than an artifact path allows.
    Case("pushed == 1 or " * 70 + "pushed == 1", KFP, "length"),
]

# Long filters: within every limit, and just beyond the nesting one.
HAND_WRITTEN += [
    Case("not " * 250 + "pushed == 1", KFP),
    Case(" and ".join(["pushed == 1"] * 60), KFP),
    Case("any l.v as v{" * 32 + "n == 1" + " }" * 32, COLLECTIONS),
    Case("any l.v as v{" * 33 + "n == 1" + " }" * 33, COLLECTIONS, "nesting"),
    Case("any l.v as v{" * 60 + "n == 1" + " }" * 60, COLLECTIONS, "nesting"),
]

# Properties ML Metadata holds that the reference left out of its map: bool and proto values.
_BOOL_VALUE = metadata_store_pb2.Value(bool_value=True)
_PROTO_VALUE = metadata_store_pb2.Value()
_PROTO_VALUE.proto_value.type_url = "type.googleapis.com/google.protobuf.Struct"
HAND_WRITTEN += [
    Case(
        text,
        {"pushed": 1},
        dropped={"flag": _BOOL_VALUE, "blob": _PROTO_VALUE, "unset": metadata_store_pb2.Value()},
    )
    for text in (
        "flag == true",
        "flag != true",
        "flag is nil",
        "blob is empty",
        "unset is nil",
        "pushed == 1 and flag == 1",
        "pushed == 1 or flag == 1",
    )
]


# --------------------------------------------------------------------------------------------
# Generated cases
# --------------------------------------------------------------------------------------------

_TOP_NAMES = ["pushed", "a", "b", "m", "l", "s", "n", "t", "x_1", "not", "in", "any", "is"]
_INNER_KEYS = ["x", "y", "k", "0", "1", "list", "struct", "a b", "not", "é"]
_STRINGS = [
    "",
    "abc",
    "prod",
    "1",
    "1.0",
    "0x1F",
    "true",
    "t",
    "a b",
    "café",
    "gs://x/y",
    "a.b",
    "a/b",
    "/a/b",
    "pushed",
    "line\nbreak",
    "日本",
    "x",
    "-1",
    "inf",
]
_NUMBERS: list[object] = [0, 1, -1, 2, 7, 10, 255, 1.5, -2.25, 0.1, 1e20, 3.0, 2**53 + 1, -0.0, 1e-7]
_NUMBER_LITERALS = ["0", "1", "-1", "2", "10", "255", "1.5", "-2.25", "0.1", "3.0", "-0", "1.0", "7"]
_WORD_LITERALS = [
    "prod",
    "abc",
    "true",
    "false",
    "t",
    "x",
    "a.b",
    "v1.2",
    "pushed",
    "not",
    "in",
    "nil",
    "a/b",
]
_STRING_LITERALS = [
    '"abc"',
    '""',
    '"a b"',
    '"1"',
    '"0x1F"',
    '"1e3"',
    '"1_0"',
    '"+1"',
    '"inf"',
    '"nan"',
    '"TRUE"',
    '"0b1"',
    '"01"',
    '"caf\\u00e9"',
    '"caf\\xc3\\xa9"',
    '"\\x41bc"',
    '"\\141bc"',
    '"line\\nbreak"',
    '"/a/b"',
    '"/x"',
    '"gs://x/y"',
    "`abc`",
    "`a\\b`",
    '"\\t"',
    '"-1"',
    '"1.0"',
]
_PATTERNS = [
    '"^a"',
    '"b$"',
    '"[0-9]+"',
    '"(?i)ABC"',
    '""',
    '".*"',
    '"é"',
    '"^$"',
    '"a|b"',
    "`\\d`",
    '"x{2}"',
    "`[[:alpha:]]`",
]


_NAME_OR_INDEX = re.compile(r"[A-Za-z][A-Za-z0-9_/]*|[0-9]+")
_OPERATORS = ["==", "==", "!=", "in", "not in", "contains", "not contains", "is empty", "is not empty"]
_OPERATORS += ["is nil", "is not nil", "matches", "not matches"]
_MANGLING_INSERTS = [" and ", " or ", "(", ")", "not ", "{", "}", ",", "_", '"', "`", "==", " in ", "1", "["]
_MANGLING_INSERTS += [".", "-", "\\", " is ", " nil", " empty", "any ", " as ", "/", "~1", "\n"]
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
# The most orders of the maps in a case's properties that the test tries one by one.
MAX_ORDERINGS = 720


def count_orderings(properties: dict[str, object]) -> int:
    """How many orders of their keys the maps inside the properties have (the top-level map
    excepted: no selector names it, so nothing goes through it)."""
    return math.prod(_orders(value) for value in properties.values())


def _orders(value: object) -> int:
    if isinstance(value, dict):
        return math.factorial(len(value)) * math.prod(_orders(item) for item in value.values())
    if isinstance(value, list):
        return math.prod(_orders(item) for item in value)
    return 1


class _Generator:
    """Random property sets over the value kinds, and random filters over the grammar that
    mostly name properties the set has and values it holds (so that all outcomes occur)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.paths: list[tuple[list[str], object]] = []

    # -- properties ---------------------------------------------------------------------------

    def value(self, depth: int) -> object:
        rng = self.rng
        kinds = ["number", "string", "bool", "null"] + (["list", "map"] * 2 if depth < 3 else [])
        kind = rng.choice(kinds)
        if kind == "number":
            return rng.choice(_NUMBERS)
        if kind == "string":
            return rng.choice(_STRINGS)
        if kind == "bool":
            return rng.choice([True, False])
        if kind == "null":
            return None
        if kind == "list":
            return [self.value(depth + 1) for _ in range(rng.randint(0, 4))]
        return {key: self.value(depth + 1) for key in rng.sample(_INNER_KEYS, rng.randint(0, 3))}

    def properties(self) -> dict[str, object]:
        # Few enough map orders that the test can try them all (see orderings()).
        while True:
            data = self._properties()
            if count_orderings(data) <= MAX_ORDERINGS:
                return data

    def _properties(self) -> dict[str, object]:
        # Top-level values are what MLMD can hold for the reference: numbers, strings, structs.
        rng = self.rng
        data: dict[str, object] = {}
        for name in rng.sample(_TOP_NAMES, rng.randint(2, 6)):
            kind = rng.choice(["number", "string", "struct", "struct"])
            if kind == "number":
                data[name] = rng.choice(_NUMBERS)
            elif kind == "string":
                data[name] = rng.choice(_STRINGS)
            else:
                data[name] = {key: self.value(1) for key in rng.sample(_INNER_KEYS, rng.randint(0, 3))}
        return data

    def _collect_paths(self, value: object, path: list[str]) -> None:
        if path:
            self.paths.append((path, value))
        if isinstance(value, dict):
            for key, item in value.items():
                self._collect_paths(item, [*path, key])
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self._collect_paths(item, [*path, str(index)])

    # -- filters ------------------------------------------------------------------------------

    def target(self, names: list[str], want: tuple[type, ...] = ()) -> tuple[list[str], object]:
        """A path to select and what is there (None if unknown): mostly one the properties
        have, sometimes a name bound by a collection, sometimes a made-up one."""
        rng = self.rng
        roll = rng.random()
        if names and roll < 0.45:
            return [rng.choice(names), *([rng.choice(_INNER_KEYS)] if rng.random() < 0.2 else [])], None
        candidates = [entry for entry in self.paths if not want or isinstance(entry[1], want)]
        if candidates and roll < 0.9:
            return rng.choice(candidates)
        parts = [rng.choice(_TOP_NAMES)] + [
            rng.choice([*_INNER_KEYS, "2", "010"]) for _ in range(rng.randint(0, 2))
        ]
        return parts, None

    def selector(self, parts: list[str]) -> str:
        rng = self.rng
        first, rest = parts[0], parts[1:]
        dotted = _NAME_OR_INDEX.fullmatch(first) and all(_NAME_OR_INDEX.fullmatch(part) for part in rest)
        pointer = all(part and all(char.isalnum() or char in "-_.~:|" for char in part) for part in parts)
        form = rng.random()
        if dotted and (form < 0.6 or (not pointer and not _NAME_OR_INDEX.fullmatch(first))):
            return ".".join(parts)
        if pointer and (form < 0.85 or not _NAME_OR_INDEX.fullmatch(first)):
            return '"/' + "/".join(part.replace("~", "~0") for part in parts) + '"'
        if _NAME_OR_INDEX.fullmatch(first) and not first.isdigit():
            return first + "".join(f'["{part}"]' for part in rest)
        return '"/' + "/".join(parts) + '"'  # not a valid selector: go-bexpr reads a string

    def literal(self, like: object = None) -> str:
        """A value to compare with: often one written like ``like``, else any form."""
        rng = self.rng
        if like is not None and rng.random() < 0.6:
            if isinstance(like, bool):
                return rng.choice(["true", "false", "1", "0", "T", '"true"'])
            if isinstance(like, int | float) and not isinstance(like, bool):
                text = repr(float(like)) if isinstance(like, float) else str(like)
                if _NUMBER.fullmatch(text) and rng.random() < 0.7:
                    return text
                return json.dumps(text)
            if isinstance(like, str) and '"' not in like:
                if like and rng.random() < 0.3:
                    start = rng.randrange(len(like))
                    like = like[start : start + rng.randint(1, 3)]
                if rng.random() < 0.2 and "`" not in like:
                    return f"`{like}`"
                return json.dumps(like, ensure_ascii=rng.random() < 0.5)
        pool = rng.choice([_NUMBER_LITERALS, _WORD_LITERALS, _STRING_LITERALS])
        return rng.choice(pool)

    def match(self, names: list[str]) -> str:
        rng = self.rng
        operator = rng.choice(_OPERATORS)
        if operator in ("in", "not in", "contains", "not contains"):
            parts, there = self.target(names, (str, list, dict))
            like: object = None
            if isinstance(there, list) and there:
                like = rng.choice(there)
            elif isinstance(there, dict) and there:
                like = rng.choice(list(there))
            elif isinstance(there, str):
                like = there
            value = self.literal(like)
            if operator.endswith("in"):
                return f"{value} {operator} {self.selector(parts)}"
            return f"{self.selector(parts)} {operator} {value}"
        parts, there = self.target(names)
        selector = self.selector(parts)
        if operator.startswith("is"):
            return f"{selector} {operator}"
        if operator.endswith("matches"):
            return f"{selector} {operator} {rng.choice(_PATTERNS)}"
        space = rng.choice([" ", " ", " ", ""])
        return f"{selector}{space}{operator}{space}{self.literal(there)}"

    def expression(self, depth: int, names: list[str], parens: int = 0) -> str:
        rng = self.rng
        choices = ["match"] * 5 + (
            ["not", "and", "or", "paren", "collection", "collection"] if depth < 3 else []
        )
        kind = rng.choice(choices)
        if kind == "match":
            return self.match(names)
        if kind == "not":
            return "not " + self.operand(depth + 1, names, parens)
        if kind in ("and", "or"):
            operands = [self.operand(depth + 1, names, parens) for _ in range(rng.randint(2, 3))]
            return f" {kind} ".join(operands)
        if kind == "paren" and parens < 2:
            return "(" + self.expression(depth + 1, names, parens + 1) + ")"
        return self.collection(depth, names, parens)

    def operand(self, depth: int, names: list[str], parens: int) -> str:
        # go-bexpr's parser takes time exponential in the nesting of parentheses: a few levels.
        text = self.expression(depth, names, parens + 1)
        if parens < 3 and (" and " in text or " or " in text or text.startswith(("any ", "all "))):
            return f"({text})"
        return text

    def collection(self, depth: int, names: list[str], parens: int) -> str:
        rng = self.rng
        operator = rng.choice(["any", "all"])
        first, second = rng.sample(["v", "k", "i", "item", "x"], 2)
        binding = rng.choice([first, first, f"{first}, {second}", f"{first}, _", f"_, {second}"])
        bound = [name for name in binding.replace(",", " ").split() if name != "_"]
        parts, _ = self.target(names, (list, dict))
        body = self.expression(depth + 1, names + bound, parens)
        return f"{operator} {self.selector(parts)} as {binding} {{ {body} }}"

    def mangle(self, text: str) -> str:
        """One small change that often makes the filter invalid, or valid in a surprising way."""
        rng = self.rng
        if not text:
            return text
        position = rng.randrange(len(text))
        change = rng.choice(["delete", "insert", "insert", "space", "case", "duplicate"])
        if change == "delete":
            return text[:position] + text[position + 1 :]
        if change == "duplicate":
            return text[:position] + text[position] + text[position:]
        if change == "space":
            return text.replace(" ", "", 1) if rng.random() < 0.5 else text[:position] + " " + text[position:]
        if change == "case":
            return text.replace(" and ", " AND ", 1).replace(" in ", " In ", 1)
        token = rng.choice(_MANGLING_INSERTS)
        return text[:position] + token + text[position:]

    def case(self) -> Case:
        data = self.properties()
        self.paths = []
        self._collect_paths(data, [])
        text = self.expression(0, [])
        if self.rng.random() < 0.2:
            text = self.mangle(text)
        return Case(text, data)


def generated_cases(seed: int, count: int) -> list[Case]:
    generator = _Generator(random.Random(seed))
    return [generator.case() for _ in range(count)]
