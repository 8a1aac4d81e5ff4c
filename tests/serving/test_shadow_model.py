"""A challenger model scored in shadow (issue 17): every committed order's log entry carries the
challenger's version and calibrated score, the answers and decisions are the champion's alone,
and withdrawing the challenger stops the shadow scoring."""

from __future__ import annotations

import numpy as np
import redis
from litestar.testing import TestClient

from fraud_core.decision_log import decode_decision
from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.model.artifact import ModelCard, save_version, set_challenger
from fraud_core.online_keys import OnlineKeys

from .support import THRESHOLDS, payload, small_orders, trained_booster, wait_for


def _logged(redis_url: str, prefix: str) -> dict:
    client = redis.Redis.from_url(redis_url)
    try:
        entries = client.xrange(OnlineKeys(prefix).decisions)
    finally:
        client.close()
    return {d.order_id: d for d in (decode_decision(f[b"d"]) for _, f in entries)}


def test_the_challenger_is_scored_for_every_order_and_decides_none(
    client: TestClient, data_dir, redis_url, prefix, model
) -> None:
    registry = data_dir / "models"
    challenger_booster = trained_booster(rounds=8, seed=3)
    challenger = save_version(
        registry,
        challenger_booster,
        ModelCard(version="", feature_names=DEFAULT_SPEC.feature_names, thresholds=THRESHOLDS),
    )
    set_challenger(registry, challenger.version, "shadow test")
    wait_for(lambda: f'version="{challenger.version}"' in client.get("/metrics").text)

    orders = [payload(row) for _, row in small_orders().iloc[:30].iterrows()]
    answers = {}
    for chunk in (orders[:10], orders[10:]):
        r = client.post("/v1/score/batch?features=true", json={"orders": chunk})
        assert r.status_code == 200, r.text
        answers.update({a["order_id"]: a for a in r.json()["results"]})
    logged = _logged(redis_url, prefix)
    assert set(logged) == set(answers)
    names = DEFAULT_SPEC.feature_names
    for order_id, answer in answers.items():
        entry = logged[order_id]
        assert not any("shadow" in key for key in answer)  # never in an answer
        assert entry.shadow_version == challenger.version
        x = np.array([[np.nan if answer["features"][n] is None else answer["features"][n]
                       for n in names]])  # fmt: skip
        expected = float(challenger_booster.inplace_predict(x)[0])
        assert abs(entry.shadow_score - expected) <= 1e-6
        # decisions are the champion's: its score against its thresholds
        assert entry.model_version == model.version and entry.score == answer["score"]
        champion = answer["score"]
        assert answer["decision"] == (
            "decline" if champion >= THRESHOLDS["decline"]
            else "review" if champion >= THRESHOLDS["review"] else "approve"
        )  # fmt: skip
    assert any(abs(logged[o].shadow_score - answers[o]["score"]) > 1e-3 for o in answers), (
        "the challenger must be another model"
    )

    set_challenger(registry, None)
    wait_for(lambda: f'version="{challenger.version}"' not in client.get("/metrics").text)
    extra = payload(small_orders().iloc[40])
    assert client.post("/v1/score", json=extra).status_code == 200
    entry = _logged(redis_url, prefix)[extra["order_id"]]
    assert entry.shadow_version == "" and entry.shadow_score is None
