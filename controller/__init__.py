"""A generic controller runtime: informers, work queues, workers, leader election, metrics and health.

client-go's and controller-runtime's semantics carried into Python, on threads and the official
``kubernetes`` client. It knows nothing of the resources it is used for (an import-linter
contract in ``pyproject.toml`` keeps it so). One module per responsibility; what reconcilers use:

* ``controller.reconcile`` -- ``Result(requeue_after=...)``, ``TerminalError``, the ``Reconciler``
  protocol (``reconcile(key) -> Result``).
* ``controller.keys`` -- ``ObjectKey(namespace, name)``, ``key_func(obj)``, tombstones.
* ``controller.resource`` -- ``Resource`` descriptors addressed by path.
* ``controller.store`` -- the informer cache (read-only objects, pluggable indexes); what it
  keeps of each object: ``controller.transform``.
* ``controller.clock`` -- ``Clock``, ``RealClock``, ``FakeClock`` for deterministic tests.

What a program wires up:

* ``controller.manager`` -- ``Manager``: shared informers, controllers, runnables, metrics
  registry, event recorder, leader election, probes, shutdown.
* ``controller.runner`` -- ``Controller`` and ``Watch`` (secondary sources via a mapping).
* ``controller.kube`` -- ``Kube``: uncached get, merge-patch of status and metadata, finalizers,
  delete with preconditions, Events; instrumented, rate limited, retried outside reconciles.
* ``controller.events`` -- ``EventRecorder`` (aggregates repeats).
* ``controller.settings`` -- declaring settings once for the file, flags, environment and docs,
  and the runtime's own settings (``RuntimeSettings``).

Machinery: ``workqueue`` (+ ``workqueue_metrics``, ``ratelimit``), ``reflector``, ``informer``,
``listwatch`` and ``watchstream`` (list and watch by path), ``transport`` (rate limit, request
metrics, retry policy), ``leader``, ``metrics``, ``health`` (+ ``httpserver``), ``logs``.
"""
