"""The service's decisions reach `scored_orders` exactly once (issue 16): orders scored over HTTP
(singles, a batch, replays) on a real Redis, a drain that dies after writing its segment and
before trimming the stream, then the `decision_log` and `scored_orders` assets through Dagster's
`materialize`: every stored answer appears once, as it was served, and Redis is emptied."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import redis
from dagster import materialize
from litestar.testing import TestClient

from fraud_assets.assets.decision_log import DECISION_LOG_IS_BOUNDED, decision_log
from fraud_assets.assets.scored_orders import SCORED_ORDER_IDS_ARE_UNIQUE, scored_orders
from fraud_assets.lib.decision_drain import drain_decisions
from fraud_assets.lib.redis_clients import coordinator
from fraud_assets.resources import DataLayoutResource, RedisResource
from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.storage import DataLayout
from fraud_serving.app import create_app
from fraud_serving.settings import Settings

from ..serving.support import deploy, payload, small_orders, trained_booster
from .conftest import REDIS_MODES

API_KEY = "drain-test-key"


class _DiesBeforeTrim(redis.Redis):
    """A real client whose process "dies" right after the segment is written: the trim never
    reaches Redis."""

    def xtrim(self, *args, **kwargs):
        raise SystemExit("killed before the trim")


@pytest.fixture
def served(tmp_path, store):
    url, keys, client = store
    deploy(tmp_path / "models", trained_booster())
    settings = Settings(
        api_keys=frozenset({API_KEY}),
        redis_url=url,
        redis_cluster=keys.cluster,
        key_prefix=keys.prefix,
        data_dir=tmp_path,
        model_poll_s=0.1,
    )
    return settings, keys, client, DataLayout(tmp_path)


@pytest.mark.parametrize("store", REDIS_MODES, indirect=True)
def test_every_stored_answer_reaches_scored_orders_once(served):
    settings, keys, client, layout = served
    orders = small_orders().tail(40).reset_index(drop=True)
    yesterday = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=1)).floor("D")
    orders["order_date"] = [yesterday + pd.Timedelta(minutes=30 * i) for i in range(len(orders))]
    bodies = [payload(row) for _, row in orders.iterrows()]
    served_answers = {}
    with TestClient(create_app(settings)) as http:
        http.headers["X-API-Key"] = API_KEY

        def score(chunk: list[dict]) -> None:
            got = http.post("/v1/score/batch?features=true", json={"orders": chunk})
            assert got.status_code == 200, got.text
            for answer in got.json()["results"]:
                served_answers.setdefault(answer["order_id"], answer)

        score(bodies[:15])
        # a drain that writes its segment and dies before trimming the stream
        dying = _DiesBeforeTrim(connection_pool=coordinator(client, keys).connection_pool)
        with pytest.raises(SystemExit):
            drain_decisions(dying, keys, layout)
        dying.close()
        assert len(layout.decision_log_segments()) == 1 and client.xlen(keys.decisions) == 15
        score(bodies[10:30])  # five replays: no new entries
        for body in bodies[30:]:
            single = http.post("/v1/score?features=true", json=body)
            assert single.status_code == 200, single.text
            served_answers[body["order_id"]] = single.json()
    assert client.xlen(keys.decisions) == len(bodies)

    resources = {
        "layout": DataLayoutResource(data_dir=str(layout.root)),
        "redis": RedisResource(url=settings.redis_url),
    }
    config = {"ops": {"decision_log": {"config": {"key_prefix": keys.prefix}}}}
    drained = materialize([decision_log], resources=resources, run_config=config)
    assert drained.success
    (event,) = drained.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["drained"].value == len(bodies) and metadata["remaining_in_redis"].value == 0
    assert metadata["order_days"].value == [yesterday.date().isoformat()]
    (check,) = drained.get_asset_check_evaluations()
    assert check.check_name == DECISION_LOG_IS_BOUNDED and check.passed
    assert client.xlen(keys.decisions) == 0
    # the dead drain's segment was rewritten with everything, not written beside it
    assert len(layout.decision_log_segments()) == 1

    day = yesterday.date()
    scored = materialize([scored_orders], resources=resources, partition_key=day.isoformat())
    assert scored.success
    (report,) = scored.get_asset_materialization_events()
    figures = report.materialization.metadata
    decisions = [a["decision"] for a in served_answers.values()]
    for name, decision in (
        ("approvals", "approve"),
        ("reviews", "review"),
        ("declines", "decline"),
    ):
        assert figures[name].value == decisions.count(decision)
    declined = [b for b in bodies if served_answers[b["order_id"]]["decision"] == "decline"]
    expected = sum(round(b["order_amount"] * 100) for b in declined) / 100
    assert figures["declined_amount"].value == pytest.approx(expected)
    flagged = [a for a in served_answers.values() if a["decision"] != "approve"]
    reasons = [r["feature"] for a in flagged for r in a["reasons"]]
    top = figures["top_reasons"].value
    assert top and all(reasons.count(name) == n for name, n in top.items())
    assert "| approve | review | decline |" in figures["decision_report"].value
    (unique,) = scored.get_asset_check_evaluations()
    assert unique.check_name == SCORED_ORDER_IDS_ARE_UNIQUE and unique.passed
    table = pq.read_table(layout.scored_orders(day)).to_pandas()
    assert table["order_id"].tolist() == [b["order_id"] for b in bodies]
    for row in table.itertuples():
        answer = served_answers[row.order_id]
        assert row.score == answer["score"] and row.decision == answer["decision"]
        vector = [answer["features"][n] for n in DEFAULT_SPEC.feature_names]
        np.testing.assert_array_equal(np.asarray(row.features), np.array(vector, dtype=float))
    assert (table["t_s"] // 86_400 == int(yesterday.timestamp()) // 86_400).all()
