"""schemathesis against the service's own OpenAPI document: generated requests (valid and
invalid bodies, paths and query strings) to every operation of a real uvicorn server on a real
Redis; none may get a 5xx, and the answers must match the documented response schemas.

`FRAUD_FUZZ_EXAMPLES` sets the examples per operation (default 400: over 2,000 requests in all,
about a minute on 2 cores); the last test checks the count. The service runs under the built-in
contract and under the card-present one (other order fields and entity kinds; a quarter of the
examples there).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from .conftest import API_KEY

EXAMPLES = int(os.environ.get("FRAUD_FUZZ_EXAMPLES", "400"))
MIN_REQUESTS = 2_000 if EXAMPLES >= 400 else 0
SENT: dict[str, int] = {}  # requests per contract
CONTRACTS = {"ecommerce": 1, "card_present": 4}  # contract -> divisor of the examples


@pytest.fixture(scope="module", params=list(CONTRACTS))
def server(request, tmp_path_factory, redis_url) -> Iterator[tuple[str, str]]:
    """(contract, URL): the app under uvicorn in a thread, under a shipped contract, on its own
    key prefix and model registry."""
    from dataclasses import replace

    from fraud_core.contract import SHIPPED, load_contract
    from fraud_serving.settings import Settings

    from .support import (
        app_in_thread,
        delete_prefix,
        deploy,
        trained_booster,
        trained_card_booster,
    )

    contract = load_contract(SHIPPED / f"{request.param}.yaml")
    data_dir = tmp_path_factory.mktemp("fuzz")
    if request.param == "card_present":
        deploy(
            data_dir / "models", trained_card_booster(), feature_names=contract.spec.feature_names
        )
    else:
        deploy(data_dir / "models", trained_booster())
    prefix = f"test:fuzz:{os.getpid()}:{request.param}:"
    settings = replace(
        Settings(api_keys=frozenset({API_KEY})),
        contract=contract,
        redis_url=redis_url,
        key_prefix=prefix,
        data_dir=data_dir,
        # This test is about the service's handling of generated input. The server runs in a
        # thread of this process and shares the GIL with the input generator, so a Redis read
        # can stall past the production 80 ms timeout and give a (correct) 503 that is not an
        # input-handling fault. The fast 503 itself is tested in test_service_lifecycle.py.
        redis_timeout_ms=2_000,
    )
    with app_in_thread(settings) as url:
        yield request.param, url
    delete_prefix(redis_url, prefix)


def _operations(base_url: str):
    schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_request_gets_a_server_error(server, mode) -> None:
    """Every operation, valid and invalid data (hypothesis drives the generation)."""
    contract, url = server
    if contract == "card_present":  # the contract's fields, not the built-in ones
        order = _order_schema(url)
        assert {"card", "terminal", "merchant", "mcc"} <= set(order["properties"])
        assert "email" not in order["properties"]
    sent = 0
    for operation in _operations(url):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES // 2 // CONTRACTS[contract],
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case) -> None:
            nonlocal sent
            case.call_and_validate(
                base_url=url,
                headers={"X-API-Key": API_KEY},
                checks=[not_a_server_error, response_schema_conformance],
                timeout=10,
            )
            sent += 1

        try:
            check()
        except Unsatisfiable:  # an operation without input has no invalid variant
            assert mode is GenerationMode.NEGATIVE
    print(f"{contract} {mode}: {sent} generated requests")
    SENT[contract] = SENT.get(contract, 0) + sent


def _order_schema(url: str) -> dict:
    import httpx

    return httpx.get(f"{url}/schema/openapi.json").json()["components"]["schemas"]["Order"]


def test_enough_requests_were_sent() -> None:
    for contract, divisor in CONTRACTS.items():
        sent = SENT.get(contract, 0)
        assert sent >= MIN_REQUESTS // divisor, f"{contract}: only {sent} generated requests"
