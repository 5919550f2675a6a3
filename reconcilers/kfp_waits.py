"""What a resource says while a KFP call fails and is retried: the same in every controller.

``KfpUnavailable`` when KFP did not answer or may recover by itself (429, 5xx);
``KfpRequestFailed`` for any other answer that does not refuse the request's content: the
operator's credentials (401) or permissions (403, multi-user KFP), an endpoint that is not KFP
(404, 405). The message is the error's own (KFP's message, naming what it refused), so an
unchanged cause gives an unchanged status: no write, no Event, and no reconcile set off by one;
the work queue's backoff paces the retries.
"""

from __future__ import annotations

from reconcilers.clients import KfpError

KFP_UNAVAILABLE, KFP_REQUEST_FAILED = "KfpUnavailable", "KfpRequestFailed"


def waiting_on_kfp(error: KfpError) -> tuple[str, str]:
    """The condition's reason and message."""
    reason = KFP_UNAVAILABLE if error.is_transient else KFP_REQUEST_FAILED
    return reason, f"{error}; retrying"
