"""The review console and `/v1/reviews` over HTTP on a real Redis: sign-in with an analyst key,
the session cookie's flags, CSRF on every form, the queue read from the decision log (stream and
drained segments, each entry once), ranked and filtered, and verdicts that are labels: in the
entities' states, in the label feed, in the audit trail, out of the queue, seen by the customer's
next order. Attacker-controlled values show escaped; a digest-only entity says so."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgpack
import pytest
import redis
from litestar.testing import TestClient

from fraud_assets.lib.decision_drain import drain_decisions
from fraud_core.labels import LABEL_FIELD
from fraud_core.online_keys import OnlineKeys
from fraud_core.storage import DataLayout
from fraud_serving.app import create_app
from fraud_serving.routes.console import SIGN_IN_TRIES_PER_MINUTE
from fraud_serving.services.review import READ_CHUNK
from fraud_serving.settings import Settings

from .conftest import REDIS_MODES
from .support import payload, small_orders
from .test_contract_requests import CONTRACT, KEY_ENV

SCORING, ANALYST, ADMIN = "scoring-secret-1", "analyst-secret-1", "admin-secret-1"
KEYS = frozenset({f"scoring:shop:{SCORING}", f"analyst:ana:{ANALYST}", f"admin:boss:{ADMIN}"})
# the block list declines; every other order of 100 or more goes to review, whatever its score
REVIEW_BIG = (
    "name: p\nrules:\n"
    '  - name: block_listed\n    when: listed("block")\n    action: decline\n'
    "  - name: big\n    when: amount >= 100\n    action: review\n"
)
TOKEN = re.compile(r'name="_csrf_token" value="([^"]+)"')


def _as(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def _settings(data_dir: Path, redis_url: str, prefix: str, **more) -> Settings:
    return Settings(
        api_keys=KEYS,
        redis_url=redis_url,
        key_prefix=prefix,
        data_dir=data_dir,
        model_poll_s=0.1,
        **more,
    )


def _review_everything_big(http: TestClient) -> None:
    saved = http.post("/v1/policy", json={"text": REVIEW_BIG, "reason": "t"}, headers=_as(ADMIN))
    assert saved.status_code == 201, saved.text
    version = saved.json()["version"]
    r = http.post("/v1/policy/active", json={"version": version, "reason": "t"}, headers=_as(ADMIN))
    assert r.status_code == 200, r.text


@pytest.fixture
def console(
    data_dir: Path, store_url: str, redis_mode: str, prefix: str, model
) -> Iterator[TestClient]:
    settings = _settings(data_dir, store_url, prefix, redis_cluster=redis_mode == "cluster")
    with TestClient(create_app(settings)) as http:
        _review_everything_big(http)
        yield http


def _orders(n: int, start: int = 0, tag: str = "") -> list[dict]:
    rows = small_orders().iloc[start : start + n]
    return [{**payload(r), "order_id": f"{r['order_id']}{tag}"} for _, r in rows.iterrows()]


def _score(http: TestClient, order: dict) -> dict:
    r = http.post("/v1/score", json=order, headers=_as(SCORING))
    assert r.status_code == 200, r.text
    return r.json()


def _token(http: TestClient, path: str = "/console/login") -> str:
    page = http.get(path)
    assert page.status_code == 200, page.text
    return TOKEN.search(page.text).group(1)


def _sign_in(http: TestClient, key: str = ANALYST) -> str:
    """Signs the client in; the CSRF token for its forms."""
    token = _token(http)
    r = http.post(
        "/console/login", data={"key": key, "_csrf_token": token, "next": "/console/queue"}
    )
    assert r.status_code == 200 and r.url.path == "/console/queue", r.text
    return token


def _pending(http: TestClient, **params) -> dict:
    r = http.get("/v1/reviews", params={"per_page": 200, **params}, headers=_as(ANALYST))
    assert r.status_code == 200, r.text
    return r.json()


def _scored_reviews(http: TestClient, n: int, tag: str = "", start: int = 0) -> list[dict]:
    """n orders of 100 to 100 + 30n (in review by the policy), scored."""
    orders = _orders(n, start, tag)
    # risk windows end a week before an order: a next order today sees labels of these
    recent = datetime.now(UTC) - timedelta(days=8)
    for i, order in enumerate(orders):
        order["order_amount"] = 100.0 + 30 * i
        order["order_date"] = (recent + timedelta(minutes=i)).isoformat()
        assert _score(http, order)["decision"] == "review"
    return orders


def _label_entries(redis_url: str, prefix: str) -> list[list]:
    client = redis.Redis.from_url(redis_url)
    entries = client.xrange(OnlineKeys(prefix).labels)
    return [msgpack.unpackb(fields[LABEL_FIELD]) for _, fields in entries]


def _audit(data_dir: Path) -> list[dict]:
    folder = Path(DataLayout(data_dir).audit)
    return [json.loads(line) for p in sorted(folder.glob("*.jsonl")) for line in p.open()]


def test_sign_in_needs_an_analyst_key_a_csrf_token_and_a_configured_key(
    console: TestClient, data_dir: Path, redis_url: str, prefix: str
) -> None:
    first = console.get("/console/queue?day=2030-01-01", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/console/login?next=%2Fconsole%2Fqueue%3Fday%3D2030-01-01"
    assert console.get("/v1/reviews", headers=_as(SCORING)).status_code == 403
    assert console.get("/v1/reviews").status_code == 401

    token = _token(console)
    # a form posted from an expired session goes to the sign-in, then to the queue (the form's
    # route takes only a POST)
    posted = console.post(
        "/console/order/verdict",
        data={"order_id": "x", "_csrf_token": token},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    assert posted.headers["location"] == "/console/login?next=%2Fconsole%2Fqueue"
    no_token = console.post("/console/login", data={"key": ANALYST}, follow_redirects=False)
    assert no_token.status_code == 403
    scoring = console.post(
        "/console/login", data={"key": SCORING, "_csrf_token": token}, follow_redirects=False
    )
    assert scoring.status_code == 401 and "analyst role" in scoring.text
    assert "fraud_console=" not in scoring.headers.get("set-cookie", "")

    # an open redirect is not followed: the target stays inside the console
    signed = console.post(
        "/console/login",
        data={"key": ANALYST, "_csrf_token": token, "next": "//evil.example/console"},
        follow_redirects=False,
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/console"
    cookie = next(
        c for c in signed.headers.get_list("set-cookie") if c.startswith("fraud_console=")
    )
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/console"} <= flags
    assert ANALYST not in cookie and "ana" not in cookie.split(";")[0]  # encrypted, no key in it
    page = console.get("/console/queue")
    assert page.status_code == 200 and "signed in as <b>ana</b>" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"

    # the same cookie, once the key is no longer configured (same console secret): signed out
    secret = console.app.state.settings.console_secret
    narrowed = replace(
        _settings(data_dir, redis_url, prefix), api_keys=frozenset({f"admin:boss:{ADMIN}"})
    )
    with TestClient(create_app(replace(narrowed, console_secret=secret))) as other:
        other.cookies = console.cookies
        assert other.get("/console/queue", follow_redirects=False).status_code == 303

    out = console.post("/console/logout", data={"_csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    assert console.get("/console/queue", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("redis_mode", REDIS_MODES, indirect=True)
def test_the_queue_ranks_filters_and_pages_the_pending_reviews(console: TestClient) -> None:
    orders = _scored_reviews(console, 8, "-q")
    small = _orders(4, 20, "-q")
    for order in small:
        order["order_amount"] = 10.0
        assert _score(console, order)["decision"] != "review"
    queue = _pending(console)
    assert queue["pending"] == queue["total"] == 8
    ids = [o["order_id"] for o in queue["orders"]]
    assert set(ids) == {o["order_id"] for o in orders}
    risk = [o["score"] * o["order_amount"] for o in queue["orders"]]
    assert risk == sorted(risk, reverse=True)
    newest = [o["order_date"] for o in _pending(console, sort="newest")["orders"]]
    assert newest == sorted(newest, reverse=True)

    big = _pending(console, min_amount=250)
    assert big["total"] == 3 and big["pending"] == 8
    assert all(o["order_amount"] >= 250 for o in big["orders"])
    assert _pending(console, rule="big")["total"] == 8
    assert _pending(console, rule="none")["total"] == 0
    paged = _pending(console, per_page=3, page=3)
    assert paged["pages"] == 3 and len(paged["orders"]) == 2
    assert sum(_pending(console)["backlog"].values()) == 8

    bad = console.get("/v1/reviews?sort=random", headers=_as(ANALYST))
    assert bad.status_code == 400 and "sort" in bad.text
    _sign_in(console)
    page = console.get("/console/queue?min_amount=250")
    assert page.status_code == 200
    assert page.text.count('class="order-link"') == 3 and "3 of 8 waiting" in page.text
    refused = console.get("/console/queue?min_amount=lots")
    assert refused.status_code == 400 and "min_amount" in refused.text
    overview = console.get("/console/")
    assert overview.status_code == 200 and '<span class="n" id="pending">8</span>' in overview.text


def test_a_verdict_is_a_label_in_the_states_the_feed_and_the_audit_and_leaves_the_queue(
    console: TestClient, data_dir: Path, redis_url: str, prefix: str
) -> None:
    orders = _scored_reviews(console, 3, "-v")
    target = orders[0]
    token = _sign_in(console)
    page = console.get("/console/order", params={"id": target["order_id"]})
    assert page.status_code == 200 and "Waiting for review." in page.text
    assert 'id="decision">REVIEW<' in page.text

    form = {"order_id": target["order_id"], "verdict": "fraud", "note": "card testing", "next": "/console/queue"}  # fmt: skip
    refused = console.post("/console/order/verdict", data=form, follow_redirects=False)
    assert refused.status_code == 403  # no CSRF token
    assert target["order_id"] in {o["order_id"] for o in _pending(console)["orders"]}

    done = console.post("/console/order/verdict", data={**form, "_csrf_token": token})
    assert done.status_code == 200 and done.url.path == "/console/queue"
    assert "1 marked" in done.text
    assert target["order_id"] not in {o["order_id"] for o in _pending(console)["orders"]}
    assert _pending(console)["pending"] == 2

    # the label feed: one entry, source analyst, from the console with the key's id
    (entry,) = _label_entries(redis_url, prefix)
    assert entry[1] == target["order_id"] and entry[2] is True
    assert entry[4] == "analyst" and entry[5] == "console:ana"
    # the online state: the customer's history holds the order as fraud
    state = console.get(f"/v1/entities/customer_id/{target['customer_id']}", headers=_as(ANALYST))
    event = next(e for e in state.json()["events"] if e["order_id"] == target["order_id"])
    assert event["fraud_label_date"] is not None
    # the audit trail: who, what, why
    (record,) = [r for r in _audit(data_dir) if r["action"] == "review.verdict"]
    assert record["actor"] == "key:ana" and record["target"] == f"order:{target['order_id']}"
    assert record["reason"] == "card testing" and record["after"] == "fraud"
    shown = console.get("/console/order", params={"id": target["order_id"]})
    assert "Marked <b>fraud</b>" in shown.text and "card testing" in shown.text
    entity = console.get(
        "/console/entity", params={"kind": "customer_id", "key": target["customer_id"]}
    )
    assert entity.status_code == 200 and "1 labelled fraud" in entity.text
    assert target["order_id"] in entity.text
    assert console.get("/console/entity", params={"kind": "shoe", "key": "x"}).status_code == 400

    # the same verdict again changes nothing (idempotent); another one is a change, audited
    again = console.post("/console/order/verdict", data={**form, "_csrf_token": token})
    assert "0 marked, 1 unchanged" in again.text
    # the message is shown once, from the session: a link cannot put text on a page
    assert 'class="msg"' not in console.get("/console/queue").text
    assert 'class="msg"' not in console.get("/console/queue?msg=hello").text
    assert len(_label_entries(redis_url, prefix)) == 1
    console.post(
        "/console/order/verdict", data={**form, "verdict": "legitimate", "_csrf_token": token}
    )
    assert [e[2] for e in _label_entries(redis_url, prefix)] == [True, False]
    changes = [r for r in _audit(data_dir) if r["action"] == "review.verdict"]
    assert [(r["before"], r["after"]) for r in changes] == [
        (None, "fraud"),
        ("fraud", "legitimate"),
    ]
    console.post("/console/order/verdict", data={**form, "_csrf_token": token})  # fraud again

    # the customer's next order sees the label in its risk features (known from now on)
    later = datetime.now(UTC) + timedelta(seconds=5)
    nxt = {**target, "order_id": "next-of-v", "order_date": later.isoformat()}
    features = console.post("/v1/score?features=true", json=nxt, headers=_as(SCORING)).json()
    labelled = {k: v for k, v in features["features"].items() if "fraud" in k and "customer" in k}
    assert labelled and any(v and v > 0 for v in labelled.values()), labelled


@pytest.mark.parametrize("redis_mode", REDIS_MODES, indirect=True)
def test_an_api_label_also_takes_the_order_out_of_the_queue(console: TestClient) -> None:
    orders = _scored_reviews(console, 2, "-l")
    label = {
        "order_id": orders[1]["order_id"],
        "is_fraud": True,
        "label_date": (datetime.now(UTC)).isoformat(),
        "source": "chargeback",
    }
    assert console.post("/v1/labels", json=label, headers=_as(ANALYST)).status_code == 200
    assert [o["order_id"] for o in _pending(console)["orders"]] == [orders[0]["order_id"]]


def test_bulk_verdicts_and_a_list_entry_from_the_console(
    console: TestClient, data_dir: Path
) -> None:
    orders = _scored_reviews(console, 4, "-b")
    token = _sign_in(console)
    chosen = [orders[0]["order_id"], orders[2]["order_id"]]
    r = console.post(
        "/console/queue/verdict",
        data={"order_id": chosen, "verdict": "legitimate", "_csrf_token": token,
              "next": "/console/queue?sort=newest"},
    )  # fmt: skip
    assert r.status_code == 200 and "2 marked" in r.text and r.url.params["sort"] == "newest"
    # the page a verdict returns to keeps the filter, not the last verdict's message
    assert 'name="next" value="/console/queue?sort=newest"' in r.text
    assert console.get("/console/queue/verdict").status_code == 405  # the console's error page
    assert {o["order_id"] for o in _pending(console)["orders"]} == {
        orders[1]["order_id"],
        orders[3]["order_id"],
    }
    bad = console.post(
        "/console/queue/verdict",
        data={"order_id": chosen, "verdict": "maybe", "_csrf_token": token},
    )
    assert bad.status_code == 400 and "verdict" in bad.text

    # block the e-mail of a pending order from its page: its next order is declined
    email = orders[1]["email"]
    added = console.post(
        "/console/order/list",
        data={"order_id": orders[1]["order_id"], "kind": "email", "key": email, "list": "block",
              "reason": "mule", "_csrf_token": token},
    )  # fmt: skip
    assert added.status_code == 200 and "added to the block list" in added.text
    entries = console.get("/v1/lists", headers=_as(ANALYST)).json()["entries"]
    assert [(e["list"], e["key"], e["author"]) for e in entries] == [("block", email, "key:ana")]
    nxt = _score(console, {**orders[1], "order_id": "after-block", "order_amount": 20.0})
    assert nxt["decision"] == "decline" and nxt["list_hits"] == ["block:email"]


def test_the_queue_reads_the_stream_and_the_drained_segments_each_entry_once(
    console: TestClient, data_dir: Path, redis_url: str, prefix: str, model
) -> None:
    first = _scored_reviews(console, 5, "-s1")
    assert _pending(console)["pending"] == 5  # read from the stream
    report = drain_decisions(
        redis.Redis.from_url(redis_url), OnlineKeys(prefix), DataLayout(data_dir)
    )
    assert report.drained == 5 and report.remaining == 0
    second = _scored_reviews(console, 3, "-s2", start=10)
    queue = _pending(console)
    expected = {o["order_id"] for o in first + second}
    assert queue["pending"] == 8 and {o["order_id"] for o in queue["orders"]} == expected
    # a damaged segment is skipped (and logged), not a failed page
    Path(DataLayout(data_dir).decision_log_segment("1-0")).write_bytes(b"not parquet")
    # a new worker: the segment and the stream
    with TestClient(create_app(_settings(data_dir, redis_url, prefix))) as fresh:
        again = fresh.get("/v1/reviews", headers=_as(ANALYST)).json()
        assert again["pending"] == 8
        _sign_in(fresh)
        shown = fresh.get("/console/order", params={"id": first[0]["order_id"]})
        assert "from the decision log" in shown.text and "Waiting for review." in shown.text


def test_order_fields_show_escaped_and_a_digest_only_entity_says_so(
    data_dir: Path, redis_url: str, prefix: str, model
) -> None:
    settings = replace(
        _settings(data_dir, redis_url, prefix),
        contract=CONTRACT,
        privacy_key=KEY_ENV["SHOP_KEY"].encode(),
    )
    hostile = '<script>alert("x")</script>'
    with TestClient(create_app(settings)) as http:
        _review_everything_big(http)
        order = {**_orders(1, 0, "-x")[0], "customer_id": hostile, "order_amount": 400.0}
        assert _score(http, order)["decision"] == "review"
        _sign_in(http)
        page = http.get("/console/order", params={"id": order["order_id"]})
        assert page.status_code == 200
        assert (
            hostile not in page.text
            and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
        )
        assert "stored only as a keyed digest" in page.text
        assert order["email"] not in page.text  # only its digest is kept, and shown
        queue = http.get("/console/queue")
        assert hostile not in queue.text


def test_sign_in_tries_are_limited_per_address(console: TestClient) -> None:
    token = _token(console)
    codes = [
        console.post(
            "/console/login", data={"key": f"guess-{i}-xxxxxxxx", "_csrf_token": token}
        ).status_code
        for i in range(SIGN_IN_TRIES_PER_MINUTE + 2)
    ]
    assert codes[:SIGN_IN_TRIES_PER_MINUTE] == [401] * SIGN_IN_TRIES_PER_MINUTE
    assert codes[-1] == 429
    refused = console.post("/console/login", data={"key": ANALYST, "_csrf_token": token})
    assert refused.status_code == 429 and "Too many sign-in tries" in refused.text
    assert console.get("/console/login").status_code == 200  # the form itself is not limited


def test_console_inputs_and_sessions_are_bounded(
    data_dir: Path, redis_url: str, prefix: str, model
) -> None:
    settings = _settings(data_dir, redis_url, prefix, console_session_s=2)
    with TestClient(create_app(settings)) as http:
        _review_everything_big(http)
        (order,) = _scored_reviews(http, 1, "-i")
        token = _sign_in(http)
        # a list entry that never ends would break the lists' listing: refused, as the API does
        huge = http.post(
            "/console/order/list",
            data={"order_id": order["order_id"], "kind": "email", "key": order["email"],
                  "list": "block", "days": "inf", "_csrf_token": token},
        )  # fmt: skip
        assert huge.status_code == 400 and "days" in huge.text
        assert http.get("/v1/lists", headers=_as(ANALYST)).json()["entries"] == []
        many = [f"o{i}" for i in range(201)]
        bulk = http.post(
            "/console/queue/verdict",
            data={"order_id": many, "verdict": "fraud", "_csrf_token": token},
        )
        assert bulk.status_code == 400 and "at most 200" in bulk.text
        # error pages carry the console's headers too
        assert "default-src 'self'" in bulk.headers["content-security-policy"]
        # no way out of /console through the sign-in's target
        out = http.post(
            "/console/login",
            data={"key": ANALYST, "_csrf_token": token, "next": "/console/../v1/reviews"},
            follow_redirects=False,
        )
        assert out.headers["location"] == "/console"
        # an unreadable verdict record is no verdict, not a failed page
        day = datetime.fromisoformat(order["order_date"]).date()
        redis.Redis.from_url(redis_url).hset(
            OnlineKeys(prefix).review_verdicts(day), order["order_id"], b"\x93\x01"
        )
        redis.Redis.from_url(redis_url).incr(OnlineKeys(prefix).review_version)
        page = http.get("/console/order", params={"id": order["order_id"]})
        assert page.status_code == 200 and "Waiting for review." in page.text
        # entries of the stream that are no decision do not stop the reading
        with redis.Redis.from_url(redis_url).pipeline() as pipe:
            for _ in range(READ_CHUNK + 1):  # a whole read of them, and one more
                pipe.xadd(OnlineKeys(prefix).decisions, {b"other": b"x"})
            pipe.execute()
        (later,) = _scored_reviews(http, 1, "-j", start=30)
        assert later["order_id"] in {o["order_id"] for o in _pending(http)["orders"]}
        # a sign-in lasts console_session_s, however often its cookie is renewed
        time.sleep(2.2)
        assert http.get("/console/queue", follow_redirects=False).status_code == 303
