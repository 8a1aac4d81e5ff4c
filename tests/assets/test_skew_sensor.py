"""serving_skew_sensor leaves a day to the served_days_job run that is judging it."""

from __future__ import annotations

from datetime import date

from dagster import DagsterRun, DagsterRunStatus, instance_for_test

from fraud_assets.jobs import served_days_job
from fraud_assets.partitions import partition_range_tags
from fraud_assets.sensors.skew import _being_judged


def test_days_of_a_served_days_run_in_flight_are_left_to_it() -> None:
    with instance_for_test() as instance:
        assert _being_judged(instance) == set()
        for run_id, status, days in (
            ("a" * 32, DagsterRunStatus.STARTED, (date(2026, 3, 1), date(2026, 3, 2))),
            ("b" * 32, DagsterRunStatus.SUCCESS, (date(2026, 3, 5), date(2026, 3, 5))),
        ):
            instance.add_run(
                DagsterRun(
                    job_name=served_days_job.name,
                    run_id=run_id,
                    status=status,
                    tags=partition_range_tags(*days),
                )
            )
        assert _being_judged(instance) == {"2026-03-01", "2026-03-02"}
