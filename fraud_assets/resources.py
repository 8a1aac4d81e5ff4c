"""Resources of the code location: where the files are, the Dask cluster, the Redis store.

Each works on a laptop with nothing configured and scales out through environment variables:
`FRAUD_DATA_DIR`, `DASK_SCHEDULER_ADDRESS`, `REDIS_URL`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import date

from dagster import Config, ConfigurableResource, Failure, InitResourceContext
from distributed import Client, LocalCluster, get_worker, worker_client
from pydantic import Field, PrivateAttr
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from fraud_assets.lib.redis_clients import AnyRedis, connect
from fraud_core.contract import Contract, applied_contract
from fraud_core.contract.folder import pin_contract
from fraud_core.env import env_number
from fraud_core.model.dataset import feature_days_on_disk
from fraud_core.online_keys import DEFAULT_PREFIX, KEY_PREFIX_ENV, OnlineKeys
from fraud_core.redis_server import RedisHandle, ensure_redis
from fraud_core.storage import DataLayout

LOOPBACK_DASHBOARD = "127.0.0.1:0"
"""Where LocalClusters put the Dask dashboard: loopback, on a free port. (`None` still binds
127.0.0.1:8787, which collides between clusters; ":0" binds every interface.)"""


class DataLayoutResource(ConfigurableResource):
    """The data folder: landing files in, validated and derived files out."""

    data_dir: str | None = Field(
        default=None, description="Root of the data folder; empty: $FRAUD_DATA_DIR, else ./data."
    )

    def layout(self) -> DataLayout:
        """The folder, once it is known to follow the contract in use: a $FRAUD_CONTRACT that
        cannot be read, or one that means other data than the folder holds, stops the step."""
        layout = DataLayout.at(self.data_dir or os.environ.get("FRAUD_DATA_DIR") or "data")
        pin_contract(layout, applied_contract())
        return layout

    @staticmethod
    def feature_days(layout: DataLayout) -> list[date]:
        """The days with `entity_features` files in `layout`, oldest first; a failure saying
        what to run first when there is none (the steps that read features across days)."""
        days = feature_days_on_disk(layout)
        if not days:
            raise Failure("no entity_features partition on disk: materialize entity_features first")
        return days

    def contract(self) -> Contract:
        """The data contract the step applies ($FRAUD_CONTRACT, else the built-in one): its
        entities, attributes and features (`Contract.spec`)."""
        return applied_contract()


PROCESSES_ENV = "FRAUD_DASK_PROCESSES"
"""1: LocalClusters of worker processes by default; empty or 0: one worker of threads in the run's
own process (`DaskResource.processes`)."""


class DaskResource(ConfigurableResource):
    """Dask for the work inside a step. With a scheduler address it joins that cluster; without
    one it starts a LocalCluster on first use and keeps it for the rest of the run (every step of
    an in-process run shares it), closing it when the run's resources are torn down."""

    scheduler_address: str | None = Field(
        default=None,
        description="tcp://host:8786 of a running scheduler; empty: $DASK_SCHEDULER_ADDRESS, "
        "else a LocalCluster started for the step.",
    )
    n_workers: int | None = Field(default=None, description="LocalCluster workers (None: auto).")
    threads_per_worker: int | None = Field(default=None, description="LocalCluster threads.")
    processes: bool | None = Field(
        default=None,
        description="LocalCluster workers as processes (true) or one worker of threads in the "
        f"run's process (false); empty: ${PROCESSES_ENV} (1: processes), else threads. Measured "
        "on 2 cores, threads win at every size: worker processes take 10-40 s to start (each "
        "imports the project) and ship every result between processes, while the feature "
        "kernels, Arrow and XGBoost release the GIL (a year's daily run 49 s against 64 s, "
        "training 19 s against 27-34 s). Machines with many cores may gain from processes.",
    )
    memory_limit: str = Field(default="auto", description="LocalCluster memory per worker.")

    _cluster: LocalCluster | None = PrivateAttr(default=None)

    def use_processes(self) -> bool:
        if self.processes is not None:
            return self.processes
        return env_number(PROCESSES_ENV, 0, int, low=0, high=1) == 1

    def _local_cluster(self) -> LocalCluster:
        if self._cluster is None or self._cluster.status.name in ("closing", "closed", "failed"):
            processes = self.use_processes()
            # Worker processes talk TCP on loopback only; threads use the in-process transport,
            # which rejects a host. Threads: one worker with a thread per core.
            network = {"host": "127.0.0.1"} if processes else {}
            self._cluster = LocalCluster(
                n_workers=self.n_workers if processes or self.n_workers else 1,
                threads_per_worker=self.threads_per_worker,
                processes=processes,
                memory_limit=self.memory_limit,
                dashboard_address=LOOPBACK_DASHBOARD,
                **network,
            )
        return self._cluster

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        cluster, self._cluster = self._cluster, None
        if cluster is not None:
            cluster.close()

    @contextlib.contextmanager
    def get_client(self) -> Iterator[Client]:
        if not self.scheduler_address and _in_dask_worker():
            # A step run as a Dask task (partition_safe_dask_executor) uses the cluster it runs
            # on; its thread leaves the worker's pool meanwhile, so its own tasks can run.
            with worker_client() as client:
                yield client
            return
        address = self.scheduler_address or os.environ.get("DASK_SCHEDULER_ADDRESS")
        if address:
            with Client(address) as client:
                yield client
            return
        with Client(self._local_cluster()) as client:
            yield client


def _in_dask_worker() -> bool:
    try:
        get_worker()
    except ValueError:
        return False
    return True


class ServiceKeysConfig(Config):
    """The run config of an asset that reads or writes the scoring service's Redis keys."""

    key_prefix: str | None = Field(
        default=None,
        description=f"Prefix of the service's keys; empty: ${KEY_PREFIX_ENV}, else "
        f"{DEFAULT_PREFIX!r} (the loader, the service and the drains must use the same).",
    )

    def keys(self) -> OnlineKeys:
        return OnlineKeys.from_env(self.key_prefix)


class RedisResource(ConfigurableResource):
    """The online store. `url` (else $REDIS_URL) must answer; with neither, 127.0.0.1:6379 is
    used when it answers, else a private redis-server is started for the step (and its data
    goes away with it)."""

    url: str | None = Field(default=None, description="redis://…; empty: $REDIS_URL or local.")
    socket_timeout_s: float = 5.0
    connect_timeout_s: float = 5.0
    retries: int = 3

    _handle: RedisHandle | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._handle = ensure_redis(self.url)
        if self._handle.started and context.log is not None:
            context.log.warning(f"no Redis configured or answering; started {self._handle.url}")

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._handle is not None:
            self._handle.stop()

    @property
    def resolved_url(self) -> str:
        if self._handle is None:
            self._handle = ensure_redis(self.url)
        return self._handle.url

    def get_client(self) -> AnyRedis:
        """A client with timeouts and retries on connection errors and timeouts (a cluster
        client with $FRAUD_REDIS_CLUSTER=1: `fraud_assets.lib.redis_clients`)."""
        return connect(
            self.resolved_url,
            socket_timeout=self.socket_timeout_s,
            socket_connect_timeout=self.connect_timeout_s,
            # Retry's default errors are ConnectionError and TimeoutError (retry_on_timeout is
            # deprecated in redis-py 8).
            retry=Retry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), self.retries),
            health_check_interval=30,
        )
