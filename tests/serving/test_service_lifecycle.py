"""What happens around the requests: a newly deployed model is picked up while serving, a broken
or tampered one is refused, and a Redis outage gives fast 503s and heals by itself."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from litestar.testing import TestClient

from fraud_core.model.artifact import MODEL_FILE, set_current
from fraud_core.net import free_port
from fraud_core.redis_server import start_local_redis
from fraud_serving.app import create_app

from .conftest import API_KEY
from .support import deploy, payload, small_orders, trained_booster, wait_for


def test_a_new_model_is_hot_reloaded_and_a_tampered_one_refused(client, data_dir, model) -> None:
    registry = data_dir / "models"
    order = payload(small_orders().iloc[0])
    assert client.post("/v1/score", json=order).json()["model_version"] == model.version

    newer = deploy(registry, trained_booster(rounds=10, seed=1), notes="retrained")
    assert newer.version != model.version
    wait_for(lambda: client.get("/v1/model").json()["version"] == newer.version)
    scored = client.post("/v1/score", json={**order, "order_id": "after-reload"}).json()
    assert scored["model_version"] == newer.version

    # a version whose model file no longer matches the checksum in its card
    tampered = deploy(registry, trained_booster(rounds=5, seed=2))
    path = registry / tampered.version / MODEL_FILE
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    set_current(registry, tampered.version, reason="tampered")
    wait_for(
        lambda: 'fraud_model_reloads_total{result="refused"} 1.0' in client.get("/metrics").text
    )
    assert client.get("/v1/model").json()["version"] == newer.version
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["model_version"] == newer.version
    r = client.post("/v1/score", json={**order, "order_id": "after-refusal"})
    assert r.status_code == 200 and r.json()["model_version"] == newer.version

    # a version that is not a model at all, and a card naming other features
    (registry / tampered.version / MODEL_FILE).write_bytes(b"not a model")
    set_current(registry, newer.version)
    set_current(registry, tampered.version)
    broken_card = deploy(registry, trained_booster(rounds=4, seed=3))
    card_path = registry / broken_card.version / "card.json"
    card_path.write_text(card_path.read_text().replace('"order_amount"', '"order_total"'))
    set_current(registry, broken_card.version)
    wait_for(
        lambda: 'fraud_model_reloads_total{result="refused"} 2.0' in client.get("/metrics").text
    )
    assert client.get("/v1/model").json()["version"] == newer.version


def test_without_a_model_scoring_is_503_until_one_is_deployed(settings, data_dir) -> None:
    registry = data_dir / "models"
    (registry / "current.json").unlink()
    with TestClient(create_app(settings)) as c:
        c.headers["X-API-Key"] = API_KEY
        assert c.get("/ready").status_code == 503
        r = c.post("/v1/score", json=payload(small_orders().iloc[0]))
        assert r.status_code == 503 and "model" in r.json()["detail"]
        card = deploy(registry, trained_booster())
        wait_for(lambda: c.get("/ready").status_code == 200)
        assert (
            c.post("/v1/score", json=payload(small_orders().iloc[0])).json()["model_version"]
            == card.version
        )


@pytest.fixture
def own_redis():
    port = free_port()
    state = {"handle": start_local_redis(port=port), "port": port}
    yield state
    state["handle"].stop()


def test_a_redis_outage_gives_fast_503s_and_heals(settings, own_redis) -> None:
    port = own_redis["port"]
    settings = replace(settings, redis_url=f"redis://127.0.0.1:{port}/0", key_prefix="test:outage:")
    orders = small_orders()
    with TestClient(create_app(settings)) as c:
        c.headers["X-API-Key"] = API_KEY
        assert c.post("/v1/score", json=payload(orders.iloc[0])).status_code == 200

        own_redis["handle"].process.kill()  # a crash, not a shutdown
        own_redis["handle"].process.wait(timeout=10)
        for i in range(1, 6):
            started = time.perf_counter()
            r = c.post("/v1/score", json=payload(orders.iloc[i]))
            elapsed = time.perf_counter() - started
            assert r.status_code == 503, r.text
            assert "Redis" in r.json()["detail"] and r.headers["Retry-After"] == "1"
            assert elapsed < 0.1, f"503 took {elapsed * 1000:.0f} ms"
        for path in ("/v1/labels", "/v1/entities/customer_id/C1"):
            r = (
                c.post(
                    path,
                    json={"order_id": "x", "is_fraud": True, "label_date": "2026-01-01T00:00:00Z"},
                )
                if "labels" in path
                else c.get(path)
            )
            assert r.status_code == 503, (path, r.text)
        ready = c.get("/ready")
        assert ready.status_code == 503 and ready.json()["redis"] is False
        assert "fraud_redis_up 0.0" in c.get("/metrics").text
        assert c.get("/health").status_code == 200

        own_redis["handle"].stop()
        own_redis["handle"] = start_local_redis(port=port)  # an empty Redis on the same address
        wait_for(lambda: c.get("/ready").status_code == 200, timeout_s=5)
        r = c.post("/v1/score", json=payload(orders.iloc[7]))
        assert r.status_code == 200, r.text
        assert r.json()["new_entities"] == [
            "customer_id",
            "email",
            "ip_addr",
        ]  # the data went with it


def test_start_up_loads_the_kernel_and_takes_its_objects_out_of_the_gc(settings) -> None:
    import gc

    from fraud_core.features.kernel import _entity_pass

    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        assert _entity_pass.signatures  # the compiled kernel is loaded before the first order
        assert gc.get_freeze_count() > 10_000  # libraries, numba and the model: frozen
    gc.unfreeze()
