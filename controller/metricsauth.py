"""Who may scrape the metrics: controller-runtime's ``filters.WithAuthenticationAndAuthorization``.

Every request must carry a bearer token. The API server says whose token it is (a TokenReview)
and whether that identity may ``get`` the request's path as a non-resource URL (a
SubjectAccessReview), which a ClusterRole with ``nonResourceURLs: ["/metrics"]`` and
``verbs: ["get"]`` grants (kubebuilder's ``metrics-reader``). The answers are controller-runtime's:

* 401 ``Unauthorized`` without a bearer token, or for a token the API server does not accept;
* 403 ``Authorization denied for user <name>`` for an identity that may not read the path;
* 500 when the API server could not be asked (nothing is cached then, so the next scrape asks again).

Both reviews are cached for :data:`CACHE_TTL` (a minute), authentication results by a hash of the
token and authorization results by identity and request, so Prometheus costs at most one
TokenReview and one SubjectAccessReview per token per minute however often it scrapes; concurrent
scrapes with the same token wait for one review rather than each making their own. The operator
needs ``create`` on ``tokenreviews.authentication.k8s.io`` and
``subjectaccessreviews.authorization.k8s.io`` for this.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import structlog
from cachetools import TTLCache

from controller.clock import Clock, RealClock

log = structlog.get_logger("controller.metricsauth")

TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"  # noqa: S105 - a path, not a secret
SUBJECT_ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
CACHE_TTL = 60.0
CACHE_SIZE = 4096  # distinct tokens (and identities) remembered at once; the oldest go first
REVIEW_TIMEOUT = 10.0  # controller-runtime's TokenAccessReviewTimeout


class ReviewClient(Protocol):
    """What the reviews need of the Kubernetes client (``controller.kube.Kube`` is one)."""

    def request(self, method: str, path: str, *, body: Any = ..., timeout: float | None = ...) -> Any: ...


@dataclass(frozen=True)
class User:
    """An identity as a TokenReview reports it."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def from_review(cls, user: Mapping[str, Any]) -> User:
        extra = user.get("extra") or {}
        return cls(
            name=user.get("username", ""),
            uid=user.get("uid", ""),
            groups=tuple(user.get("groups") or ()),
            extra=tuple(sorted((key, tuple(values)) for key, values in extra.items())),
        )


@dataclass(frozen=True)
class Verdict:
    """The answer to a request: ``status`` 200 lets it through, anything else is sent back."""

    status: int
    message: str = ""

    @property
    def allowed(self) -> bool:
        return self.status == 200


ALLOWED = Verdict(200)
UNAUTHORIZED = Verdict(401, "Unauthorized")


class ReviewError(Exception):
    """The API server could not be asked, or answered with an error."""


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ReviewCache(Generic[K, V]):
    """Review results for ``ttl`` seconds, one review at a time per key."""

    def __init__(self, ttl: float, clock: Clock, size: int = CACHE_SIZE) -> None:
        self._results: TTLCache[K, V] = TTLCache(maxsize=size, ttl=ttl, timer=clock.monotonic)
        self._lock = threading.Lock()
        self._in_flight: dict[K, threading.Lock] = {}

    def get(self, key: K, review: Callable[[], V]) -> V:
        """The cached result for ``key``, or ``review()``'s, which is cached (unless it raises)."""
        with self._lock:
            if key in self._results:
                return self._results[key]
            key_lock = self._in_flight.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._results:  # another request reviewed it while this one waited
                    return self._results[key]
            try:
                result = review()
            except BaseException:
                with self._lock:
                    self._in_flight.pop(key, None)
                raise
            with self._lock:
                self._results[key] = result
                self._in_flight.pop(key, None)
            return result


class MetricsAuthorizer:
    """Decides whether a request to the metrics endpoint may be served (see the module docstring)."""

    def __init__(self, client: ReviewClient, *, clock: Clock | None = None, ttl: float = CACHE_TTL) -> None:
        self._client = client
        clock = clock or RealClock()
        self._authentications: ReviewCache[str, User | None] = ReviewCache(ttl, clock)
        self._authorizations: ReviewCache[tuple[User, str, str], tuple[bool, str]] = ReviewCache(ttl, clock)

    def check(self, authorization: str | None, verb: str, path: str) -> Verdict:
        """The verdict on a request with this ``Authorization`` header, method (lower case) and path."""
        token = bearer_token(authorization)
        if token is None:
            return UNAUTHORIZED
        digest = hashlib.sha256(token.encode()).hexdigest()  # the cache never holds the token itself
        try:
            user = self._authentications.get(digest, lambda: self._authenticate(token))
        except ReviewError as error:
            log.error("metrics request: authentication failed", error=str(error))
            return Verdict(500, "Authentication failed")
        if user is None:
            return UNAUTHORIZED
        try:
            allowed, reason = self._authorizations.get(
                (user, verb, path), lambda: self._authorize(user, verb, path)
            )
        except ReviewError as error:
            log.error("metrics request: authorization failed", user=user.name, error=str(error))
            return Verdict(500, f"Authorization for user {user.name} failed")
        if not allowed:
            log.debug("metrics request denied", user=user.name, verb=verb, path=path, reason=reason)
            return Verdict(403, f"Authorization denied for user {user.name}")
        return ALLOWED

    def _authenticate(self, token: str) -> User | None:
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        status = self._review(TOKEN_REVIEWS, review)
        if not status.get("authenticated"):
            return None
        return User.from_review(status.get("user") or {})

    def _authorize(self, user: User, verb: str, path: str) -> tuple[bool, str]:
        spec: dict[str, Any] = {
            "user": user.name,
            "groups": list(user.groups),
            "nonResourceAttributes": {"path": path, "verb": verb},
        }
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = {key: list(values) for key, values in user.extra}
        status = self._review(
            SUBJECT_ACCESS_REVIEWS,
            {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec},
        )
        if status.get("evaluationError") and not status.get("allowed"):
            log.debug("subject access review", evaluation_error=status["evaluationError"])
        return bool(status.get("allowed")) and not status.get("denied"), str(status.get("reason", ""))

    def _review(self, path: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        try:
            response = self._client.request("POST", path, body=body, timeout=REVIEW_TIMEOUT)
        except Exception as error:  # any failure to get an answer is a 500, never an allow
            raise ReviewError(f"{type(error).__name__}: {error}") from None
        status = response.get("status") if isinstance(response, Mapping) else None
        return status if isinstance(status, Mapping) else {}


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (the scheme in any case), else None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token
