"""A local emulator of the Kubeflow Pipelines v2beta1 REST API, backed by a real ML Metadata store.

The KFP API is served over HTTP and behaves like the real server wherever a client
could tell (encoding, errors, filters, pagination, the run state machine); runs
progress on their own and write ML Metadata as the KFP v2 driver and launcher do,
and the store is served over MLMD's standard gRPC API. A control API scripts what
runs do and injects faults. Comments cite the sections of docs/emulator.md that
describe the real server behaviour being copied; docs/emulator.md §14 lists what is left out.

    from kfp_devstack.emulator import Emulator, EmulatorConfig, EmulatorControl, Scenario, Task

    with Emulator(EmulatorConfig(state_dir=tmp_path)) as emulator:
        ctl = EmulatorControl(emulator.url)
        ctl.script_pipeline("penguin-pipeline", Scenario(tasks={"Pusher": Task(seconds=0.2)}))
"""

from kfp_devstack.emulator.config import EmulatorConfig
from kfp_devstack.emulator.control import ControlError, EmulatorControl
from kfp_devstack.emulator.emulator import Emulator
from kfp_devstack.emulator.faults import Fault
from kfp_devstack.emulator.scenarios import Scenario, Task

__all__ = ["ControlError", "Emulator", "EmulatorConfig", "EmulatorControl", "Fault", "Scenario", "Task"]
