"""``python -m bench [--runs N] [--cache-runs M] [--quick] [--json PATH]`` (``make bench``)."""

from __future__ import annotations

import logging
import signal
import sys

from bench.config import parse_args
from bench.report import table, write_json
from bench.run import default_json_path, keep_profile, run


def main(argv: list[str] | None = None) -> int:
    # SIGTERM unwinds like Ctrl-C, so the stack's processes are stopped rather than orphaned.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    options = parse_args(argv)
    result = run(options)
    path = options.json_path or default_json_path(result)
    keep_profile(result, path)
    write_json(result, path)
    print(table(result))
    print()
    if result.problems:
        print("Operator problems observed:")
        for problem in result.problems:
            print(f"  - {problem}")
        print()
    print(f"Took {result.duration_seconds:.0f} s. JSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
