"""The controller runtime: informers, work queues, workers, leader election, metrics and health.

client-go's and controller-runtime's semantics carried into Python, on threads and the official
``kubernetes`` client. One module per responsibility; what reconcilers use:

* ``controller.reconcile`` -- ``Result(requeue_after=...)``, ``TerminalError``, the ``Reconciler``
  protocol (``reconcile(key) -> Result``).
* ``controller.keys`` -- ``ObjectKey(namespace, name)``, ``key_func(obj)``, tombstones.
* ``controller.resource`` -- ``Resource`` descriptors (``RUNS``, ``RUN_CONFIGURATIONS``, ...).
* ``controller.store`` -- the informer cache (read-only objects, pluggable indexes).
* ``controller.kube`` -- ``Kube``: uncached get, merge-patch of status and metadata, finalizers,
  delete with preconditions, Events; instrumented, rate limited, retried outside reconciles.
* ``controller.events`` -- ``EventRecorder`` (aggregates repeats).
* ``controller.runner`` -- ``Controller`` and ``Watch`` (secondary sources via a mapping).
* ``controller.manager`` -- ``Manager``: shared informers, controllers, runnables, metrics
  registry, event recorder, leader election, probes, shutdown.
* ``kfp_operator.wiring`` -- ``add_controllers(mgr)``, where the operator's controllers are
  registered; ``kfp_operator.__main__`` is the ``kfp-operator`` entry point.
* ``controller.config`` -- the configuration dataclasses and their key list.
* ``controller.clock`` -- ``Clock``, ``RealClock``, ``FakeClock`` for deterministic tests.

Machinery: ``workqueue`` (+ ``workqueue_metrics``, ``ratelimit``), ``reflector``, ``informer``,
``transport`` (rate limit, request metrics, retry policy), ``kubewatch``, ``leader``,
``metrics``, ``health`` (+ ``httpserver``), ``logs``, ``configvalues``.
"""
