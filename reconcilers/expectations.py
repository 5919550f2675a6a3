"""Not acting twice on a cache that has not caught up with our own write.

After a reconciler writes an object, its informer cache shows the old version
until the watch delivers the new one; a reconcile in between (a timer, or an
event for a related object) would repeat the step just taken: submit-side
lookups, a second "Submitted" Event, a redelivered completion event. client-go
controllers solve this with expectations; this is the same idea for updates:
remember the resourceVersions we acted on (including intermediate ones our own
writes produced), and skip reconciles of exactly those versions. The watch
event for our write, which carries a new version, triggers the next real
reconcile. Entries expire, so a write that never shows up in the
cache cannot silence an object for long, and expired entries are dropped as new ones come:
an object that is never reconciled again (an event filter leaves it out) leaves nothing behind.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from itertools import islice
from typing import Any

from controller.clock import Clock
from controller.keys import ObjectKey

EXPIRY_SECONDS = 60.0
# Expired entries dropped at most per write: more than one, so they never pile up.
_PRUNED_PER_WRITE = 4


class ActedOnVersions:
    def __init__(self, clock: Clock, expiry: float = EXPIRY_SECONDS) -> None:
        self._clock = clock
        self._expiry = expiry
        self._lock = threading.Lock()
        self._versions: dict[ObjectKey, tuple[frozenset[str], float]] = {}

    def acted_on(self, key: ObjectKey, *objs: Mapping[str, Any] | None) -> None:
        """Records that a write superseded these versions of the object."""
        versions = frozenset(_version(o) for o in objs if o is not None)
        now = self._clock.monotonic()
        with self._lock:
            # Entries stay in the order they expire in (each is moved to the end when renewed),
            # so the expired ones are at the front.
            self._versions.pop(key, None)
            self._versions[key] = (versions, now + self._expiry)
            for oldest, (_, expires) in list(islice(self._versions.items(), _PRUNED_PER_WRITE)):
                if expires > now:
                    break
                del self._versions[oldest]

    def __len__(self) -> int:
        with self._lock:
            return len(self._versions)

    def is_stale(self, key: ObjectKey, obj: Mapping[str, Any]) -> bool:
        """Whether ``obj`` is a version a write already superseded (the cache is behind)."""
        with self._lock:
            entry = self._versions.get(key)
            if entry is None:
                return False
            if _version(obj) in entry[0] and self._clock.monotonic() < entry[1]:
                return True
            del self._versions[key]
            return False

    def forget(self, key: ObjectKey) -> None:
        with self._lock:
            self._versions.pop(key, None)


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))
