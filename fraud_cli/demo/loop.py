"""The feedback loop in the demo (issue 16): before the held-back day's file lands, the scoring
service scores that day's orders as a shop would send them, and an analyst confirms some of its
frauds through `/v1/labels`. After the file lands, the daemon's sensors drain the decision log
into `scored_orders` and the labels into `labels`, compare the served features with the offline
ones (`serving_skew`) and judge the day with the labels known so far (`model_performance`); the
demo prints one line for all of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fraud_cli.demo.context import DemoContext

BATCH = 250  # orders per request, in time order
ANALYST_DELAY_H = 2  # an analyst confirms a fraud this long after the order (within its day)
LOOP_JOBS = (
    "feedback_drain_job",
    "served_days_job",
    "labels_job",
    "model_performance_job",
    "serving_skew_job",
)


@dataclass(frozen=True)
class Loop:
    day: date
    scored: int
    labels: int


def _forget_earlier_answers(order_ids: list[str]) -> None:
    """A demo run again on the same Redis would find these orders' answers stored by the last
    run and answer them from there (the service recognises a replay across store loads), so the
    new store would never see them: the demo removes its own earlier answers first."""
    import os

    from fraud_assets.lib.redis_clients import connect, coordinator
    from fraud_core.online_keys import OnlineKeys
    from fraud_core.redis_server import DEFAULT_REDIS_URL, ENV_VAR

    keys = OnlineKeys.from_env()
    client = coordinator(connect(os.environ.get(ENV_VAR) or DEFAULT_REDIS_URL), keys)
    try:
        for start in range(0, len(order_ids), 1_000):
            client.unlink(*(keys.scored(o) for o in order_ids[start : start + 1_000]))
    finally:
        client.close()


def serve_the_coming_day(ctx: DemoContext) -> Loop | None:
    """Score the held-back day's orders through the service before their file lands and post
    the analyst's labels (they carry the order's date: a label of that day's order reaches no
    feature before the order's risk window does, so the day's features need no second run)."""
    import httpx
    import pandas as pd

    from fraud_cli.demo.context import StepFailed
    from fraud_cli.demo.serving import running_service
    from fraud_core.sample_data import ECOMMERCE, sample_generator

    held = sorted(ctx.layout.held_back.glob("orders_*.parquet"))
    if not held or sample_generator(ctx.contract) != ECOMMERCE:
        return None  # the card-present sample and your own files: the loop is not shown
    orders = pd.concat([pd.read_parquet(p) for p in held], ignore_index=True)
    orders = orders.sort_values(["order_date", "order_id"], kind="stable")
    day = orders["order_date"].min().date()
    end = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
    fraud = orders[orders["is_fraud"].fillna(0) == 1]
    labels = [
        {
            "order_id": str(row.order_id),
            "is_fraud": True,
            "label_date": min(row.order_date + pd.Timedelta(hours=ANALYST_DELAY_H), end)
            .isoformat()
            .replace("+00:00", "Z"),
            "source": "analyst",
        }
        for row in fraud.iloc[::2].itertuples()  # half of them reviewed by the next morning
    ]
    bodies = [
        {
            "order_id": str(r.order_id),
            "order_date": r.order_date.isoformat().replace("+00:00", "Z"),
            "customer_id": str(r.customer_id),
            "email": str(r.email),
            "ip_addr": str(r.ip_addr),
            "order_amount": float(r.order_amount),
        }
        for r in orders.itertuples()
    ]
    _forget_earlier_answers([b["order_id"] for b in bodies])
    with (
        running_service(ctx) as (base, api_key),
        httpx.Client(base_url=base, headers={"X-API-Key": api_key}, timeout=30) as client,
    ):
        for start in range(0, len(bodies), BATCH):
            got = client.post("/v1/score/batch", json={"orders": bodies[start : start + BATCH]})
            if got.status_code != 200:
                raise StepFailed(f"scoring the coming day failed: {got.status_code} {got.text}")
        for label in labels:
            got = client.post("/v1/labels", json=label)
            if got.status_code != 200:
                raise StepFailed(f"posting a label failed: {got.status_code} {got.text}")
    print(
        f"    the service scored the {len(bodies):,} orders of {day} as they came; an analyst "
        f"confirmed {len(labels)} frauds (/v1/labels)"
    )
    return Loop(day, len(bodies), len(labels))


def report_loop(ctx: DemoContext, loop: Loop, since: float) -> None:
    """Once the sensors have settled: the loop's runs succeeded, and the day's skew and
    performance in one line (its runs print no summary of their own: `LOOP_JOBS`)."""
    from fraud_cli.demo.context import StepFailed

    runs = [r for r in ctx.dagster.runs_since(since) if r.job_name in LOOP_JOBS]
    failed = [f"{r.job_name} {r.run_id[:8]}" for r in runs if not r.is_success]
    if failed:
        raise StepFailed(f"runs of the loop failed: {', '.join(failed)} (see `make dev`, Runs)")
    skew, performance = ctx.layout.serving_skew(loop.day), ctx.layout.model_performance(loop.day)
    if not all(p.exists() and p.stat().st_mtime >= since for p in (skew, performance)):
        raise StepFailed(f"the sensors did not judge {loop.day} (see `make dev`, Automation)")
    figures = json.loads(skew.read_text())
    judged = json.loads(performance.read_text())
    day = judged["all"]
    share = figures["share"] if figures["share"] is not None else float("nan")
    review = day["precision_at_review"]
    print(
        f"    loop ({len(runs)} runs): {figures['served']:,} scored orders of {loop.day}; serving "
        f"skew {share:.1%} of {figures['compared']:,} compared; {day['labelled_fraud']} frauds "
        f"known, precision at review {'-' if review is None else f'{review:.2f}'}, labels "
        f"{judged['maturity_days']:.1f} days old ({'mature' if judged['mature'] else 'young'})"
    )
