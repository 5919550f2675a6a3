"""``kfp-devstack``: start, stop and inspect the local stack.

kfp-devstack up        start (or resume) the control plane, the Job executor, the KFP emulator with
                       MLMD, and NATS (--kfp real: the real KFP API server, built from source,
                       behind the emulator)
kfp-devstack status    say what runs where
kfp-devstack down      stop exactly the processes ``up`` started (data is kept)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kfp_devstack.nats import print_events
from kfp_devstack.stack import EVENTS_SUBJECT, KFP_BACKENDS, Stack

DEFAULT_ROOT = Path(".dev")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kfp-devstack", description="The kfp-operator local stack.")
    parser.add_argument("--dir", type=Path, default=DEFAULT_ROOT, help="state directory (default: .dev)")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start what is not running")
    up.add_argument("--no-kfp", action="store_true", help="without the KFP emulator and MLMD")
    up.add_argument(
        "--kfp",
        choices=KFP_BACKENDS,
        default="emulator",
        help="the KFP API server: the emulator's own, or the real one (built from source) behind it",
    )
    up.add_argument("--no-nats", action="store_true", help="without NATS")
    commands.add_parser("examples", help="load the example pipelines, experiment and RunConfiguration")
    events = commands.add_parser("events", help="print the run-completion events published to NATS")
    events.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    commands.add_parser("down", help="stop the processes that up started")
    commands.add_parser("status", help="show what runs where")
    args = parser.parse_args(argv)

    root = args.dir.resolve()
    if args.command == "up":
        stack = Stack.load(root)
        stack.up(with_kfp=not args.no_kfp, with_nats=not args.no_nats, kfp_backend=args.kfp)
        _print_status(stack)
        print(f"\nexport KUBECONFIG={stack.kubeconfig} PATH={stack.bin_dir}:$PATH")
        print(f"operator configuration: {stack.operator_config}")
        return 0
    if args.command == "examples":
        stack = Stack.load(root)
        if stack.kfp is None or stack.control_plane is None:
            print("the stack is not running: run `kfp-devstack up` first", file=sys.stderr)
            return 1
        stack.load_examples()
        print(
            "declared: Pipelines penguin-pipeline (v1-abcdef), example-generator (v1) and typed-parameters "
            "(compiled from the image kfp-examples:v1 by the local Job executor), Experiment "
            "penguin-experiment, RunConfigurations penguin-pipeline-example-generator-runconfiguration and "
            "penguin-pipeline-runconfiguration (the operator puts them in KFP and runs them once it runs)"
        )
        return 0
    if args.command == "events":
        stack = Stack.load(root)
        if stack.nats is None:
            print("NATS is not running: run `kfp-devstack up` first", file=sys.stderr)
            return 1
        print_events(
            stack.nats.url, EVENTS_SUBJECT, follow=args.follow, write=lambda line: print(line, flush=True)
        )
        return 0
    if args.command == "down":
        stopped = Stack.load(root).down()
        print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
        return 0
    _print_status(Stack.load(root))
    return 0


def _print_status(stack: Stack) -> None:
    for component, state, details in stack.status():
        print(f"{component:<15} {state:<10} {details}")


if __name__ == "__main__":
    sys.exit(main())
