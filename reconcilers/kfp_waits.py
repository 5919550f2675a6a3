"""What a resource says while a KFP call fails and is retried: the same in every controller.

``KfpUnavailable`` when KFP did not answer or may recover by itself (429, 5xx);
``KfpRequestFailed`` for any other answer that does not refuse the request's content: the
operator's credentials (401) or permissions (403, multi-user KFP), an endpoint that is not KFP
(404, 405). The message is KFP's own (naming what it refused), or for a call that got no answer
the kind of failure, so an unchanged cause gives an unchanged status: no write, no Event, and no
reconcile set off by one; the work queue's backoff paces the retries.
"""

from __future__ import annotations

from reconcilers.clients import KfpError

KFP_UNAVAILABLE, KFP_REQUEST_FAILED = "KfpUnavailable", "KfpRequestFailed"


def waiting_on_kfp(error: KfpError) -> tuple[str, str]:
    """The condition's reason and message."""
    reason = KFP_UNAVAILABLE if error.is_transient else KFP_REQUEST_FAILED
    if error.status is None:
        # Without an answer the error's text varies (a timeout says how long it waited): the
        # message names the kind of failure only, and the log line of the reconcile has the rest.
        return reason, f"KFP {error.operation}: {error.failure or 'no answer'}; retrying"
    return reason, f"{error}; retrying"
