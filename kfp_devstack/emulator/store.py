"""The emulator's state: in-memory maps for lookups, written through to SQLite.

Every change is written to ``<state_dir>/kfp.db`` before the call that made it
returns, so a restarted emulator on the same directory sees the same pipelines,
versions, experiments, runs (with their progress) and scripted scenarios. Pipeline
specs are stored once, keyed by the digest of their JSON document.

All access goes through :attr:`Store.lock` (re-entrant): the HTTP handler threads and
the run engine's thread share the maps.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from kfp_devstack.emulator.models import Experiment, Pipeline, PipelineVersion, Run
from kfp_devstack.emulator.pipeline_spec import PipelineSpec

_TABLES = ("pipelines", "pipeline_versions", "experiments", "runs", "specs", "scenarios", "settings")


class Store:
    def __init__(self, db_path: Path) -> None:
        self.lock = threading.RLock()
        self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        for table in _TABLES:
            self._db.execute(f"CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
        self.pipelines: dict[str, Pipeline] = {
            key: Pipeline.from_record(body) for key, body in self._load("pipelines")
        }
        self.versions: dict[str, PipelineVersion] = {
            key: PipelineVersion.from_record(body) for key, body in self._load("pipeline_versions")
        }
        self.experiments: dict[str, Experiment] = {
            key: Experiment.from_record(body) for key, body in self._load("experiments")
        }
        self.runs: dict[str, Run] = {key: Run.from_record(body) for key, body in self._load("runs")}
        self.scenarios: dict[str, dict[str, Any]] = dict(self._load("scenarios"))
        self.settings: dict[str, Any] = dict(self._load("settings"))
        self._spec_documents: dict[str, dict[str, Any]] = dict(self._load("specs"))
        self._parsed_specs: dict[str, PipelineSpec] = {}

    def close(self) -> None:
        with self.lock:
            self._db.close()

    def _load(self, table: str) -> list[tuple[str, Any]]:
        rows = self._db.execute(f"SELECT id, body FROM {table}").fetchall()  # noqa: S608 - fixed table names
        return [(key, json.loads(body)) for key, body in rows]

    def _write(self, table: str, key: str, body: Any) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO {table} (id, body) VALUES (?, ?)",  # noqa: S608 - fixed table names
            (key, json.dumps(body, separators=(",", ":"))),
        )

    def _delete(self, table: str, key: str) -> None:
        self._db.execute(f"DELETE FROM {table} WHERE id = ?", (key,))  # noqa: S608 - fixed table names

    # --- pipeline specs -----------------------------------------------------------------

    def add_spec(self, spec: PipelineSpec) -> str:
        document = spec.document()
        digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
        with self.lock:
            if digest not in self._spec_documents:
                self._spec_documents[digest] = document
                self._write("specs", digest, document)
            self._parsed_specs.setdefault(digest, spec)
        return digest

    def spec(self, digest: str) -> PipelineSpec:
        with self.lock:
            spec = self._parsed_specs.get(digest)
            if spec is None:
                spec = PipelineSpec.from_document(self._spec_documents[digest])
                self._parsed_specs[digest] = spec
            return spec

    # --- records --------------------------------------------------------------------------

    def save_pipeline(self, pipeline: Pipeline) -> None:
        with self.lock:
            self.pipelines[pipeline.pipeline_id] = pipeline
            self._write("pipelines", pipeline.pipeline_id, pipeline.to_record())

    def delete_pipeline(self, pipeline_id: str) -> None:
        with self.lock:
            self.pipelines.pop(pipeline_id, None)
            self._delete("pipelines", pipeline_id)

    def save_version(self, version: PipelineVersion) -> None:
        with self.lock:
            self.versions[version.pipeline_version_id] = version
            self._write("pipeline_versions", version.pipeline_version_id, version.to_record())

    def delete_version(self, version_id: str) -> None:
        with self.lock:
            self.versions.pop(version_id, None)
            self._delete("pipeline_versions", version_id)

    def save_experiment(self, experiment: Experiment) -> None:
        with self.lock:
            self.experiments[experiment.experiment_id] = experiment
            self._write("experiments", experiment.experiment_id, experiment.to_record())

    def delete_experiment(self, experiment_id: str) -> None:
        with self.lock:
            self.experiments.pop(experiment_id, None)
            self._delete("experiments", experiment_id)

    def save_run(self, run: Run) -> None:
        with self.lock:
            self.runs[run.run_id] = run
            self._write("runs", run.run_id, run.to_record())

    def delete_run(self, run_id: str) -> None:
        with self.lock:
            self.runs.pop(run_id, None)
            self._delete("runs", run_id)

    def save_scenario(self, key: str, scenario: dict[str, Any] | None) -> None:
        with self.lock:
            if scenario is None:
                self.scenarios.pop(key, None)
                self._delete("scenarios", key)
            else:
                self.scenarios[key] = scenario
                self._write("scenarios", key, scenario)

    def save_setting(self, key: str, value: Any) -> None:
        with self.lock:
            self.settings[key] = value
            self._write("settings", key, value)
