"""Kubernetes API access: the only module of the runtime that talks to the API server.

Built on the official ``kubernetes`` client's ``ApiClient`` (authentication, TLS, kubeconfig
and in-cluster configuration, token refresh), used as a raw JSON transport: objects are plain
``dict``s addressed by path (:class:`~controller.resource.Resource`), for core types and
custom resources alike. :class:`Kube` offers what the reconcilers need: uncached reads, merge
patches of status and metadata (finalizers), deletes with preconditions, and Events.

How requests travel (client-side rate limit, ``rest_client_requests_total``, and the one retry
layer per call: none inside a reconcile) is ``controller.transport``; watch streams are
``controller.watchstream`` and the informers' lister-watcher ``controller.listwatch``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException

from controller import jsoncodec
from controller.keys import ObjectKey
from controller.metrics import Metrics
from controller.ratelimit import TokenBucket
from controller.resource import EVENTS, Resource
from controller.store import Obj
from controller.transport import InstrumentedRESTClient, retried, retries_enabled, retrying
from controller.watchstream import KubeWatchStream

# Enough connections for every watch (each holds one for minutes), every worker, leader
# election and events; beyond this urllib3 opens throwaway connections and warns.
CONNECTION_POOL_SIZE = 64
MERGE_PATCH = "application/merge-patch+json"
IN_CLUSTER_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _user_agent() -> str:
    try:
        return f"kfp-operator/{version('kfp-operator')}"
    except PackageNotFoundError:
        return "kfp-operator"


# ---- configuration --------------------------------------------------------------------------


def load_configuration(kubeconfig: str | os.PathLike[str] | None = None) -> Configuration:
    """Returns a client configuration, looked up as controller-runtime's ``GetConfig`` does.

    Order: the ``kubeconfig`` argument (the ``--kubeconfig`` flag), the ``KUBECONFIG``
    environment variable, the in-cluster service account, then ``~/.kube/config``.
    """
    configuration = Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path:
        kube_config.load_kube_config(
            config_file=str(path), client_configuration=configuration, persist_config=False
        )
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        kube_config.load_incluster_config(client_configuration=configuration)
    else:
        kube_config.load_kube_config(client_configuration=configuration, persist_config=False)
    return configuration


def in_cluster_namespace() -> str | None:
    """The namespace of the pod's service account, or ``None`` outside a cluster."""
    try:
        return IN_CLUSTER_NAMESPACE_FILE.read_text().strip() or None
    except OSError:
        return None


# ---- errors ---------------------------------------------------------------------------------


def is_not_found(err: BaseException) -> bool:
    return isinstance(err, ApiException) and err.status == 404


def _already_exists(err: ApiException) -> bool:
    return err.status == 409 and _status_reason(err) == "AlreadyExists"


def _status_reason(err: ApiException) -> str:
    """The ``reason`` of the Status object an error response carries."""
    try:
        reason = json.loads(err.body or "{}").get("reason")
    except (ValueError, AttributeError):
        return ""
    return reason if isinstance(reason, str) else ""


# ---- the client -------------------------------------------------------------------------------


class Kube:
    """The operator's Kubernetes client: raw JSON by path, instrumented, rate limited.

    ``api_client`` is the underlying instrumented ``kubernetes.client.ApiClient``; typed API
    classes built on it (``CoreV1Api(kube.api_client)``) share the metrics and the limiter.
    """

    def __init__(
        self,
        configuration: Configuration,
        metrics: Metrics,
        *,
        qps: float = 0.0,
        burst: int = 30,
        request_timeout: float = 30.0,
        use_libcurl: bool = True,
    ) -> None:
        configuration.retries = False
        if (
            not configuration.connection_pool_maxsize
            or configuration.connection_pool_maxsize < CONNECTION_POOL_SIZE
        ):
            configuration.connection_pool_maxsize = CONNECTION_POOL_SIZE
        self.configuration = configuration
        self.metrics = metrics
        self.limiter = TokenBucket(qps, burst)
        self.request_timeout = request_timeout
        self._use_libcurl = use_libcurl
        self.api_client = ApiClient(configuration)
        self._rest = InstrumentedRESTClient(configuration, metrics, self.limiter, use_libcurl=use_libcurl)
        self.api_client.rest_client = self._rest
        self.api_client.user_agent = _user_agent()

    def with_own_limiter(self) -> Kube:
        """Another client on this one's configuration and metrics, with a token bucket of its
        own at the same ``qps`` and ``burst``; the caller closes it.

        controller-runtime gives its event recorder, its leader election and its metrics
        endpoint's authentication clients apart from the manager's, each with its own rate
        limiter: under a client-side limit, Events, Lease renewals and the reviews of scrapes do
        not queue behind a burst of reconciles, nor take their requests.
        """
        return Kube(
            self.configuration,
            self.metrics,
            qps=self.limiter.qps,
            burst=self.limiter.burst,
            request_timeout=self.request_timeout,
            use_libcurl=self._use_libcurl,
        )

    def close(self) -> None:
        self.api_client.close()
        if self._rest.curl is not None:
            self._rest.curl.close()

    # ---- raw requests ----

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] = (),
        body: Any = None,
        content_type: str | None = None,
        timeout: float | None = None,
        retry: bool = True,
        repeat_safe: bool = False,
    ) -> Obj:
        """Sends one request and returns the decoded JSON response.

        Raises :class:`kubernetes.client.ApiException` for a non-2xx status (with ``status``,
        ``reason``, ``body`` and ``headers``) and urllib3 errors for transport failures.
        Transient failures are retried (see the module docstring) unless ``retry=False`` or
        the call is made inside :func:`retries_disabled`. ``repeat_safe`` vouches that a POST
        sent twice does no harm (``controller.libcurl``).
        """
        data = self._exchange(method, path, query, body, content_type, timeout, retry, repeat_safe)
        return jsoncodec.loads(data) if data else {}

    def _exchange(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, Any]],
        body: Any,
        content_type: str | None,
        timeout: float | None,
        retry: bool,
        repeat_safe: bool = False,
    ) -> bytes:
        """One request under the retry policy; returns the response body as it came."""
        method = method.upper()

        def once() -> bytes:
            headers, data, url = self._prepare(method, path, query, body, content_type)
            response = self._rest.exchange(
                method, url, headers, data, timeout or self.request_timeout, repeat_safe=repeat_safe
            )
            data = response.read()
            if not 200 <= response.status <= 299:
                raise ApiException.from_response(
                    http_resp=response, body=data.decode("utf-8", "replace"), data=None
                )
            return data

        if not retry or not retries_enabled():
            return once()
        return retried(once, lambda spent: retrying(method, path, spent))

    def _prepare(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, Any]],
        body: Any,
        content_type: str | None,
    ) -> tuple[dict[str, str], bytes | None, str]:
        """The headers, encoded body and URL of one request."""
        # The client's own request path (param_serialize, call_api) walks every body to
        # sanitise model objects; the operator only sends plain JSON values, so the body is
        # encoded once here and the request goes straight to the instrumented REST layer.
        headers = {"Accept": "application/json", **self.api_client.default_headers}
        data = None
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
            data = jsoncodec.dumps(body)
        # Reads the token each time: the configuration refreshes it (exec plugins, the
        # projected service account token).
        self.api_client.update_params_for_auth(headers, [], ["BearerToken"], path, method, None)
        url = self.configuration.host + path
        if query:
            url += "?" + self.api_client.parameters_to_url_query(list(query), None)
        return headers, data, url

    # ---- reads ----

    def get(self, resource: Resource, key: ObjectKey, *, subresource: str = "") -> Obj:
        """GETs one object from the API server (not from a cache). Raises 404 if absent."""
        return self.request("GET", resource.path(key.namespace or None, key.name, subresource))

    def get_or_none(self, resource: Resource, key: ObjectKey) -> Obj | None:
        try:
            return self.get(resource, key)
        except ApiException as err:
            if is_not_found(err):
                return None
            raise

    def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> list[Obj]:
        """Lists every object (following ``continue`` tokens) with a consistent read."""
        items: list[Obj] = []
        token: str | None = None
        while True:
            page = self.list_page(
                resource,
                namespace,
                limit=page_size,
                continue_token=token,
                label_selector=label_selector,
                field_selector=field_selector,
            )
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or None
            if token is None:
                return items

    def list_page(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        limit: int = 500,
        continue_token: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        retry: bool = True,
        decode: jsoncodec.Decode | None = None,
    ) -> jsoncodec.ListDocument:
        """One page of a list; the arguments are the API's list options.

        The page is decoded (by ``decode``, if given) when more than its ``metadata`` is read
        (see :class:`~controller.jsoncodec.ListDocument`).
        """
        query: list[tuple[str, Any]] = [("limit", limit)]
        if continue_token:
            query.append(("continue", continue_token))
        if resource_version:
            query.append(("resourceVersion", resource_version))
        if resource_version_match:
            query.append(("resourceVersionMatch", resource_version_match))
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        data = self._exchange("GET", resource.path(namespace), query, None, None, None, retry)
        return jsoncodec.ListDocument(data, decode)

    def watch(
        self,
        resource: Resource,
        namespace: str | None,
        *,
        resource_version: str,
        timeout_seconds: int,
        allow_bookmarks: bool = True,
        decode: jsoncodec.Decode | None = None,
    ) -> KubeWatchStream:
        """Starts a watch and returns its event stream (never retried), each event decoded by
        ``decode`` if given.

        The read timeout is the server-side timeout plus a margin: the server ends the watch
        by then, so a longer silence means the connection is dead.
        """
        query: list[tuple[str, Any]] = [
            ("watch", "true"),
            ("timeoutSeconds", timeout_seconds),
        ]
        if allow_bookmarks:
            query.append(("allowWatchBookmarks", "true"))
        if resource_version:
            query.append(("resourceVersion", resource_version))
        headers, _, url = self._prepare("GET", resource.path(namespace), query, None, None)
        response = self._rest.send("GET", url, headers, None, (self.request_timeout, timeout_seconds + 30))
        if not 200 <= response.status <= 299:
            data = response.read()
            raise ApiException.from_response(
                http_resp=response, body=data.decode("utf-8", "replace"), data=None
            )
        return KubeWatchStream(response.response, decode)

    # ---- writes ----

    def create(self, resource: Resource, obj: Mapping[str, Any], *, namespace: str | None = None) -> Obj:
        """POSTs a new object; the namespace defaults to ``obj.metadata.namespace``."""
        ns = namespace or (obj.get("metadata") or {}).get("namespace")
        return self.request("POST", resource.path(ns), body=obj)

    def create_if_absent(self, resource: Resource, obj: Mapping[str, Any]) -> Obj | None:
        """Creates ``obj``; returns None if an object of that name exists already (AlreadyExists).

        With a deterministic name this makes a create safe to retry: the second attempt finds
        what the first made.
        """
        try:
            return self.create(resource, obj)
        except ApiException as err:
            if _already_exists(err):
                return None
            raise

    def replace(self, resource: Resource, obj: Mapping[str, Any], *, subresource: str = "") -> Obj:
        """PUTs ``obj``; with ``metadata.resourceVersion`` set it is conditional (409 on conflict)."""
        metadata = obj.get("metadata") or {}
        return self.request(
            "PUT", resource.path(metadata.get("namespace"), metadata["name"], subresource), body=obj
        )

    def patch(
        self, resource: Resource, key: ObjectKey, patch: Mapping[str, Any], *, subresource: str = ""
    ) -> Obj:
        """Applies a JSON merge patch (RFC 7386): ``None`` values delete fields, lists are replaced."""
        return self.request(
            "PATCH",
            resource.path(key.namespace or None, key.name, subresource),
            body=patch,
            content_type=MERGE_PATCH,
        )

    def patch_status(
        self,
        resource: Resource,
        key: ObjectKey,
        status: Mapping[str, Any],
        *,
        resource_version: str | None = None,
    ) -> Obj:
        """Merge-patches the ``/status`` subresource with ``{"status": status}``.

        A merge patch never conflicts, so concurrent writers of different fields both win.
        Pass ``resource_version`` to make the patch conditional: it then fails with 409 if the
        object changed since that version was read.
        """
        body: dict[str, Any] = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        return self.patch(resource, key, body, subresource="status")

    def patch_metadata(
        self,
        resource: Resource,
        key: ObjectKey,
        metadata: Mapping[str, Any],
        *,
        resource_version: str | None = None,
    ) -> Obj:
        """Merge-patches ``metadata`` (labels, annotations, finalizers), conditionally if asked."""
        patch = dict(metadata)
        if resource_version:
            patch["resourceVersion"] = resource_version
        return self.patch(resource, key, {"metadata": patch})

    def add_finalizer(self, resource: Resource, obj: Mapping[str, Any], finalizer: str) -> Obj | None:
        """Adds ``finalizer`` to ``obj`` unless present; returns the updated object or ``None``.

        The patch replaces the whole list, so it is conditional on the ``resourceVersion`` of
        ``obj``: a concurrent change makes it fail with 409 instead of dropping someone
        else's finalizer. ``obj`` itself is not modified.
        """
        metadata = obj.get("metadata") or {}
        finalizers = list(metadata.get("finalizers") or [])
        if finalizer in finalizers:
            return None
        return self.patch_metadata(
            resource,
            ObjectKey(metadata.get("namespace") or "", metadata["name"]),
            {"finalizers": [*finalizers, finalizer]},
            resource_version=metadata.get("resourceVersion"),
        )

    def remove_finalizer(self, resource: Resource, obj: Mapping[str, Any], finalizer: str) -> Obj | None:
        """Removes ``finalizer`` from ``obj`` if present (conditionally, as :meth:`add_finalizer`)."""
        metadata = obj.get("metadata") or {}
        finalizers = list(metadata.get("finalizers") or [])
        if finalizer not in finalizers:
            return None
        return self.patch_metadata(
            resource,
            ObjectKey(metadata.get("namespace") or "", metadata["name"]),
            {"finalizers": [f for f in finalizers if f != finalizer]},
            resource_version=metadata.get("resourceVersion"),
        )

    def delete(
        self,
        resource: Resource,
        key: ObjectKey,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation_policy: str | None = None,
    ) -> bool:
        """Deletes an object; returns ``False`` if it did not exist.

        ``uid`` (and/or ``resource_version``) become delete preconditions: if the object was
        replaced by a new one with the same name (or changed), the server refuses with 409
        and nothing is deleted.
        """
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        preconditions = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        if preconditions:
            options["preconditions"] = preconditions
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        try:
            self.request("DELETE", resource.path(key.namespace or None, key.name), body=options)
        except ApiException as err:
            if is_not_found(err):
                return False
            raise
        return True

    def create_event(self, event: Mapping[str, Any]) -> Obj:
        """Creates a core/v1 Event (see ``controller.events`` for the recorder).

        An Event named by its sender (the recorder's names are unique) may be sent twice: it
        goes over libcurl, whose one repeat (a kept-alive connection found dead) can only find
        the Event created, and that 409 AlreadyExists means created.
        """
        metadata = event.get("metadata") or {}
        named = bool(metadata.get("name"))
        try:
            return self.request("POST", EVENTS.path(metadata.get("namespace")), body=event, repeat_safe=named)
        except ApiException as err:
            if _already_exists(err):
                return dict(event)
            raise
