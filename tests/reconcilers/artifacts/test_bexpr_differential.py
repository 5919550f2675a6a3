"""The Python artifact filters against go-bexpr v0.1.16, the library the Go kfp-operator used.

hack/bexpr-eval (built once per session by hack/build-bexpr-eval.sh, then cached) parses and
evaluates every case of the corpus the way the reference did: the properties JSON-decoded into
a map, any evaluation error taken as "no match". The Python side gets the same properties the
way production gets them: as ML Metadata values (built from the JSON) converted by
``mlmd_values.python_properties``. Both must accept and reject the same filters and give the
same outcome (true, false or an evaluation error) for each, except for the differences a case
declares (bexpr_corpus.DIFFERENCES).

go-bexpr goes through maps in Go's random order, so a collection expression over a map can have
several outcomes when one item fails and another decides. Go evaluates such filters many times
and the Python side tries every order of every map; Go's outcomes must be among Python's, and
equal to them when Python's do not depend on the order.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2

from reconcilers.artifacts.filter import (
    And,
    Collection,
    Expression,
    FilterEvaluationError,
    InvalidArtifactFilter,
    Not,
    Or,
    parse_filter,
)
from reconcilers.artifacts.mlmd_values import python_properties
from tests.reconcilers.artifacts.bexpr_corpus import (
    DIFFERENCES,
    HAND_WRITTEN,
    MAX_ORDERINGS,
    Case,
    count_orderings,
    generated_cases,
)

# The corpus takes several seconds: one Go process, while Python checks its side.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
GENERATED_SEED = 1016
GENERATED_COUNT = 1500
# Evaluations of a filter with a collection expression on the Go side (see above).
GO_REPEAT = 64


@pytest.fixture(scope="session")
def bexpr_eval() -> Path:
    """The go-bexpr evaluator, built (or found in the cache) by hack/build-bexpr-eval.sh."""
    built = subprocess.run(
        ["bash", str(REPO / "hack" / "build-bexpr-eval.sh")], capture_output=True, text=True, timeout=600
    )
    assert built.returncode == 0, f"hack/build-bexpr-eval.sh failed:\n{built.stderr}"
    binary = Path(built.stdout.strip().splitlines()[-1]) / "bexpr-eval"
    assert binary.is_file(), binary
    return binary


def go_verdicts(binary: Path, cases: list[Case]) -> list[dict[str, object]]:
    """Every case through one bexpr-eval process."""
    lines = "".join(case.json_line(GO_REPEAT if _has_collection_text(case.filter) else 1) for case in cases)
    result = subprocess.run([str(binary)], input=lines, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    verdicts = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(verdicts) == len(cases)
    for verdict in verdicts:
        assert "input_error" not in verdict, verdict
    return verdicts


def _has_collection_text(text: str) -> bool:
    return "any" in text or "all" in text


# --------------------------------------------------------------------------------------------
# The Python side
# --------------------------------------------------------------------------------------------


def mlmd_properties(case: Case) -> dict[str, metadata_store_pb2.Value]:
    """The ML Metadata custom properties the case's JSON stands for (plus the dropped ones)."""
    artifact = metadata_store_pb2.Artifact()
    properties = artifact.custom_properties
    for name, value in case.data.items():
        if isinstance(value, bool) or value is None or isinstance(value, list):
            raise AssertionError(f"{name}: MLMD holds no top-level {type(value).__name__} the reference kept")
        if isinstance(value, int):
            properties[name].int_value = value
        elif isinstance(value, float):
            properties[name].double_value = value
        elif isinstance(value, str):
            properties[name].string_value = value
        else:
            assert isinstance(value, dict)
            properties[name].struct_value.SetInParent()
            properties[name].struct_value.update(value)
    for name, value in case.dropped.items():
        properties[name].CopyFrom(value)
    return dict(properties)


def as_go_sees_it(value: object) -> object:
    """A JSON value as the reference's JSON decoding gave it to go-bexpr: every number a float."""
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, list):
        return [as_go_sees_it(item) for item in value]
    assert isinstance(value, dict)
    return {key: as_go_sees_it(item) for key, item in value.items()}


def orderings(properties: dict[str, object]) -> Iterator[dict[str, object]]:
    """The properties with the keys of the maps inside them in every order."""
    assert count_orderings(properties) <= MAX_ORDERINGS, "too many orders to try"
    names = list(properties)
    for values in _all_orderings([properties[name] for name in names]):
        yield dict(zip(names, values, strict=True))  # type: ignore[call-overload]


def _all_orderings(value: object) -> Iterator[object]:
    if isinstance(value, dict):
        for keys in itertools.permutations(value):
            for items in itertools.product(*(list(_all_orderings(value[key])) for key in keys)):
                yield dict(zip(keys, items, strict=True))
    elif isinstance(value, list):
        for items in itertools.product(*(list(_all_orderings(item)) for item in value)):
            yield list(items)
    else:
        yield value


def _has_collection(expression: Expression) -> bool:
    match expression:
        case Collection():
            return True
        case Not(operand=operand):
            return _has_collection(operand)
        case And(operands=operands) | Or(operands=operands):
            return any(_has_collection(operand) for operand in operands)
    return False


@dataclass(frozen=True)
class Verdict:
    parsed: bool
    error: str
    outcomes: frozenset[str]


def python_verdict(case: Case) -> Verdict:
    properties = python_properties(mlmd_properties(case))
    assert properties == as_go_sees_it(case.data), "mlmd_values disagrees with the reference's map"
    try:
        parsed = parse_filter(case.filter)
    except InvalidArtifactFilter as error:
        return Verdict(False, str(error), frozenset())
    variants = orderings(properties) if _has_collection(parsed.expression) else iter([properties])
    outcomes = set()
    for variant in variants:
        assert isinstance(variant, dict)
        try:
            result = parsed.evaluate(variant)
            outcomes.add("true" if result else "false")
        except FilterEvaluationError:
            result = False
            outcomes.add("error")
        # Filter.matches is what resolution uses: an error selects nothing.
        assert parsed.matches(variant) is result
    return Verdict(True, "", frozenset(outcomes))


# --------------------------------------------------------------------------------------------
# Comparing
# --------------------------------------------------------------------------------------------


def observed_difference(go: dict[str, object], python: Verdict, case: Case) -> str | None:
    """Which of the kept differences the two verdicts show, if any."""
    go_error = str(go["parse_error"])
    if not python.parsed and "regular expression" in python.error and go["parsed"] and go["regex_errors"]:
        return "regex"
    if not python.parsed and "too large" in python.error and go["parsed"] and not go["regex_errors"]:
        return "regex-size"
    if python.parsed and not go["parsed"] and "max number of expressions parsed" in go_error:
        return "parse-budget"
    if not python.parsed and len(case.filter) > 1024 and "characters long" in python.error:
        return "length"
    if not python.parsed and "levels deep" in python.error and go["parsed"]:
        return "nesting"
    if "panic" in go["outcomes"]:  # type: ignore[operator]
        return "panic"
    return None


def disagreement(go: dict[str, object], python: Verdict, difference: str | None) -> str | None:
    """Why the verdicts disagree beyond ``difference``, or None if they agree."""
    if difference in ("regex", "regex-size", "parse-budget", "length", "nesting"):
        return None  # whether the filter is accepted is the whole difference
    if python.parsed != go["parsed"]:
        return f"python {'accepts' if python.parsed else 'rejects'}, go-bexpr does not"
    if not python.parsed:
        return None
    go_outcomes = {outcome for outcome in go["outcomes"]}  # type: ignore[union-attr]
    if difference == "panic":
        go_outcomes = {"error" if outcome == "panic" else outcome for outcome in go_outcomes}
    if not go_outcomes <= python.outcomes or (len(python.outcomes) == 1 and go_outcomes != python.outcomes):
        return f"outcomes differ: go-bexpr {sorted(go_outcomes)}, python {sorted(python.outcomes)}"
    return None


def report(case: Case, go: dict[str, object], python: Verdict, why: str) -> str:
    go_shown = go["parse_error"] or go["eval_error"] or go["outcomes"]
    return (
        f"{why}\n  filter: {case.filter!r}\n  data:   {json.dumps(case.data, ensure_ascii=False)[:300]}\n"
        f"  go-bexpr: parsed={go['parsed']} {go_shown}\n"
        f"  python:   parsed={python.parsed} {python.error or sorted(python.outcomes)}"
    )


@dataclass(frozen=True)
class Compared:
    case: Case
    go: dict[str, object]
    python: Verdict


@pytest.fixture(scope="module")
def compared(bexpr_eval: Path) -> dict[str, list[Compared]]:
    """Both verdicts on every case, hand-written and generated; Go runs while Python does."""
    corpus = {"hand-written": HAND_WRITTEN, "generated": generated_cases(GENERATED_SEED, GENERATED_COUNT)}
    everything = [case for cases in corpus.values() for case in cases]
    with ThreadPoolExecutor(max_workers=1) as pool:
        go_future = pool.submit(go_verdicts, bexpr_eval, everything)
        python = [python_verdict(case) for case in everything]
        go = iter(zip(go_future.result(), python, strict=True))
    return {name: [Compared(case, *next(go)) for case in cases] for name, cases in corpus.items()}


def test_the_corpus_is_large_and_covers_every_kept_difference(compared: dict[str, list[Compared]]) -> None:
    assert sum(len(cases) for cases in compared.values()) >= 300
    assert len(compared["hand-written"]) >= 250
    assert {case.difference for case in HAND_WRITTEN} - {None} == set(DIFFERENCES)


def test_hand_written_cases_agree_with_go_bexpr_except_where_declared(
    compared: dict[str, list[Compared]],
) -> None:
    problems = []
    for item in compared["hand-written"]:
        case, go, python = item.case, item.go, item.python
        observed = observed_difference(go, python, case)
        if observed != case.difference:
            problems.append(
                report(case, go, python, f"declared difference {case.difference}, observed {observed}")
            )
            continue
        why = disagreement(go, python, case.difference)
        if why is not None:
            problems.append(report(case, go, python, why))
    assert not problems, f"{len(problems)} of {len(HAND_WRITTEN)} cases disagree:\n" + "\n".join(
        problems[:40]
    )


def test_generated_cases_agree_with_go_bexpr(compared: dict[str, list[Compared]]) -> None:
    problems = []
    differences: dict[str | None, int] = {}
    for item in compared["generated"]:
        case, go, python = item.case, item.go, item.python
        # Generated cases are not annotated; a kept difference is recognised by go-bexpr's own
        # verdict (a panic, a regexp it refuses, its parsing budget) or the length.
        observed = observed_difference(go, python, case)
        differences[observed] = differences.get(observed, 0) + 1
        why = disagreement(go, python, observed)
        if why is not None:
            problems.append(report(case, go, python, why))
    total = len(compared["generated"])
    assert not problems, f"{len(problems)} of {total} cases disagree:\n" + "\n".join(problems[:40])
    assert differences.get(None, 0) > 0.9 * total
    # The generator reaches acceptance and rejection, matches, non-matches and errors alike.
    outcomes = [item.python.outcomes for item in compared["generated"] if item.python.parsed]
    assert 0.2 * total < len(outcomes) < 0.95 * total
    for outcome in ("true", "false", "error"):
        assert sum(outcome in seen for seen in outcomes) > 0.1 * len(outcomes), outcome
