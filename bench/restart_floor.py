"""The restart floor: ``python -m bench.restart_floor --kubeconfig K NAMESPACE``.

Does what no restart of this operator can avoid: start Python, import the
operator's code (its composition root pulls in every module and client library it
runs), and list every Run of the namespace once, in pages of the reflector's size
(``controller.reflector.PAGE_SIZE``) as the operator does: the next page asked for
before this one is decoded, with the operator's own decoder (into the cache's form,
``controller.transform``). As the operator does, it starts the list once the entry
point is imported and imports the composition root while the API server prepares the
pages. Prints the number of Runs listed.

``--bytes-only`` times the API server alone instead: one unpaginated list whose
response is read but not decoded, what serving the Runs costs the API server (and
the transfer) with no client work at all.
"""

from __future__ import annotations

import argparse
import importlib
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Importing the operator (its entry point, and below its composition root) is part of what is
# measured.
import kfp_operator.__main__  # noqa: F401
from bench.kubehttp import KubeHttp, runs_path
from controller import jsoncodec
from controller.reflector import PAGE_SIZE
from controller.transform import CacheDecoder
from reconcilers.api import RUNS


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

    assert RUNS.fields is not None
    decoder = CacheDecoder(RUNS.fields)

    def fetch(token: str) -> jsoncodec.ListDocument:
        query = f"?limit={PAGE_SIZE}" + (f"&continue={token}" if token else "")
        return jsoncodec.ListDocument(
            kube.request("GET", runs_path(args.namespace) + query).data, decoder.page
        )

    def list_all() -> int:
        count = 0
        with ThreadPoolExecutor(1) as fetcher:
            page = fetch("")
            while True:
                token = (page.get("metadata") or {}).get("continue") or ""
                following = fetcher.submit(fetch, token) if token else None
                count += len(page.get("items") or [])
                if following is None:
                    return count
                page = following.result()

    with ThreadPoolExecutor(1) as lister:
        listed = lister.submit(list_all)
        importlib.import_module("kfp_operator.wiring")
        print(f"listed {listed.result()}", flush=True)


if __name__ == "__main__":
    main()
