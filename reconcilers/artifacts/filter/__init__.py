"""Artifact filters: whether the output artifact an artifact path names is selected.

An artifact path such as ``Pusher:pushed_model:0[pushed == 1]`` may end with a filter between
square brackets: a boolean expression over the custom properties of the artifact the path
names (output INDEX of the task, taken first). The language is hashicorp/go-bexpr's, at the
version the Go kfp-operator used (v0.1.16), with the same answers: a filter go-bexpr accepts is
accepted, and means what it meant there. docs/artifacts.md describes it for users; the module
``lexer`` cuts the text into tokens, ``parser`` builds the ``syntax`` tree following go-bexpr's
grammar, and ``evaluation`` evaluates it as go-bexpr does.

Properties
    As the reference saw them (see ``reconcilers.artifacts.mlmd_values``): numbers are floats
    (MLMD integers included), strings, and structs as JSON maps and lists, with booleans and
    null inside them. Evaluation also takes ``int`` as Go's int64, which collection indexes are.

Selectors
    ``pushed``, ``metrics.accuracy``, ``tags.0``: a name (ASCII letters, then letters, digits,
    ``_`` and ``/``), then ``.name`` or ``.N`` (N read as Go reads integers: ``.010`` is 8), or an
    index ``["key"]`` (which an artifact path cannot contain). Or a quoted JSON pointer:
    ``"/metrics/accuracy"``, whose segments hold letters, digits and ``-_.~:|`` (``~1`` is ``/``,
    ``~0`` is ``~``); ``""`` names the property with the empty name.

Values
    Numbers ``1``, ``-2``, ``0.75`` (followed by whitespace, ``)`` or the end); ``"strings"``
    with Go's escapes, ending at the next ``"`` (write ``\\x22`` for a quote), where ``\\xHH``
    and octal escapes are bytes; ```raw strings```; and words, which are selectors whose text is
    the value (``prod``, ``v1.2``). A quoted value that spells a JSON pointer is one too: ``"/a/b"``
    means ``a/b``. Only a value's text matters until it meets a property.

Operators
    ``==``, ``!=``; ``VALUE in SEL``, ``not in``, ``SEL contains VALUE``, ``not contains`` (a
    substring, a list item, a map key); ``is empty``, ``is not empty`` (strings, lists, maps);
    ``is nil``, ``is not nil`` (true for null only; an error on strings, numbers, booleans);
    ``matches``, ``not matches`` (RE2 syntax, searched anywhere); ``not``, ``and``, ``or`` in that
    order of precedence, and parentheses. Word operators need whitespace around them.
    ``any SEL as v { ... }`` and ``all SEL as k, v { ... }`` go through a list (``v`` an item,
    ``k`` an index) or a map (``as k`` binds a key; ``k, v`` a key and a value; ``_`` skips one);
    as in go-bexpr, such an expression stands alone, in parentheses, or last after 'or'.

Comparing
    The value's text is converted to the property's type as go-bexpr converts it: Go's
    ParseFloat for numbers (``1``, ``1.0``, ``"1e0"``, ``"0x1p0"`` all equal 1), ParseBool for
    booleans, ParseInt (base 0) for indexes, the text itself for strings. A list item the value
    cannot be converted to is skipped.

Errors and missing properties
    A filter that cannot be evaluated does not select the artifact: a first selector name that
    is not a property (``pushed != 1`` needs a ``pushed``), a value that cannot be converted, an
    operator that does not apply, a selector through something that is not a map or list. A
    missing last key of a map that exists is not an error: ``==``, ``in``, ``contains``,
    ``matches``, ``is not empty`` and ``is not nil`` are false, their negations true. An error
    ends the evaluation, unless an operand to its left already decided the result.

Limits (none is reached by any realistic filter)
    A filter is at most MAX_FILTER_LENGTH (1024) characters, as the artifact path's CRD caps the
    whole path; parentheses and collection expressions nest at most MAX_NESTING_DEPTH (32)
    levels; its regular expressions compile to at most MAX_REGEX_PROGRAM_SIZE (2,000,000) RE2
    instructions together; evaluating it takes at most MAX_EVALUATION_STEPS (100,000) steps,
    after which it is an evaluation error. Parsing takes time linear in the filter's length.

Differences from go-bexpr v0.1.16, kept on purpose
    * A regular expression Go's regexp refuses (including ``\\C`` and patterns that are not
      UTF-8) makes the filter invalid when it is read; go-bexpr compiles it only when it is
      evaluated, and then fails (no match). A filter that can never match is worth reporting.
    * A filter whose regular expressions are larger than MAX_REGEX_PROGRAM_SIZE is invalid (Go's
      own limit is 128 MiB per pattern): this bounds the time and memory one filter takes.
    * A filter that takes more than MAX_EVALUATION_STEPS steps does not select the artifact;
      go-bexpr goes on as long as it takes (nested collections over lists grow exponentially).
    * Where go-bexpr crashes (``matches`` on null, ``in`` on a list holding null before the value
      is found), evaluation fails and the artifact is not selected.
    * go-bexpr's parser gives up after 2,000,000 steps of backtracking, which about seven nested
      parentheses take; they are accepted here up to MAX_NESTING_DEPTH. Collection expressions,
      which go-bexpr nests as deep as 1024 characters allow (85 levels), stop there too.
    * ``any``/``all`` go through a map in its own order (key order, from ``mlmd_values``), where
      go-bexpr takes Go's random order; it matters only when one item fails and another decides.
    * Letters and digits in JSON pointers are those of Python's Unicode database, which may be
      an older or newer Unicode version than the Go release that built the reference.
"""

from reconcilers.artifacts.filter.errors import FilterEvaluationError, InvalidArtifactFilter
from reconcilers.artifacts.filter.evaluation import MAX_EVALUATION_STEPS, Filter
from reconcilers.artifacts.filter.parser import (
    MAX_FILTER_LENGTH,
    MAX_NESTING_DEPTH,
    MAX_REGEX_PROGRAM_SIZE,
    parse_filter,
)
from reconcilers.artifacts.filter.syntax import (
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

__all__ = [
    "MAX_EVALUATION_STEPS",
    "MAX_FILTER_LENGTH",
    "MAX_NESTING_DEPTH",
    "MAX_REGEX_PROGRAM_SIZE",
    "And",
    "Binding",
    "Collection",
    "CollectionOperator",
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
