"""A service killed with SIGKILL in the middle of traffic loses no decision and logs none twice
(issue 16): `fraud serve` as a real process on a real Redis, four clients sending orders, a
`kill -9`, a restart, the clients sending again whatever they got no answer for; then the drain.
Every order with a stored answer appears in `scored_orders` exactly once, as it was answered, and
the log holds one entry per stored answer (none for a commit that died with the process)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pandas as pd

from fraud_assets.lib.decision_drain import drain_decisions
from fraud_core.decision_log import scored_orders_of_day
from fraud_core.net import free_port
from fraud_core.storage import DataLayout

from ..serving.support import deploy, payload, small_orders, trained_booster
from .conftest import poll

API_KEY = "crash-test-key"
CLIENTS = 4
KILL_AFTER = 80  # answers before the kill


def _serve(data: Path, redis_url: str, prefix: str, port: int, log: Path) -> subprocess.Popen:
    env = dict(
        os.environ,
        FRAUD_API_KEYS=API_KEY,
        REDIS_URL=redis_url,
        FRAUD_REDIS_PREFIX=prefix,
        FRAUD_DATA_DIR=str(data),
    )
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "fraud_cli.main", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    assert poll(ready, 60), log.read_text()[-3000:]
    return process


def _send(
    port: int, bodies: list[dict], answers: dict, stop: threading.Event, replayed: list
) -> None:
    """The clients: each order once, from a shared queue; an answer is kept (and, when the
    service answered from its stored result, the order id in `replayed`), anything else (the
    service died mid-request) leaves the order unanswered."""
    work: queue.Queue = queue.Queue()
    for body in bodies:
        work.put(body)

    def client() -> None:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": API_KEY}, timeout=10
        ) as http:
            while not stop.is_set():
                try:
                    body = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    got = http.post("/v1/score", json=body)
                except httpx.HTTPError:
                    continue  # no answer: sent again after the restart
                if got.status_code == 200:
                    answers[body["order_id"]] = got.json()
                    if got.headers.get("Idempotent-Replayed") == "true":
                        replayed.append(body["order_id"])

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)


def test_a_killed_service_loses_no_decision_and_logs_none_twice(store, tmp_path):
    redis_url, keys, client = store
    deploy(tmp_path / "models", trained_booster())
    orders = small_orders().tail(250).reset_index(drop=True)
    yesterday = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=1)).floor("D")
    orders["order_date"] = [yesterday + pd.Timedelta(seconds=200 * i) for i in range(len(orders))]
    bodies = [payload(row) for _, row in orders.iterrows()]
    port = free_port()
    log = tmp_path / "serve.log"

    first: dict = {}
    stop = threading.Event()
    service = _serve(tmp_path, redis_url, keys.prefix, port, log)
    sender = threading.Thread(target=_send, args=(port, bodies, first, stop, []))
    sender.start()
    assert poll(lambda: len(first) >= KILL_AFTER, 120), len(first)
    os.kill(service.pid, signal.SIGKILL)  # mid-traffic: some requests are in flight
    service.wait(timeout=10)
    stop.set()
    sender.join(timeout=60)
    answered_before = dict(first)
    assert KILL_AFTER <= len(answered_before) < len(bodies)

    # restarted: every order without an answer is sent again (a stored one is a replay)
    second: dict = {}
    replayed: list = []
    service = _serve(tmp_path, redis_url, keys.prefix, port, log)
    try:
        _send(
            port,
            [b for b in bodies if b["order_id"] not in answered_before],
            second,
            stop=threading.Event(),
            replayed=replayed,
        )
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=30)
    answers = {**answered_before, **second}
    assert set(answers) == {b["order_id"] for b in bodies}
    # a replay is an order stored when the process died and never answered: never one answered
    assert not set(replayed) & set(answered_before)

    # one entry per stored answer: as many as orders, none twice
    entries = client.xlen(keys.decisions)
    assert entries == len(bodies), (entries, len(bodies))
    layout = DataLayout(tmp_path)
    report = drain_decisions(client, keys, layout)
    assert report.drained == len(bodies) and report.remaining == 0
    table = scored_orders_of_day(layout.decision_log_segments(), yesterday.date()).to_pandas()
    assert sorted(table["order_id"]) == sorted(answers)
    for row in table.itertuples():  # what each order was answered, before or after the crash
        assert row.score == answers[row.order_id]["score"], row.order_id
        assert row.decision == answers[row.order_id]["decision"]
