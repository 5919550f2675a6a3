"""The reconcile contract, as controller-runtime's ``pkg/reconcile``.

A reconciler is any object with ``reconcile(key) -> Result``. The key names the object; the
request carries no event data, because reconciliation is level-based: the reconciler reads
the current state (from the informer cache) and drives the world towards it, whatever
sequence of changes led there. The runner calls it again whenever the object, or anything
mapped to it, changes.

How a reconcile ends decides what happens next (``controller.runner`` applies this):

* return ``Result()``: done; the key's failure history is forgotten.
* return ``Result(requeue_after=s)``: reconcile again in ``s`` seconds (polling, TTLs). Prefer
  this to shortening informer resyncs.
* raise :class:`TerminalError`: the error is logged and counted but **not** retried. Use it
  for failures that retrying cannot fix (an invalid spec), after recording why on the object
  (a condition or an Event). A later change to the object triggers a new reconcile anyway.
* raise anything else: the key is retried with per-item exponential backoff (5 ms doubling to
  1000 s) under the controller's overall retry budget. Transient API failures need no retry
  loop of their own (see ``controller.transport``: there are none inside a reconcile).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from controller.keys import ObjectKey


@dataclass(frozen=True)
class Result:
    """The outcome of a successful reconcile; ``requeue_after`` is in seconds.

    ``requeue`` is controller-runtime's deprecated ``Requeue`` flag (requeue with rate
    limiting, counted as ``result="requeue"``); ``requeue_after`` takes precedence.
    """

    requeue_after: float | None = None
    requeue: bool = False


class TerminalError(Exception):
    """A reconcile failure that must not be retried (controller-runtime ``TerminalError``)."""


class Reconciler(Protocol):
    """What a controller runs for each key taken from its queue."""

    def reconcile(self, key: ObjectKey) -> Result: ...
