"""The serving end of `fraud demo`: start the scoring service on the online store and the deployed
model, score three orders (a known customer, a new one, an obvious fraud; under the card-present
contract a known card, a new one, a stolen one), print the answers and the API key, stop the
service.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from fraud_core.net import free_port

if TYPE_CHECKING:
    from fraud_cli.demo.context import DemoContext

_HEADER = "X-API-Key"


def _recent_orders(ctx: DemoContext):
    """The validated orders of the demo's last week."""
    import pandas as pd
    import pyarrow.parquet as pq

    frames = [
        pq.read_table(ctx.layout.raw_orders(ctx.last_day - pd.Timedelta(days=d))).to_pandas()
        for d in range(7)
        if ctx.layout.raw_orders(ctx.last_day - pd.Timedelta(days=d)).exists()
    ]
    return pd.concat(frames, ignore_index=True)


def _card_orders(ctx: DemoContext) -> list[tuple[str, dict]]:
    """Card-present transactions placed now: a regular card where it always pays, a card never
    seen, and a stolen card (a few small manual payments to test it, then a large one at an
    electronics or jewellery merchant it never used)."""
    import pandas as pd

    from fraud_core.card_generator import CASH_OUT_MCCS

    orders = _recent_orders(ctx)
    honest = orders[orders["is_fraud"].fillna(0) == 0]
    cards = honest["card"].value_counts().index
    regular, victim = cards[0], cards[1]
    usual = honest[honest["card"] == regular].iloc[-1]
    shop = honest[~honest["mcc"].isin(CASH_OUT_MCCS)].iloc[-1]
    cash_out = orders[orders["mcc"].isin(CASH_OUT_MCCS)]
    cash_out = cash_out.iloc[-1] if len(cash_out) else shop
    start = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(minutes=10)
    run = secrets.token_hex(3)

    def txn(name: str, at: pd.Timestamp, card, where, amount: float, entry: str, km=None) -> dict:
        return {
            "order_id": f"demo-{run}-{name}",
            "order_date": at.isoformat().replace("+00:00", "Z"),
            "card": str(card),
            "terminal": str(where["terminal"]),
            "merchant": str(where["merchant"]),
            "order_amount": round(float(amount), 2),
            "mcc": str(where["mcc"]),
            "entry_mode": entry,
            # how far from the card's home: where it usually pays, or as given
            "distance_km": float(where["distance_km"] if km is None else km),
        }

    tests = [
        txn(f"probe{i}", start + pd.Timedelta(minutes=i), victim, shop, 1.0, "manual")
        for i in range(3)
    ]
    return [
        (
            "known card",
            txn("known", start, regular, usual, usual["order_amount"], str(usual["entry_mode"])),
        ),
        ("new card", txn("new", start, f"K-new-{run}", shop, 42.0, "chip")),
        *[("(card testing)", t) for t in tests],
        (
            "stolen card",
            txn("fraud", start + pd.Timedelta(minutes=5), victim, cash_out, 2_400.0, "swipe", 480),
        ),
    ]


def _orders(ctx: DemoContext) -> list[tuple[str, dict]]:
    """Three orders placed now: a regular of the shop, someone new, and an
    account takeover (a known customer from a new e-mail, through an IP used by earlier fraud,
    for far more than usual, after a quick burst of small test orders)."""
    import pandas as pd

    orders = _recent_orders(ctx)
    honest = orders[orders["is_fraud"].fillna(0) == 0]
    regular = honest["customer_id"].value_counts().index[0]
    usual = honest[honest["customer_id"] == regular].iloc[-1]
    fraud_ips = orders.loc[orders["is_fraud"].fillna(0) == 1, "ip_addr"].value_counts()
    bad_ip = fraud_ips.index[0] if len(fraud_ips) else "203.0.113.66"
    victim = honest["customer_id"].value_counts().index[1]
    # Orders placed now, as a shop's checkout sends them: after every day the store has seen.
    start = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(minutes=10)
    run = secrets.token_hex(3)

    def order(name: str, at: pd.Timestamp, customer, email, ip, amount: float) -> dict:
        return {
            "order_id": f"demo-{run}-{name}",
            "order_date": at.isoformat().replace("+00:00", "Z"),
            "customer_id": str(customer),
            "email": str(email),
            "ip_addr": str(ip),
            "order_amount": round(float(amount), 2),
        }

    burst = [
        order(
            f"probe{i}",
            start + pd.Timedelta(minutes=i),
            victim,
            f"x{run}@mailinator.example",
            bad_ip,
            1.0,
        )
        for i in range(4)
    ]
    return [
        (
            "known customer",
            order("known", start, regular, usual["email"], usual["ip_addr"], usual["order_amount"]),
        ),
        (
            "new customer",
            order("new", start, f"C-new-{run}", f"new-{run}@example.com", "198.51.100.23", 42.0),
        ),
        *[("(card-testing burst)", b) for b in burst],
        (
            "obvious fraud",
            order(
                "fraud",
                start + pd.Timedelta(minutes=5),
                victim,
                f"x{run}@mailinator.example",
                bad_ip,
                2_400.0,
            ),
        ),
    ]


@contextlib.contextmanager
def running_service(ctx: DemoContext) -> Iterator[tuple[str, str]]:
    """`fraud serve` on a free port with a fresh API key, ready: (its URL, the key); stopped
    afterwards."""
    import httpx

    from fraud_cli.demo.context import StepFailed

    api_key = secrets.token_urlsafe(18)
    port = free_port()
    # an admin key (the demo also edits lists and policies), shown with its id "demo"
    env = dict(
        os.environ, FRAUD_API_KEYS=f"admin:demo:{api_key}", FRAUD_DATA_DIR=str(ctx.layout.root)
    )
    command = [
        sys.executable,
        "-m",
        "fraud_cli.main",
        "serve",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(command, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise StepFailed("the scoring service did not become ready (see its output above)")
            time.sleep(0.2)
        yield base, api_key
    finally:
        with contextlib.suppress(ProcessLookupError):  # exited on its own: said above
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)


def score_with_the_service(ctx: DemoContext) -> None:
    import httpx

    from fraud_cli.demo.context import StepFailed
    from fraud_cli.demo.controls import (
        show_review_console,
        show_team_controls,
        start_policy_replay,
    )
    from fraud_core.contract.loader import unserved_terms
    from fraud_core.contract.request import request_fields
    from fraud_core.model.artifact import current_version
    from fraud_core.sample_data import CARD_PRESENT, ECOMMERCE, sample_generator

    unserved = unserved_terms(ctx.contract)
    if unserved:
        print(
            f"    skipped: the scoring service cannot serve contract {ctx.contract.name!r} "
            f"({unserved[0]}); its model and online store are ready"
        )
        return
    generator = sample_generator(ctx.contract)
    if generator == CARD_PRESENT:
        samples = _card_orders(ctx)
    elif generator == ECOMMERCE:
        samples = _orders(ctx)
    else:
        print(
            "    skipped: the demo has sample orders for the built-in and the card-present "
            f"entities; the model and online store of {ctx.contract.name!r} are ready: "
            "`fraud serve`, then POST /v1/score"
        )
        return
    primary = request_fields(ctx.contract)[ctx.contract.primary.name]  # its request field
    if current_version(ctx.layout.models) is None:
        raise StepFailed(
            f"no model deployed in {ctx.layout.models}: the training steps must run first"
        )
    pending = start_policy_replay(ctx)  # its run worker starts while the service does
    with running_service(ctx) as (base, api_key):
        model = httpx.get(f"{base}/v1/model", headers={_HEADER: api_key}).json()["version"]
        print(f"    service on {base} (model {model}); API key for this run: {api_key}")
        with httpx.Client(base_url=base, headers={_HEADER: api_key}, timeout=10) as client:
            for label, order in samples:
                r = client.post("/v1/score", json=order)
                if r.status_code != 200:
                    raise StepFailed(f"scoring {label} failed: {r.status_code} {r.text}")
                answer = r.json()
                if label.startswith("("):
                    continue
                reasons = ", ".join(
                    f"{x['feature']}={x['value']} ({x['contribution']:+.2f})"
                    for x in answer["reasons"]
                )
                new = f", new: {'/'.join(answer['new_entities'])}" if answer["new_entities"] else ""
                print(
                    f"    {label:<15} {order[primary]:<18} {order['order_amount']:>9.2f} -> "
                    f"score {answer['score']:.3f} {answer['decision'].upper()}{new}\n"
                    f"                    reasons: {reasons}"
                )
            show_team_controls(ctx, client, samples[1][1], primary, pending)
            show_review_console(client)
        example = json.dumps({**order, "order_id": "my-order-1"})
        print(
            f"    try it: fraud serve, then curl -s -H '{_HEADER}: <key>' -H 'Content-Type: application/json' "
            f"-d '{example}' http://127.0.0.1:8000/v1/score"
        )
