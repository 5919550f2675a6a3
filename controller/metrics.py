"""Prometheus metrics with controller-runtime's names, types, labels and buckets.

Everything the standard controller-runtime dashboards (kubebuilder's Grafana plugin,
kubernetes-mixin) read is exported under the same name, type, label set and bucket
boundaries as controller-runtime v0.24 exports it:

* ``controller_runtime_*`` reconcile metrics (``pkg/internal/controller/metrics``), with the
  label sets pre-initialised per controller as ``initMetrics()`` does;
* ``workqueue_*`` with the labels ``name`` and ``controller`` (same value) and, on the depth,
  ``priority=""`` (``pkg/internal/metrics/workqueue.go``);
* ``rest_client_requests_total{code,method,host}``;
* ``leader_election_master_status{name}``;
* the process collector (``process_cpu_seconds_total``, ``process_resident_memory_bytes``...),
  and the process's CPU by kind of thread (``controller_thread_cpu_seconds_total``,
  :mod:`controller.threadcpu`).

All of it lives in one dedicated :class:`Registry` (never the global default registry), which
drops the ``*_created`` series the Python client adds and Go exporters do not have. Reconcilers
register their own metrics on :attr:`Metrics.registry` and they are served on the same
``/metrics`` endpoint.

:class:`MetricsServer` serves them over plain HTTP, or, with ``metrics.secure``, as
controller-runtime's ``SecureServing`` with ``filters.WithAuthenticationAndAuthorization`` does:
over HTTPS (:mod:`controller.servingcert`) and only to clients whose bearer token may ``get``
``/metrics`` (:mod:`controller.metricsauth`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Generic, Protocol, TypeVar
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.exposition import MetricsHandler
from prometheus_client.metrics_core import Metric

from controller.httpserver import HttpServer
from controller.metricsauth import Verdict
from controller.servingcert import CertificateFiles, CertificateSource, SelfSigned
from controller.settings.loading import ConfigError
from controller.settings.runtime import MetricsSettings
from controller.threadcpu import ThreadCpuCollector
from controller.workqueue_metrics import (
    CounterMetric,
    GaugeMetric,
    HistogramMetric,
    SettableGaugeMetric,
)

# controller-runtime pkg/internal/controller/metrics/metrics.go
RECONCILE_TIME_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0,
    1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
)  # fmt: skip


def exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """Go ``prometheus.ExponentialBuckets``, computed the same way (repeated multiplication).

    Computing it like Go keeps the boundaries bit-identical: ``1e-8 * 10**3`` and
    ``1e-8 * 10 * 10 * 10`` differ in the last bit, and that shows in the ``le`` label.
    """
    buckets = []
    for _ in range(count):
        buckets.append(start)
        start *= factor
    return tuple(buckets)


# controller-runtime pkg/internal/metrics/workqueue.go: ExponentialBuckets(10e-9, 10, 12)
WORKQUEUE_DURATION_BUCKETS = exponential_buckets(10e-9, 10, 12)

MetricT = TypeVar("MetricT", Counter, Gauge, Histogram)

RECONCILE_RESULTS = ("success", "error", "requeue", "requeue_after")


class Registry(CollectorRegistry):
    """A collector registry that exports what a Go exporter would, with pre-collection hooks.

    ``prometheus_client`` adds a ``<name>_created`` sample to counters and histograms and
    prints ``HELP``/``TYPE`` for labelled metrics that have no series yet; Go exporters do
    neither, so both are dropped here (per registry, rather than through the process-wide
    ``disable_created_metrics()`` switch). Collect hooks refresh values that are computed on
    demand, such as the work queues' unfinished-work gauges.
    """

    _CREATED_TYPES = frozenset({"counter", "histogram", "summary", "gaugehistogram"})

    def __init__(self) -> None:
        super().__init__()
        self._hooks: list[Callable[[], None]] = []
        self._hooks_lock = threading.Lock()

    def add_collect_hook(self, hook: Callable[[], None]) -> None:
        with self._hooks_lock:
            self._hooks.append(hook)

    def collect(self) -> Iterable[Metric]:
        with self._hooks_lock:
            hooks = list(self._hooks)
        for hook in hooks:
            hook()
        for metric in super().collect():
            if metric.type in self._CREATED_TYPES:
                created = (metric.name + "_created", metric.name + "_gcreated")
                metric.samples = [s for s in metric.samples if s.name not in created]
            if metric.samples:  # like Go: a labelled metric without series is not exported
                yield metric


class Metrics:
    """Every runtime metric, registered on a dedicated :class:`Registry`."""

    def __init__(self, *, process_collector: bool = True) -> None:
        self.registry = Registry()
        r = self.registry

        # ---- controller-runtime reconcile metrics ----
        self.reconcile_total = Counter(
            "controller_runtime_reconcile_total",
            "Total number of reconciliations per controller",
            ["controller", "result"],
            registry=r,
        )
        self.reconcile_errors = Counter(
            "controller_runtime_reconcile_errors_total",
            "Total number of reconciliation errors per controller",
            ["controller"],
            registry=r,
        )
        self.terminal_reconcile_errors = Counter(
            "controller_runtime_terminal_reconcile_errors_total",
            "Total number of terminal reconciliation errors per controller",
            ["controller"],
            registry=r,
        )
        self.reconcile_panics = Counter(
            "controller_runtime_reconcile_panics_total",
            "Total number of reconciliation panics per controller",
            ["controller"],
            registry=r,
        )
        self.reconcile_timeouts = Counter(
            "controller_runtime_reconcile_timeouts_total",
            "Total number of reconciliation timeouts per controller",
            ["controller"],
            registry=r,
        )
        self.reconcile_time = Histogram(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            ["controller"],
            buckets=RECONCILE_TIME_BUCKETS,
            registry=r,
        )
        self.max_concurrent_reconciles = Gauge(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            ["controller"],
            registry=r,
        )
        self.active_workers = Gauge(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            ["controller"],
            registry=r,
        )

        # ---- workqueue metrics (controller-runtime's provider) ----
        self.workqueue_depth = Gauge(
            "workqueue_depth",
            "Current depth of workqueue",
            ["name", "controller", "priority"],
            registry=r,
        )
        self.workqueue_adds = Counter(
            "workqueue_adds_total",
            "Total number of adds handled by workqueue",
            ["name", "controller"],
            registry=r,
        )
        self.workqueue_queue_duration = Histogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            ["name", "controller"],
            buckets=WORKQUEUE_DURATION_BUCKETS,
            registry=r,
        )
        self.workqueue_work_duration = Histogram(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes.",
            ["name", "controller"],
            buckets=WORKQUEUE_DURATION_BUCKETS,
            registry=r,
        )
        self.workqueue_unfinished_work = Gauge(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't been observed by "
            "work_duration. Large values indicate stuck threads. One can deduce the number of stuck "
            "threads by observing the rate at which this increases.",
            ["name", "controller"],
            registry=r,
        )
        self.workqueue_longest_running_processor = Gauge(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running.",
            ["name", "controller"],
            registry=r,
        )
        self.workqueue_retries = Counter(
            "workqueue_retries_total",
            "Total number of retries handled by workqueue",
            ["name", "controller"],
            registry=r,
        )

        # ---- client and leader election ----
        self.rest_client_requests = Counter(
            "rest_client_requests_total",
            "Number of HTTP requests, partitioned by status code, method, and host.",
            ["code", "method", "host"],
            registry=r,
        )
        self.events_dropped = Counter(
            "controller_events_dropped_total",
            "Kubernetes Events not written, by why: queue_full (more were recorded than the writer "
            "keeps up with), write_failed (the API server refused or could not be reached), "
            "spam_filtered (one object emitted more than its burst).",
            ["reason"],
            registry=r,
        )
        for why in ("queue_full", "write_failed", "spam_filtered"):
            self.events_dropped.labels(why)
        self.leader_election_master_status = Gauge(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, "
            "1 indicates master. 'name' is the string used to identify the lease. Please make sure "
            "to group by name.",
            ["name"],
            registry=r,
        )

        if process_collector:
            ProcessCollector(registry=r)
            r.register(ThreadCpuCollector())

        self.workqueue_provider = PrometheusWorkqueueMetricsProvider(self)

    def init_controller(self, controller: str, workers: int) -> ControllerSeries:
        """Creates a controller's series with their initial values (controller-runtime ``initMetrics``)
        and returns those its workers update.

        controller-runtime creates the reconcile-time histogram lazily; it is created here too
        so that every series exists from the first scrape.
        """
        for result in RECONCILE_RESULTS:
            self.reconcile_total.labels(controller, result).inc(0)
        self.reconcile_errors.labels(controller).inc(0)
        self.terminal_reconcile_errors.labels(controller).inc(0)
        self.reconcile_panics.labels(controller).inc(0)
        self.reconcile_timeouts.labels(controller).inc(0)
        self.max_concurrent_reconciles.labels(controller).set(workers)
        self.active_workers.labels(controller).set(0)
        return ControllerSeries(
            reconcile_total={
                result: self.reconcile_total.labels(controller, result) for result in RECONCILE_RESULTS
            },
            reconcile_errors=self.reconcile_errors.labels(controller),
            terminal_reconcile_errors=self.terminal_reconcile_errors.labels(controller),
            reconcile_time=self.reconcile_time.labels(controller),
            active_workers=self.active_workers.labels(controller),
        )


class LabelledChildren(Generic[MetricT]):
    """A metric's children by their label values, each looked up with ``labels()`` once:
    prometheus_client validates the values and takes a lock on every ``labels()`` call, and the
    clients count every request. For metrics whose children are never removed."""

    def __init__(self, metric: MetricT) -> None:
        self._metric: MetricT = metric
        self._children: dict[tuple[str, ...], MetricT] = {}

    def __call__(self, *values: str) -> MetricT:
        child = self._children.get(values)
        if child is None:
            # Two threads may both get here: labels() hands both the same child.
            child = self._children[values] = self._metric.labels(*values)
        return child


@dataclass(frozen=True)
class ControllerSeries:
    """One controller's series, labelled once: prometheus_client's ``labels()`` validates its
    arguments and takes a lock on every call, a cost each reconcile would otherwise pay five
    times."""

    reconcile_total: Mapping[str, Counter]
    reconcile_errors: Counter
    terminal_reconcile_errors: Counter
    reconcile_time: Histogram
    active_workers: Gauge


class PrometheusWorkqueueMetricsProvider:
    """The work queues' :class:`~controller.workqueue_metrics.MetricsProvider` on :class:`Metrics`.

    Creates each queue's series at queue creation (so they exist before the first add), with
    ``name`` and ``controller`` both set to the queue name, as controller-runtime does.
    """

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def new_depth_metric(self, name: str) -> GaugeMetric:
        return self._m.workqueue_depth.labels(name, name, "")

    def new_adds_metric(self, name: str) -> CounterMetric:
        return self._m.workqueue_adds.labels(name, name)

    def new_latency_metric(self, name: str) -> HistogramMetric:
        return self._m.workqueue_queue_duration.labels(name, name)

    def new_work_duration_metric(self, name: str) -> HistogramMetric:
        return self._m.workqueue_work_duration.labels(name, name)

    def new_unfinished_work_seconds_metric(self, name: str) -> SettableGaugeMetric:
        return self._m.workqueue_unfinished_work.labels(name, name)

    def new_longest_running_processor_seconds_metric(self, name: str) -> SettableGaugeMetric:
        return self._m.workqueue_longest_running_processor.labels(name, name)

    def new_retries_metric(self, name: str) -> CounterMetric:
        return self._m.workqueue_retries.labels(name, name)

    def track_unfinished_work(self, name: str, update: Callable[[], None]) -> None:
        self._m.registry.add_collect_hook(update)


class RequestAuthorizer(Protocol):
    """Decides whether a request may be served (:class:`~controller.metricsauth.MetricsAuthorizer`)."""

    def check(self, authorization: str | None, verb: str, path: str) -> Verdict: ...


class MetricsServer:
    """Serves ``/metrics`` (Prometheus text format, or OpenMetrics when asked for) from a registry.

    With ``tls`` it speaks HTTPS; with ``authorizer`` a request is served only once the authorizer
    allows it, and answered with the authorizer's status and message otherwise.
    """

    # How long a client of the protected endpoint may take to send its request.
    REQUEST_TIMEOUT = 30.0

    def __init__(
        self,
        address: str,
        registry: CollectorRegistry,
        *,
        tls: CertificateSource | None = None,
        authorizer: RequestAuthorizer | None = None,
    ) -> None:
        handler: type[BaseHTTPRequestHandler] = MetricsHandler.factory(registry)
        if authorizer is not None:
            handler = _guarded(handler, authorizer, self.REQUEST_TIMEOUT)
        self._server = HttpServer("metrics", address, handler, tls=tls.context if tls else None)

    @property
    def port(self) -> int:
        return self._server.port

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()


def certificate_source(settings: MetricsSettings) -> CertificateSource | None:
    """The certificate of the HTTPS metrics endpoint (``metrics.secure``): the pair in
    ``metrics.certDir``, else a self-signed one; ``None`` when metrics are served over plain HTTP.

    Raises :class:`~controller.settings.loading.ConfigError` when the directory holds no usable pair.
    """
    if not settings.secure:
        return None
    if not settings.cert_dir:
        return SelfSigned()
    try:
        return CertificateFiles(settings.cert_dir)
    except ValueError as error:
        raise ConfigError("metrics.certDir", str(error)) from None


def _guarded(
    handler: type[BaseHTTPRequestHandler], authorizer: RequestAuthorizer, timeout: float
) -> type[BaseHTTPRequestHandler]:
    """``handler`` behind ``authorizer``: its ``do_GET`` runs only for allowed requests."""

    class Guarded(handler):  # type: ignore[valid-type,misc]
        def setup(self) -> None:
            self.timeout = timeout
            super().setup()

        def do_GET(self) -> None:
            verdict = authorizer.check(self.headers.get("Authorization"), "get", urlsplit(self.path).path)
            if verdict.allowed:
                super().do_GET()
                return
            body = f"{verdict.message}\n".encode()
            self.send_response(verdict.status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Guarded
