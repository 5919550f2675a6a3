"""The restart floor: ``python -m bench.restart_floor --kubeconfig K NAMESPACE``.

Does what no restart of this operator can avoid: start Python, import the
operator's code (its composition root pulls in every module and client library it
runs), and list every Run of the namespace once, 500 per page as the operator's
reflector does, decoding each page with the operator's own JSON decoder. Prints the
number of Runs listed.

``--bytes-only`` times the API server alone instead: one unpaginated list whose
response is read but not decoded, what serving the Runs costs the API server (and
the transfer) with no client work at all.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

# Importing the operator (its entry point and composition root) is part of what is measured.
import kfp_operator.__main__
import kfp_operator.wiring  # noqa: F401
from bench.kubehttp import KubeHttp, runs_path
from controller import jsoncodec


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.restart_floor")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--bytes-only", action="store_true")
    parser.add_argument("namespace")
    args = parser.parse_args()
    kube = KubeHttp(args.kubeconfig)
    if args.bytes_only:
        started = time.monotonic()
        size = len(kube.request("GET", runs_path(args.namespace)).data)
        print(f"served {size} bytes in {time.monotonic() - started:.3f} s", flush=True)
        return
    count, token = 0, ""
    while True:
        query = "?limit=500" + (f"&continue={token}" if token else "")
        page = jsoncodec.loads(kube.request("GET", runs_path(args.namespace) + query).data)
        count += len(page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            break
    print(f"listed {count}", flush=True)


if __name__ == "__main__":
    main()
