"""The Dagster instance on PostgreSQL (dagster-postgres), configured with the block documented in
the project's `dagster.yaml`: assets materialize into it, the landing sensor reads and writes its
state through it. Runs against 127.0.0.1:5432, database `test` (override with DAGSTER_PG_HOST,
DAGSTER_PG_PORT, DAGSTER_PG_DB, DAGSTER_PG_USER, DAGSTER_PG_PASSWORD), in a schema of its own that
it drops afterwards. Skipped, with the reason printed, when PostgreSQL does not answer."""

from __future__ import annotations

import getpass
import os
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import psycopg2
import pytest
import yaml
from dagster import AssetKey, DagsterInstance, Definitions, build_sensor_context

from fraud_assets.jobs import DAILY_FEATURE_ASSETS, DAILY_FEATURE_CHECKS, daily_features_job
from fraud_assets.resources import DataLayoutResource
from fraud_assets.sensors import landing_folder_sensor
from fraud_core.generator import GeneratorConfig, write_landing_files
from fraud_core.storage import DataLayout

from ..configs import START, feature_resources

PROJECT_YAML = Path(__file__).resolve().parents[2] / "dagster.yaml"


def documented_postgres_block() -> dict:
    """The commented `storage: postgres:` block of dagster.yaml, uncommented and parsed."""
    lines, inside = [], False
    for line in PROJECT_YAML.read_text().splitlines():
        if line.strip() == "# storage:":
            inside = True
        if inside:
            if not line.startswith("#"):
                break
            lines.append(line[2:])
    assert lines, "dagster.yaml no longer documents a PostgreSQL storage block"
    return yaml.safe_load("\n".join(lines))


def _connection_settings() -> dict[str, str]:
    return {
        "DAGSTER_PG_HOST": os.environ.get("DAGSTER_PG_HOST", "127.0.0.1"),
        "DAGSTER_PG_PORT": os.environ.get("DAGSTER_PG_PORT", "5432"),
        "DAGSTER_PG_DB": os.environ.get("DAGSTER_PG_DB", "test"),
        "DAGSTER_PG_PASSWORD": os.environ.get("DAGSTER_PG_PASSWORD", ""),
    }


def _connect(settings: dict[str, str]):
    """A connection as the configured user, else `postgres`, else the current user."""
    users = [os.environ.get("DAGSTER_PG_USER"), "postgres", getpass.getuser()]
    errors = []
    for user in dict.fromkeys(u for u in users if u):
        try:
            conn = psycopg2.connect(
                host=settings["DAGSTER_PG_HOST"],
                port=int(settings["DAGSTER_PG_PORT"]),
                dbname=settings["DAGSTER_PG_DB"],
                user=user,
                password=settings["DAGSTER_PG_PASSWORD"] or None,
                connect_timeout=3,
            )
            return conn, user
        except psycopg2.OperationalError as err:
            errors.append(f"{user}: {str(err).strip()}")
    reason = (
        f"PostgreSQL at {settings['DAGSTER_PG_HOST']}:{settings['DAGSTER_PG_PORT']}/"
        f"{settings['DAGSTER_PG_DB']} is not reachable ({'; '.join(errors)})"
    )
    print(f"SKIPPED: {reason}", file=sys.stderr)
    pytest.skip(reason)


@pytest.fixture
def pg_instance(tmp_path, monkeypatch):
    """A DagsterInstance whose run, event-log and schedule storage live in a fresh schema."""
    settings = _connection_settings()
    conn, user = _connect(settings)
    conn.autocommit = True
    schema = f"dagster_test_{uuid.uuid4().hex[:12]}"
    with conn.cursor() as cur:
        cur.execute(f'CREATE SCHEMA "{schema}"')
    instance = None
    try:
        for key, value in {**settings, "DAGSTER_PG_USER": user}.items():
            monkeypatch.setenv(key, value)
        config = dict(yaml.safe_load(PROJECT_YAML.read_text()))
        config.update(documented_postgres_block())
        db = config["storage"]["postgres"]["postgres_db"]
        db["port"] = int(settings["DAGSTER_PG_PORT"])
        db["params"] = {"options": f"-csearch_path={schema}"}  # isolation for the test only
        home = tmp_path / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text(yaml.safe_dump(config))
        instance = DagsterInstance.from_config(str(home))
        yield instance, conn, schema
    finally:
        if instance is not None:
            instance.dispose()
        with conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
        conn.close()


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
