"""`partition_safe_dask_executor`: dagster-dask's executor (each step a Dask task on a cluster),
fixed for partitioned runs and for concurrent runs.

dagster-dask 0.29 submits each step as `client.submit(query_on_dask_worker, dependencies,
recon_job, dagster_run, ...)`. distributed 2026.x parses every positional argument into its task
spec, walking tuples, lists and dicts to find futures; Dagster's `@record` classes are tuples that
forbid iteration, and a time-partitioned run carries one (`TimeWindowPartitionsDefinition`), so
every partitioned run fails with "Iteration is not allowed on `@record`". Here the step's arguments
travel inside one opaque object that Dask does not walk (it is pickled whole, as before); only
the upstream futures stay visible, so Dask still orders the steps. The task key also carries the
run id: the stock key `job.step` is the same for two runs of a job, and Dask would hand the second
run the first one's result.

Same configuration as `dagster_dask.dask_executor` (`cluster: {existing: {address}}` or
`cluster: {local: {...}}`); without configuration it starts a LocalCluster for the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dask.distributed
from dagster import _check as check
from dagster import multiple_process_executor_requirements
from dagster._core.definitions.executor_definition import executor
from dagster._core.errors import raise_execution_interrupts
from dagster._core.events import DagsterEvent
from dagster._core.execution.context.system import PlanOrchestrationContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.instance.ref import InstanceRef  # no public path
from dagster._serdes import ConfigurableClassData  # no public path
from dagster._utils import iterate_with_context
from dagster_dask.executor import (
    DaskExecutor,
    dask_executor,
    get_dask_resource_requirements,
    query_on_dask_worker,
)

from fraud_assets.resources import LOOPBACK_DASHBOARD


class _Opaque:
    """Values Dask must ship but not look into: a plain object, not a tuple, list or dict, so
    neither the task-spec parser nor `sizeof` iterates the Dagster records inside."""

    __slots__ = ("items",)

    def __init__(self, *items: Any) -> None:
        self.items = items

    def __getstate__(self) -> tuple:
        return self.items

    def __setstate__(self, state: tuple) -> None:
        self.items = state


def run_step_on_worker(dependencies: list, arguments: _Opaque) -> _Opaque:
    """The Dask task of one step; `dependencies` are the upstream steps' results, unused: they
    only order the tasks. Returns the step's Dagster events."""
    return _Opaque(*query_on_dask_worker(dependencies, *arguments.items))


def without_compute_log_capture(ref: InstanceRef) -> InstanceRef:
    """The instance as steps on Dask workers see it: no compute-log capture.

    Dagster's local compute-log manager mirrors a step's stdout/stderr through `tail -F`
    subprocesses and stops them with SIGTERM. Dask worker processes ignore SIGTERM, their
    children inherit that, so the tails never stop: steps leak them and can hang in the cleanup
    (seen in CI). On Dask, a step's output stays in the worker's log instead; events, metadata
    and check results reach the instance as usual."""
    return ref._replace(
        compute_logs_data=ConfigurableClassData(
            "dagster._core.storage.noop_compute_log_manager", "NoOpComputeLogManager", "{}\n"
        )
    )


class PartitionSafeDaskExecutor(DaskExecutor):
    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[DagsterEvent]:
        check.invariant(
            plan_context.instance.is_persistent,
            "Dask execution requires a persistent DagsterInstance",
        )
        if self.cluster_type == "existing":
            cluster: Any = self.cluster_configuration["address"]
        elif self.cluster_type == "local":
            options = self.build_dict(plan_context.job_name)
            options.setdefault("dashboard_address", LOOPBACK_DASHBOARD)
            if options.get("processes", True):
                options.setdefault("host", "127.0.0.1")
            cluster = dask.distributed.LocalCluster(**options)
        else:
            raise check.CheckError(
                f"cluster type {self.cluster_type!r}: only 'existing' and 'local' are supported "
                "by partition_safe_dask_executor"
            )
        run_id = plan_context.dagster_run.run_id
        instance_ref = without_compute_log_capture(plan_context.instance.get_ref())
        try:
            with dask.distributed.Client(cluster) as client:
                futures: dict[str, dask.distributed.Future] = {}
                for level in execution_plan.get_steps_to_execute_by_level():
                    for step in level:
                        dependencies = [
                            futures[key]
                            for step_input in step.step_inputs
                            for key in step_input.dependency_keys
                        ]
                        futures[step.key] = client.submit(
                            run_step_on_worker,
                            dependencies,
                            _Opaque(
                                plan_context.reconstructable_job,
                                plan_context.dagster_run,
                                plan_context.run_config,
                                [step.key],
                                instance_ref,
                                execution_plan.known_state,
                            ),
                            key=f"{plan_context.job_name}.{run_id}.{step.key}",
                            resources=get_dask_resource_requirements(step.tags),
                            pure=False,
                        )
                completed = dask.distributed.as_completed(list(futures.values()), with_results=True)
                for _future, events in iterate_with_context(raise_execution_interrupts, completed):
                    for event in events.items:
                        yield check.inst(event, DagsterEvent)
        finally:
            if not isinstance(cluster, str):
                cluster.close()


@executor(
    name="partition_safe_dask",
    requirements=multiple_process_executor_requirements(),
    config_schema=dask_executor.config_schema,
)
def partition_safe_dask_executor(init_context) -> PartitionSafeDaskExecutor:
    """dagster-dask's executor, working with partitioned (and range) runs and concurrent runs;
    see the module docstring."""
    ((cluster_type, cluster_configuration),) = init_context.executor_config["cluster"].items()
    return PartitionSafeDaskExecutor(cluster_type, cluster_configuration)
