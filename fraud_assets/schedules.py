"""The code location's schedules: `freshness_schedule` runs the freshness checks every hour."""

from __future__ import annotations

from dagster import DefaultScheduleStatus, ScheduleDefinition

from fraud_assets.jobs import freshness_checks_job

freshness_schedule = ScheduleDefinition(
    name="freshness_schedule",
    job=freshness_checks_job,
    cron_schedule="17 * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Hourly: are raw orders, features, the online store and the deployed model "
    "fresh (FRAUD_CLOCK, FRAUD_FRESHNESS_HOURS)?",
)
