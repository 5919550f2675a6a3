"""Reading back what KFP holds, to check the operator's exactly-once promise under load."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable

import urllib3

from reconcilers.run.tracking import MARKER_PREFIX, run_uid_from_description


def operator_runs_by_uid(kfp_url: str) -> Counter[str]:
    """How many KFP runs carry each Run UID in their operator marker (one page per 200 runs)."""
    pool = urllib3.PoolManager(retries=False)
    query = json.dumps(
        {"predicates": [{"key": "description", "operation": "IS_SUBSTRING", "string_value": MARKER_PREFIX}]}
    )
    counts: Counter[str] = Counter()
    token = ""
    while True:
        fields = {"filter": query, "page_size": "200"} | ({"page_token": token} if token else {})
        response = pool.request("GET", kfp_url.rstrip("/") + "/apis/v2beta1/runs", fields=fields)
        page = json.loads(response.data)
        for run in page.get("runs") or []:
            uid = run_uid_from_description(run.get("description"))
            if uid:
                counts[uid] += 1
        token = page.get("next_page_token") or ""
        if not token:
            return counts


def duplicates(counts: Counter[str], uids: Iterable[str]) -> dict[str, int]:
    """Runs (by UID) with more than one KFP run, and Runs with none."""
    wanted = list(uids)
    return {
        "runsWithSeveralKfpRuns": sum(1 for uid in wanted if counts.get(uid, 0) > 1),
        "runsWithoutKfpRun": sum(1 for uid in wanted if counts.get(uid, 0) == 0),
        "extraKfpRuns": sum(max(0, counts.get(uid, 0) - 1) for uid in wanted),
    }
