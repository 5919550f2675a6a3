"""Faults the emulator can inject into its KFP API, and the registry that applies them.

A fault matches a method (or ``*``) and a path, given either as a route template
(``/apis/v2beta1/runs/{run_id}``) or as an exact request path, and applies to the
next ``times`` matching calls (``None``: until cleared):

* ``error``: answer ``status`` with ``body`` (default: the body the real server sends
  for that status) without handling the call;
* ``latency``: wait ``seconds`` before handling the call;
* ``drop_response``: handle the call (a create commits) but answer nothing: close the
  connection with a TCP reset (``seconds`` = 0) or hold it silently for ``seconds``
  first, so the client sees a reset or its own timeout.

:class:`Fault` is shared with the control client and depends on nothing else here.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, replace
from typing import Any, Literal

FaultKind = Literal["error", "latency", "drop_response"]
_KINDS = ("error", "latency", "drop_response")


class FaultError(ValueError):
    """A fault document is malformed."""


@dataclass(frozen=True)
class Fault:
    method: str
    path: str
    kind: FaultKind
    status: int = 500
    body: Any = None
    seconds: float = 0.0
    times: int | None = 1

    @classmethod
    def error(cls, method: str, path: str, status: int, *, body: Any = None, times: int | None = 1) -> Fault:
        return cls(method=method, path=path, kind="error", status=status, body=body, times=times)

    @classmethod
    def latency(cls, method: str, path: str, seconds: float, *, times: int | None = None) -> Fault:
        return cls(method=method, path=path, kind="latency", seconds=seconds, times=times)

    @classmethod
    def drop_response(
        cls, method: str, path: str, *, hold_seconds: float = 0.0, times: int | None = 1
    ) -> Fault:
        return cls(method=method, path=path, kind="drop_response", seconds=hold_seconds, times=times)

    def matches(self, method: str, path: str, template: str | None) -> bool:
        return self.method in ("*", method) and self.path in (path, template)

    def to_json(self) -> dict[str, Any]:
        data = {
            "method": self.method,
            "path": self.path,
            "kind": self.kind,
            "status": self.status,
            "seconds": self.seconds,
            "times": self.times,
        }
        if self.body is not None:
            data["body"] = self.body
        return data

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        if not isinstance(data, dict):
            raise FaultError("a fault must be an object")
        unknown = sorted(set(data) - {"method", "path", "kind", "status", "body", "seconds", "times"})
        if unknown:
            raise FaultError(f"fault has unknown field(s) {', '.join(unknown)}")
        method, path, kind = data.get("method"), data.get("path"), data.get("kind")
        if not isinstance(method, str) or not method:
            raise FaultError("fault.method must be an HTTP method or *")
        if not isinstance(path, str) or not path.startswith("/"):
            raise FaultError("fault.path must be a route template or a path")
        if kind not in _KINDS:
            raise FaultError(f"fault.kind must be one of {', '.join(_KINDS)}")
        status = data.get("status", 500)
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise FaultError("fault.status must be an HTTP status code")
        seconds = data.get("seconds", 0.0)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise FaultError("fault.seconds must be a non-negative number")
        times = data.get("times", 1)
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
            raise FaultError("fault.times must be a positive integer or null")
        return cls(
            method=method.upper(),
            path=path,
            kind=kind,
            status=status,
            body=data.get("body"),
            seconds=float(seconds),
            times=times,
        )


class FaultBook:
    """The faults in force; thread-safe, since every HTTP handler thread consults it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, Fault] = {}
        self._ids = itertools.count(1)

    def add(self, fault: Fault) -> str:
        with self._lock:
            fault_id = str(next(self._ids))
            self._faults[fault_id] = fault
            return fault_id

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> dict[str, Fault]:
        with self._lock:
            return dict(self._faults)

    def take(self, method: str, path: str, template: str | None) -> list[Fault]:
        """The faults that apply to this call; each use counts against its ``times``."""
        taken: list[Fault] = []
        with self._lock:
            for fault_id, fault in list(self._faults.items()):
                if not fault.matches(method, path, template):
                    continue
                taken.append(fault)
                if fault.times is not None:
                    if fault.times <= 1:
                        del self._faults[fault_id]
                    else:
                        self._faults[fault_id] = replace(fault, times=fault.times - 1)
        return taken
