"""How an emulator is set up: where it listens, where it keeps state, how it behaves by default."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class EmulatorConfig:
    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 0  # KFP HTTP API; 0 picks a free port
    mlmd_port: int = 0  # MLMD gRPC service; 0 picks a free port
    multi_user: bool = False
    accepted_tokens: frozenset[str] = field(default_factory=frozenset)
    token_file: Path | None = None  # one accepted bearer token per line, re-read on every call
    pending_seconds: float = 0.5  # how long a run stays PENDING unless scripted otherwise
    task_seconds: float = 0.5  # how long a task runs unless scripted otherwise
    cancel_seconds: float = 0.2  # how long a terminated run stays CANCELING
    pipeline_root: str | None = None  # default: <state_dir>/pipeline-root
    # Real-backend mode (docs/emulator.md §15): a real KFP API server serves the KFP API behind
    # this emulator, and the run engine drives its Workflows on the cluster of this kubeconfig.
    real_kfp_url: str | None = None
    kubeconfig: Path | None = None
    kfp_namespace: str = "kubeflow"  # where the real server's Workflows are (a profile's, multi-user)
    # A multi-user real server: who the driver reads it as (its kubeflow-userid header).
    real_kfp_user: str = ""
    # TLS: with a certificate and key, the KFP API and ML Metadata are served over TLS only;
    # with a client CA as well, clients must present a certificate it signed (mutual TLS).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None

    def __post_init__(self) -> None:
        if not _is_loopback(self.host):
            raise ValueError(f"the emulator only listens on loopback addresses, not {self.host!r}")
        for name in ("pending_seconds", "task_seconds", "cancel_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        object.__setattr__(self, "state_dir", Path(self.state_dir).resolve())
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both a certificate and its key")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("a client CA needs TLS (a certificate and key)")
        if self.real_kfp_url is not None:
            if self.kubeconfig is None:
                raise ValueError("a real KFP backend needs the kubeconfig of its cluster")
            if self.multi_user:
                raise ValueError("a real KFP backend is single-user here")

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def real_backend(self) -> bool:
        return self.real_kfp_url is not None

    @property
    def default_pipeline_root(self) -> str:
        return self.pipeline_root or str(self.state_dir / "pipeline-root")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
