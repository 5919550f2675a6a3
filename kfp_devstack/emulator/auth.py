"""Who is calling, in multi-user mode (docs/emulator.md §8).

The real server tries the ``kubeflow-userid`` header first, then a bearer token
checked with a TokenReview. The emulator accepts the header as is and a bearer token
if it is one of the configured tokens or a line of the token file (re-read on every
call, so a test can rotate tokens); anything else is a 401.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from kfp_devstack.emulator import errors
from kfp_devstack.emulator.errors import ApiError

USERID_HEADER = "kubeflow-userid"


class Authenticator:
    def __init__(self, tokens: Iterable[str], token_file: Path | None) -> None:
        self._tokens = frozenset(tokens)
        self._token_file = token_file

    def check(self, headers: Mapping[str, str]) -> None:
        """Raises a 401 ApiError unless the request carries an accepted identity."""
        user = headers.get(USERID_HEADER, "").strip()
        if user:
            return
        authorization = headers.get("authorization", "")
        if not authorization:
            raise errors.unauthenticated("Request header error: there is no user identity header.").wrap(
                "Failed to authorize the request"
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.unauthenticated(
                "Request header error: the authorization header is not a bearer token."
            ).wrap("Failed to authorize the request")
        if token.strip() not in self._accepted_tokens():
            raise ApiError(
                errors.Code.UNAUTHENTICATED,
                "Failed to authorize the request: Failed to authenticate token review: "
                "Unauthenticated error: the token is not authenticated",
                "the token is not authenticated",
            )

    def _accepted_tokens(self) -> frozenset[str]:
        if self._token_file is None:
            return self._tokens
        try:
            lines = self._token_file.read_text().splitlines()
        except OSError:
            return self._tokens
        return self._tokens | {line.strip() for line in lines if line.strip()}
