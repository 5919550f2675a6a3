"""The emulator as one object: the KFP API, the MLMD gRPC service and the run engine, wired together."""

from __future__ import annotations

import logging
import ssl

import grpc

from kfp_devstack.emulator.api_experiments import ExperimentService
from kfp_devstack.emulator.api_pipelines import PipelineService
from kfp_devstack.emulator.api_runs import RunService
from kfp_devstack.emulator.auth import Authenticator
from kfp_devstack.emulator.call_counter import CallCounter
from kfp_devstack.emulator.config import EmulatorConfig
from kfp_devstack.emulator.control_routes import ControlApi
from kfp_devstack.emulator.faults import FaultBook
from kfp_devstack.emulator.http_server import ApiServer, Router
from kfp_devstack.emulator.kfp_routes import add_kfp_routes
from kfp_devstack.emulator.mlmd_service import MetadataGrpcService
from kfp_devstack.emulator.mlmd_store import EmbeddedMetadataStore
from kfp_devstack.emulator.mlmd_writer import MetadataWriter
from kfp_devstack.emulator.progression import RunEngine
from kfp_devstack.emulator.proxy import KfpProxy
from kfp_devstack.emulator.scenario_book import ScenarioBook
from kfp_devstack.emulator.scenarios import Scenario
from kfp_devstack.emulator.store import Store
from kfp_devstack.emulator.tenancy import Tenancy
from kfp_devstack.emulator.workflow_driver import WorkflowDriver

LOG = logging.getLogger(__name__)


class Emulator:
    """A KFP v2beta1 API server and an MLMD gRPC service on loopback, with runs that progress.

    With ``config.real_kfp_url`` a real KFP API server answers the KFP API through this
    emulator (which still counts calls and injects faults), and the run engine drives the
    Workflows that server creates instead of runs of its own (docs/emulator.md §15).

    ``start()`` opens (or reopens) the state directory and starts serving; ``stop()``
    stops serving and closes the state. Runs that were in progress when an emulator
    stopped continue when one starts again on the same directory.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._api: ApiServer | None = None
        self._mlmd: MetadataGrpcService | None = None
        self._engine: RunEngine | None = None
        self._driver: WorkflowDriver | None = None
        self._store: Store | None = None

    @property
    def url(self) -> str:
        api = self._require(self._api)
        return f"{api.scheme}://{api.host}:{api.port}"

    @property
    def mlmd_host(self) -> str:
        return self._require(self._mlmd).host

    @property
    def mlmd_port(self) -> int:
        return self._require(self._mlmd).port

    def start(self) -> Emulator:
        try:
            self._start()
        except BaseException:
            self.stop()  # release whatever was opened before the failure (a port in use, say)
            raise
        return self

    def _start(self) -> None:
        config = self.config
        config.state_dir.mkdir(parents=True, exist_ok=True)
        store = self._store = Store(config.state_dir / "kfp.db")
        metadata = EmbeddedMetadataStore(config.state_dir / "mlmd.db")
        kfp_calls, mlmd_calls, faults = CallCounter(), CallCounter(), FaultBook()
        tenancy = Tenancy(multi_user=config.multi_user)
        scenarios = ScenarioBook(
            store, Scenario(pending_seconds=config.pending_seconds, task_seconds=config.task_seconds)
        )
        driver = self._driver = self._workflow_driver(store)
        engine = self._engine = RunEngine(
            store,
            scenarios,
            MetadataWriter(metadata),
            default_pipeline_root=config.default_pipeline_root,
            cancel_seconds=config.cancel_seconds,
            observer=driver.observe if driver is not None else None,
        )
        if driver is not None:
            driver.attach(engine)
        experiments = ExperimentService(store, tenancy)
        pipelines = PipelineService(store, tenancy)
        runs = RunService(store, tenancy, experiments, pipelines, engine, scenarios)
        mlmd = self._mlmd = MetadataGrpcService(
            metadata, mlmd_calls, config.host, config.mlmd_port, _grpc_credentials(config)
        )

        router = Router()
        add_kfp_routes(
            router, experiments=experiments, pipelines=pipelines, runs=runs, multi_user=config.multi_user
        )
        fallback = None
        if config.real_kfp_url is not None:
            # The real server answers every KFP call; the routes stay for counting and faults.
            fallback = KfpProxy(config.real_kfp_url).forward
            router = router.forwarding(fallback)
        ControlApi(
            store=store,
            scenarios=scenarios,
            engine=engine,
            faults=faults,
            kfp_calls=kfp_calls,
            mlmd_calls=mlmd_calls,
            mlmd=mlmd,
            find_run=driver.find_run if driver is not None else None,
        ).register(router)
        authenticator = (
            Authenticator(config.accepted_tokens, config.token_file) if config.multi_user else None
        )
        api = self._api = ApiServer(
            router,
            host=config.host,
            port=config.port,
            faults=faults,
            calls=kfp_calls,
            authenticator=authenticator,
            fallback=fallback,
            tls=_ssl_context(config),
        )
        mlmd.start()
        engine.start()
        if driver is not None:
            driver.start()
        api.start()

    def _workflow_driver(self, store: Store) -> WorkflowDriver | None:
        config = self.config
        if config.real_kfp_url is None:
            return None
        assert config.kubeconfig is not None
        return WorkflowDriver(
            store,
            kfp_url=config.real_kfp_url,
            kubeconfig=config.kubeconfig,
            namespace=config.kfp_namespace,
            kfp_user=config.real_kfp_user,
        )

    def stop(self) -> None:
        if self._api is not None:
            self._api.stop()
        if self._driver is not None:
            self._driver.stop()
        if self._engine is not None:
            self._engine.stop()
        if self._mlmd is not None:
            self._mlmd.stop()
        if self._store is not None:
            self._store.close()
        self._api = self._engine = self._mlmd = self._store = self._driver = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @staticmethod
    def _require(part: ApiServer | MetadataGrpcService | None) -> ApiServer | MetadataGrpcService:
        if part is None:
            raise RuntimeError("the emulator is not running")
        return part


def _ssl_context(config: EmulatorConfig) -> ssl.SSLContext | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    if config.tls_client_ca is not None:
        context.load_verify_locations(config.tls_client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _grpc_credentials(config: EmulatorConfig) -> grpc.ServerCredentials | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    client_ca = config.tls_client_ca.read_bytes() if config.tls_client_ca is not None else None
    return grpc.ssl_server_credentials(
        [(config.tls_key.read_bytes(), config.tls_cert.read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )
