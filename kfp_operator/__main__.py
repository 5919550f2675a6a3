"""Entry point of the kfp-operator process (console script ``kfp-operator``).

``kfp-operator --config FILE [--kubeconfig FILE] [--<key> VALUE ...]``: loads and validates the
configuration (an invalid one exits with status 2 and a message naming the key), configures
logging, connects to the API server (``--kubeconfig``, else ``KUBECONFIG``, else in-cluster,
else ``~/.kube/config``), starts listing the Runs and RunConfigurations, composes the
controllers meanwhile, then runs the manager until SIGTERM or SIGINT. A second signal exits at
once with status 1.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import threading
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from types import FrameType

import structlog
from kubernetes import config as kube_config
from prometheus_client import CollectorRegistry, Info

from controller.gcpolicy import FreezeAfterSync, raise_thresholds
from controller.kube import Kube, load_configuration
from controller.logs import configure_logging
from controller.manager import Manager
from controller.metrics import Metrics
from kfp_operator import settings as configuration
from reconcilers.api import RUN_CONFIGURATIONS, RUNS, UNCOMPLETED_RUNS

EXIT_USAGE = 2


def _version() -> str:
    try:
        return version("kfp-operator")
    except PackageNotFoundError:
        return "unknown"


def register_build_info(registry: CollectorRegistry) -> None:
    """``kfp_operator_build_info{version, python_version} 1``: which operator a scrape came
    from (the ``*_build_info`` convention), to follow a rollout or tell replicas apart."""
    Info("kfp_operator_build", "The operator's version and the Python it runs on.", registry=registry).info(
        {"version": _version(), "python_version": platform.python_version()}
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kfp-operator", description="Runs Kubeflow Pipelines runs declared as Kubernetes Run resources."
    )
    parser.add_argument("--version", action="version", version=f"kfp-operator {_version()}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=os.environ.get(configuration.ENV_PREFIX + "CONFIG"),
        help=f"YAML configuration file (env {configuration.ENV_PREFIX}CONFIG)",
    )
    parser.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig file; default: KUBECONFIG, then in-cluster, then ~/.kube/config",
    )
    configuration.add_flags(parser)
    return parser


def start_listing(manager: Manager) -> None:
    """Starts the Run and RunConfiguration informers before the controllers are composed.

    At a start over many Runs their list is most of the time until ready, and the API server
    spends it preparing pages: the rest of the operator (half of what a start imports) is
    imported and built meanwhile. The controllers get these same shared informers when they ask
    the manager for them. The Runs not completed yet are listed first (see the wiring).
    """
    manager.informer(RUNS, prompt_selector=UNCOMPLETED_RUNS)
    manager.informer(RUN_CONFIGURATIONS)
    manager.start_informers()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        file_values = configuration.read_file(args.config) if args.config else {}
        config = configuration.load(file_values, os.environ, configuration.flag_values(args))
    except configuration.ConfigError as err:
        print(f"kfp-operator: {err}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(config.log.level, config.log.format, cache_loggers=True)
    log = structlog.get_logger("controller.main")
    log.info("starting kfp-operator", version=_version())
    raise_thresholds()  # before the informers list: see controller.gcpolicy

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            os._exit(1)  # a second signal: give up on a graceful stop
        log.info("received signal, shutting down", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    try:
        client_configuration = load_configuration(args.kubeconfig)
    except (kube_config.ConfigException, OSError) as err:
        print(f"kfp-operator: cannot load the Kubernetes client configuration: {err}", file=sys.stderr)
        return EXIT_USAGE
    metrics = Metrics()
    register_build_info(metrics.registry)
    kube = Kube(
        client_configuration,
        metrics,
        qps=config.kube.qps,
        burst=config.kube.burst,
        request_timeout=config.kube.timeout,
    )
    try:
        manager = Manager(config, kube, metrics=metrics)
    except configuration.ConfigError as err:
        print(f"kfp-operator: {err}", file=sys.stderr)
        kube.close()
        return EXIT_USAGE
    start_listing(manager)
    try:
        # Imported only now, while the informers list (see start_listing): the composition root
        # pulls in the clients for KFP, ML Metadata and the sinks, and every reconciler.
        from kfp_operator.wiring import add_controllers

        add_controllers(manager, config)
        manager.add_runnable(FreezeAfterSync(manager.informers), needs_leader=False)
    except configuration.ConfigError as err:
        print(f"kfp-operator: {err}", file=sys.stderr)
        for informer in manager.informers:
            informer.stop()
        kube.close()
        return EXIT_USAGE
    try:
        return manager.run(stop)
    finally:
        kube.close()


if __name__ == "__main__":
    sys.exit(main())
