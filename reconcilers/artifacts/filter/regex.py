"""The regular expressions of ``matches`` and ``not matches``, compiled with RE2 and its options."""

from typing import Any

import re2


class InvalidRegex(ValueError):
    pass


def _regex_options() -> re2.Options:
    options = re2.Options()
    # Errors are reported to the user through InvalidArtifactFilter, not RE2's own log.
    options.log_errors = False
    return options


_REGEX_OPTIONS = _regex_options()


def compile_regex(pattern: str) -> Any:
    # RE2 (the engine behind Go's regexp, so the syntax users know from go-bexpr) matches in
    # time linear in the subject whatever the pattern: no catastrophic backtracking, so neither
    # a hostile pattern nor a huge property value can stall a reconcile. Its memory per pattern
    # is capped by RE2 itself (8 MiB), and the filter length caps the number of patterns.
    try:
        return re2.compile(pattern.encode("utf-8", "surrogatepass"), _REGEX_OPTIONS)
    except re2.error as error:
        detail = error.args[0] if error.args else ""
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise InvalidRegex(str(detail)) from None
