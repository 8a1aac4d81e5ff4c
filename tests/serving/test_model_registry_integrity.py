"""The service and the registry's integrity rules, over HTTP: a card edited after training and a
`current.json` pointing outside the registry are refused by the hot reload, once, and the model
already loaded keeps scoring with the thresholds it was trained with."""

from __future__ import annotations

import json
import logging
import os
import time

from fraud_core.model.artifact import CARD_FILE, CURRENT_FILE, ModelCard, save_version

from .support import THRESHOLDS, deploy, payload, small_orders, trained_booster, wait_for

REFUSED = 'fraud_model_reloads_total{result="refused"}'


def _replace(path, text: str) -> None:
    """Write as a deploy does, in one rename: a plain write_text truncates first, and a poll
    between the truncation and the write sees an empty file, a change of its own."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _refusals(client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(REFUSED):
            return float(line.split()[-1])
    return 0.0


def _scores(client, tag: str) -> list[dict]:
    orders = small_orders().iloc[:20]
    return [
        client.post("/v1/score", json={**payload(row), "order_id": f"{tag}-{i}"}).json()
        for i, (_, row) in enumerate(orders.iterrows())
    ]


def _decision(score: float) -> str:
    """The decision under the thresholds the model was trained with."""
    if score >= THRESHOLDS["decline"]:
        return "decline"
    return "review" if score >= THRESHOLDS["review"] else "approve"


def _assert_still_served(client, version: str, before: list[dict]) -> None:
    served = client.get("/v1/model").json()
    assert served["version"] == version
    assert served["card"]["thresholds"] == THRESHOLDS
    assert client.get("/ready").json()["model_version"] == version
    after = _scores(client, "after")
    assert [s["model_version"] for s in after] == [version] * len(after)
    assert [s["decision"] for s in after] == [_decision(s["score"]) for s in after]
    assert {s["decision"] for s in before + after} != {"decline"}


def test_an_edited_card_is_refused_and_the_old_model_keeps_scoring(
    client, data_dir, model, caplog
) -> None:
    registry = data_dir / "models"
    before = _scores(client, "before")
    assert [s["decision"] for s in before] == [_decision(s["score"]) for s in before]

    card_path = registry / model.version / CARD_FILE
    card = json.loads(card_path.read_text())
    card["thresholds"] = {"review": 0.0, "decline": 0.0}  # would decline every order
    with caplog.at_level(logging.ERROR, logger="fraud_serving"):
        _replace(card_path, json.dumps(card, indent=2, sort_keys=True))
        wait_for(lambda: _refusals(client) == 1.0)
        time.sleep(0.5)  # several polls: refused once, not again and again
    assert _refusals(client) == 1.0
    assert any(str(card_path) in r.getMessage() for r in caplog.records), caplog.text
    _assert_still_served(client, model.version, before)


def test_a_current_pointer_outside_the_registry_is_refused(client, data_dir, model) -> None:
    registry = data_dir / "models"
    before = _scores(client, "before")
    stray = save_version(
        data_dir / "outside",
        trained_booster(rounds=5, seed=4),
        ModelCard(
            version="",
            feature_names=model.feature_names,
            thresholds={"review": 0.0, "decline": 0.0},
        ),
    )
    pointer = {"version": f"../outside/{stray.version}", "reason": "path traversal"}
    _replace(registry / CURRENT_FILE, json.dumps(pointer))
    wait_for(lambda: _refusals(client) == 1.0)
    time.sleep(0.5)
    assert _refusals(client) == 1.0
    _assert_still_served(client, model.version, before)

    # a good pointer again: the next deployed model is picked up as usual
    newer = deploy(registry, trained_booster(rounds=10, seed=1))
    wait_for(lambda: client.get("/v1/model").json()["version"] == newer.version)


def test_an_unreadable_current_pointer_is_refused_once(client, data_dir, model) -> None:
    registry = data_dir / "models"
    before = _scores(client, "before")
    for i, text in enumerate(['{"version": ', json.dumps({"version": 7}), "[]"], start=1):
        _replace(registry / CURRENT_FILE, text)
        wait_for(lambda i=i: _refusals(client) == i)
        time.sleep(0.5)  # several polls of the same file: counted once
        assert _refusals(client) == i
        _assert_still_served(client, model.version, before)
