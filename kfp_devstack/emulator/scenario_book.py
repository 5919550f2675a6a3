"""The scripted scenarios in force, persisted with the rest of the emulator's state."""

from __future__ import annotations

from kfp_devstack.emulator.models import Run
from kfp_devstack.emulator.scenarios import Scenario
from kfp_devstack.emulator.store import Store

_DEFAULT_KEY = "default"


def _pipeline_key(name: str) -> str:
    return f"pipeline:{name}"


def _run_key(run_id: str) -> str:
    return f"run:{run_id}"


class ScenarioBook:
    def __init__(self, store: Store, defaults: Scenario) -> None:
        self._store = store
        self._defaults = defaults

    def set_default(self, scenario: Scenario | None) -> None:
        self._save(_DEFAULT_KEY, scenario)

    def script_pipeline(self, pipeline_name: str, scenario: Scenario | None) -> None:
        self._save(_pipeline_key(pipeline_name), scenario)

    def script_run(self, run_id: str, scenario: Scenario | None) -> None:
        self._save(_run_key(run_id), scenario)

    def scripts(self) -> dict[str, Scenario]:
        with self._store.lock:
            return {key: Scenario.from_json(data) for key, data in self._store.scenarios.items()}

    def for_run(self, run: Run) -> Scenario:
        """The effective scenario: defaults, then the default, pipeline and run scripts."""
        scenario = self._defaults
        with self._store.lock:
            for key in (_DEFAULT_KEY, _pipeline_key(run.pipeline_name), _run_key(run.run_id)):
                data = self._store.scenarios.get(key)
                if data is not None:
                    scenario = scenario.overlaid_by(Scenario.from_json(data))
        return scenario

    def forget_run(self, run_id: str) -> None:
        self._save(_run_key(run_id), None)

    def _save(self, key: str, scenario: Scenario | None) -> None:
        self._store.save_scenario(key, None if scenario is None else scenario.to_json())
