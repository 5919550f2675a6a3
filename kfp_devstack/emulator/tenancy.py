"""Single-user and multi-user mode (docs/emulator.md §8)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tenancy:
    multi_user: bool

    def namespace(self, requested: str) -> str:
        """The namespace the server uses: in single-user mode every namespace argument becomes ""."""
        return requested if self.multi_user else ""

    @property
    def default_service_account(self) -> str:
        return "default-editor" if self.multi_user else "pipeline-runner"
