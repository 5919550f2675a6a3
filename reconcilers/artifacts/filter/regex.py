"""The regular expressions of ``matches`` and ``not matches``, compiled with RE2 and its options."""

from typing import Any

import re2

from reconcilers.artifacts.filter.conversion import go_bytes

# RE2's memory budget for one pattern. Its default (8 MiB) refuses patterns Go's regexp compiles,
# such as \pL{1000}; this one holds any pattern within MAX_REGEX_PROGRAM_SIZE.
_MAX_MEMORY = 64 << 20


class InvalidRegex(ValueError):
    pass


def _regex_options() -> re2.Options:
    options = re2.Options()
    # Errors are reported to the user through InvalidArtifactFilter, not RE2's own log.
    options.log_errors = False
    options.max_mem = _MAX_MEMORY
    return options


_REGEX_OPTIONS = _regex_options()


def compile_regex(pattern: str) -> Any:
    # RE2 is the engine behind Go's regexp (the syntax users know from go-bexpr), and it matches
    # in time linear in the subject whatever the pattern: no catastrophic backtracking, so
    # neither a hostile pattern nor a huge property value can stall a reconcile.
    # A pattern that is not UTF-8 (from \x escapes) fails here, as Go's regexp refuses it too.
    encoded = go_bytes(pattern)
    if _has_any_byte_escape(encoded):
        raise InvalidRegex(r"invalid escape sequence: \C")
    try:
        return re2.compile(encoded, _REGEX_OPTIONS)
    except re2.error as error:
        detail = error.args[0] if error.args else ""
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise InvalidRegex(str(detail)) from None


def _has_any_byte_escape(pattern: bytes) -> bool:
    r"""Whether the pattern uses \C (any byte), which RE2 knows and Go's regexp refuses.

    Text between \Q and \E is literal, so a \C there is two ordinary characters.
    """
    position = 0
    while position < len(pattern) - 1:
        if pattern[position] != ord("\\"):
            position += 1
            continue
        escaped = pattern[position + 1]
        if escaped == ord("C"):
            return True
        if escaped == ord("Q"):
            end = pattern.find(rb"\E", position + 2)
            if end < 0:
                return False
            position = end + 2
            continue
        position += 2
    return False


def program_size(regex: Any) -> int:
    """The size of a compiled pattern, in RE2 instructions."""
    return int(regex.programsize)


def search(regex: Any, subject: str) -> bool:
    """Whether the regular expression matches anywhere in ``subject``, as Go's Regexp.Match."""
    return regex.search(go_bytes(subject)) is not None
