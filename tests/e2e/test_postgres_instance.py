"""The Dagster instance on PostgreSQL (dagster-postgres), configured with the block documented in
the project's `dagster.yaml`: assets materialize into it, the landing sensor reads and writes its
state through it. Runs against 127.0.0.1:5432, database `test` (override with DAGSTER_PG_HOST,
DAGSTER_PG_PORT, DAGSTER_PG_DB, DAGSTER_PG_USER, DAGSTER_PG_PASSWORD), in a schema of its own that
it drops afterwards. Skipped, with the reason printed, when PostgreSQL does not answer."""

from __future__ import annotations

from datetime import timedelta

from dagster import AssetKey, Definitions, build_sensor_context

from fraud_assets.jobs import DAILY_FEATURE_ASSETS, DAILY_FEATURE_CHECKS, daily_features_job
from fraud_assets.resources import DataLayoutResource
from fraud_assets.sensors import landing_folder_sensor
from fraud_core.generator import GeneratorConfig, write_landing_files
from fraud_core.storage import DataLayout

from ..configs import START, feature_resources


def test_assets_and_the_sensor_on_postgres(pg_instance, tmp_path, monkeypatch):
    instance, conn, schema = pg_instance
    layout = DataLayout(tmp_path / "data")
    monkeypatch.setenv("FRAUD_DATA_DIR", str(layout.root))
    cfg = GeneratorConfig(
        n_customers=200, n_emails=200, n_ips=200, orders_per_day=120, days=3, start=START, seed=2
    )
    write_landing_files(cfg, layout.landing)
    defs = Definitions(
        assets=DAILY_FEATURE_ASSETS,
        asset_checks=DAILY_FEATURE_CHECKS,
        jobs=[daily_features_job],
        resources=feature_resources(),
    )

    def tick(cursor):
        context = build_sensor_context(
            instance=instance, cursor=cursor, resources={"layout": DataLayoutResource()}
        )
        return landing_folder_sensor(context)

    first = tick(None)
    assert len(first.run_requests) == 1
    run = defs.resolve_job_def("daily_features_job").execute_in_process(
        instance=instance, tags=first.run_requests[0].tags
    )
    assert run.success
    keys = {(START + timedelta(days=i)).isoformat() for i in range(3)}
    for asset in ("raw_orders", "orders_by_entity", "entity_features"):
        assert instance.get_materialized_partitions(AssetKey(asset)) == keys
    assert all(c.passed for c in run.get_asset_check_evaluations())

    # The next tick finds nothing new; a tick without cursor sees it was all ingested already.
    assert not tick(first.cursor).run_requests
    assert not tick(None).run_requests

    # Everything went to PostgreSQL, in the test's schema.
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT count(*) FROM {schema}.runs WHERE run_id = %s AND status = 'SUCCESS'",
            (run.run_id,),
        )
        assert cur.fetchone()[0] == 1
        cur.execute(
            f"SELECT count(*) FROM {schema}.event_logs "
            "WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
        )
        assert cur.fetchone()[0] >= 9
