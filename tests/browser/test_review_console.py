"""The review console (`/console`) in a real, offline Chromium: the app runs under uvicorn over
real HTTP on the real Redis (a key prefix of its own), a policy sends orders of 100 or more to
REVIEW, and an analyst signs in, filters the queue, opens an order, marks it fraud with the
keyboard and lands back on the queue; the verdict must then be a label everywhere the platform
looks (the queue API, the entities' online states, the label feed stream). Also: a scoring key
cannot sign in, a form post without its CSRF token is refused, and a `<script>` sent as an order's
customer id is shown as text and never runs.

Each test saves a full-page screenshot next to its tmp_path when it fails (path in the report).
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import redis
from playwright.sync_api import Page, expect

from fraud_core.labels import LABEL_FIELD, entries_table
from fraud_core.online_keys import OnlineKeys
from fraud_core.redis_server import ensure_redis
from fraud_serving.settings import Settings

from ..serving.support import (
    app_in_thread,
    delete_prefix,
    deploy,
    payload,
    small_orders,
    trained_booster,
    wait_for,
)
from .support import OfflinePage

ANALYST_KEY, ADMIN_KEY, SCORING_KEY = "analyst-secret-1", "admin-secret-1", "scoring-secret-1"
KEYS = frozenset(
    {f"analyst:ana:{ANALYST_KEY}", f"admin:boss:{ADMIN_KEY}", f"scoring:shop:{SCORING_KEY}"}
)
REVIEW_AT = 100.0  # the policy below sends orders of this amount or more to REVIEW
POLICY = f"name: p\nrules:\n  - name: big\n    when: amount >= {REVIEW_AT:g}\n    action: review\n"
SCRIPT = "<script>window.__pwned=1</script>"
VIEWPORT = {"width": 1400, "height": 900}
WAIT_MS = 5_000


@dataclass(frozen=True)
class Service:
    url: str
    prefix: str
    redis_url: str

    def api(self, method: str, path: str, key: str = ANALYST_KEY, **kwargs) -> httpx.Response:
        return httpx.request(
            method, f"{self.url}{path}", headers={"X-API-Key": key}, timeout=10, **kwargs
        )

    def pending(self) -> dict[str, float]:
        """Order id -> amount of every order waiting for review (GET /v1/reviews)."""
        answer = self.api("GET", "/v1/reviews", params={"per_page": 200})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["total"] == len(body["orders"]) <= 200, "more than one page waiting"
        return {o["order_id"]: o["order_amount"] for o in body["orders"]}

    def score(self, tag: str, rows: list[dict]) -> dict[str, dict]:
        """Score the rows as orders of their own (order, customer and e-mail suffixed by `tag`);
        their payloads by order id, each with the decision the service returned."""
        out = {}
        for row in rows:
            body = dict(row)
            body["order_id"] = f"{body['order_id']}-{tag}"
            body["customer_id"] = f"{body['customer_id']}-{tag}"
            body["email"] = f"{tag}-{body['email']}"
            answer = self.api("POST", "/v1/score", key=SCORING_KEY, json=body)
            assert answer.status_code == 200, answer.text
            body["decision"] = answer.json()["decision"]
            out[body["order_id"]] = body
        return out


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[Service]:
    """The app under uvicorn in a thread on the real Redis (own key prefix), a model deployed
    and a policy active that sends orders of 100 or more to REVIEW."""
    redis_handle = ensure_redis()
    prefix = f"test:browser:console:{uuid.uuid4().hex}:"
    data_dir = tmp_path_factory.mktemp("review_console")
    deploy(data_dir / "models", trained_booster())
    settings = Settings(
        api_keys=KEYS,
        redis_url=redis_handle.url,
        key_prefix=prefix,
        data_dir=data_dir,
        model_poll_s=0.1,
    )
    try:
        with app_in_thread(settings) as url:
            running = Service(url, prefix, redis_handle.url)
            wait_for(lambda: running.api("GET", "/ready").status_code == 200, timeout_s=30)
            submitted = running.api(
                "POST", "/v1/policy", key=ADMIN_KEY, json={"text": POLICY, "reason": "t"}
            )
            assert submitted.status_code == 201, submitted.text
            version = submitted.json()["version"]
            activated = running.api(
                "POST",
                "/v1/policy/active",
                key=ADMIN_KEY,
                json={"version": version, "reason": "t"},
            )
            assert activated.status_code == 200, activated.text
            yield running
    finally:
        delete_prefix(redis_handle.url, prefix)
        redis_handle.stop()


def order_rows(start: int, n: int, at_least: float = 0.0) -> list[dict]:
    """`n` orders of `small_orders()` from position `start` on (in time order) whose amount is at
    least `at_least`, as API payloads."""
    orders = small_orders()
    chosen = orders.iloc[start:][orders["order_amount"].iloc[start:] >= at_least].head(n)
    assert len(chosen) == n
    return [payload(row) for _, row in chosen.iterrows()]


@contextlib.contextmanager
def screenshot_on_failure(page: Page, path: Path) -> Iterator[None]:
    """Save a full-page screenshot of `page` at `path` when the body fails (then re-raise)."""
    try:
        yield
    except (Exception, pytest.fail.Exception) as failure:
        try:
            page.screenshot(path=str(path), full_page=True)
            note = f"screenshot of the page at failure: {path}"
        except Exception as error:  # the page itself may be what broke
            note = f"no screenshot ({error!r})"
        print(note)
        failure.add_note(note)
        raise


def console_page(offline_page: OfflinePage) -> Page:
    page = offline_page.page
    page.set_viewport_size(VIEWPORT)
    page.set_default_timeout(WAIT_MS)
    return page


def sign_in(page: Page, base_url: str, key: str, path: str = "/console/queue") -> None:
    """Open `path` signed out (it sends to the sign-in form) and sign in with `key`."""
    page.goto(f"{base_url}{path}")
    expect(page).to_have_url(re.compile(r"/console/login\?next="))
    assert parse_qs(urlsplit(page.url).query)["next"] == [path]
    page.locator("input#key").fill(key)
    page.locator("form[action='/console/login'] button[type=submit]").click()


def session_cookie(page: Page) -> dict | None:
    cookies = [c for c in page.context.cookies() if c["name"] == "fraud_console"]
    return cookies[0] if cookies else None


def queue_ids(page: Page) -> list[str]:
    return page.locator("table.queue tbody tr[data-href] a.order-link").all_inner_texts()


def queue_amounts(page: Page) -> list[float]:
    return [
        float(text)
        for text in page.locator(
            "table.queue tbody tr[data-href] td.num:nth-child(4)"
        ).all_inner_texts()
    ]


def label_entries(service: Service, order_id: str) -> list[dict]:
    """The label feed stream's entries for `order_id`, decoded."""
    client = redis.Redis.from_url(service.redis_url)
    try:
        blobs = [f[LABEL_FIELD] for _, f in client.xrange(OnlineKeys(service.prefix).labels)]
    finally:
        client.close()
    return [e for e in entries_table(blobs).to_pylist() if e["order_id"] == order_id]


def test_analyst_filters_opens_and_marks_fraud_by_keyboard(
    offline_page: OfflinePage, service: Service, tmp_path: Path
) -> None:
    mine = service.score("t1", order_rows(0, 4, at_least=REVIEW_AT))
    assert {o["decision"] for o in mine.values()} == {"review"}
    pending = service.pending()
    assert set(mine) <= set(pending)
    target = max(mine, key=lambda o: mine[o]["order_amount"])
    floor = mine[target]["order_amount"]  # the filter keeps the target and drops the rest of mine
    expected = {o for o, amount in pending.items() if amount >= floor}
    assert target in expected and len(expected) < len(pending)

    page = console_page(offline_page)
    with screenshot_on_failure(page, tmp_path / "mark_fraud.png"):
        sign_in(page, service.url, ANALYST_KEY)
        expect(page).to_have_url(f"{service.url}/console/queue")
        cookie = session_cookie(page)
        assert cookie is not None, "no session cookie after signing in"
        assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (
            True,
            "Strict",
            "/console",
        )
        expect(page.locator("#total")).to_have_text(f"{len(pending)} of {len(pending)} waiting")
        assert sorted(queue_ids(page)) == sorted(pending)

        page.locator("input[name=min_amount]").fill(f"{floor:g}")
        page.locator("form.filters button[type=submit]").click()
        expect(page.locator("#total")).to_have_text(f"{len(expected)} of {len(pending)} waiting")
        assert parse_qs(urlsplit(page.url).query)["min_amount"] == [f"{floor:g}"]
        assert sorted(queue_ids(page)) == sorted(expected)
        amounts = queue_amounts(page)
        assert len(amounts) == len(expected) and all(a >= floor for a in amounts), amounts

        # a click on the row (not on its link) opens the order
        row = page.locator("table.queue tbody tr[data-href]").filter(
            has=page.locator("a.order-link", has_text=re.compile(f"^{re.escape(target)}$"))
        )
        row.locator("td.num").first.click()
        expect(page).to_have_url(re.compile(r"/console/order\?id="))
        expect(page.locator("#order-id")).to_have_text(target)
        decision = page.locator("#decision")
        expect(decision).to_have_text("REVIEW")
        assert page.evaluate("window.scrollY") == 0
        expect(decision).to_be_in_viewport()  # seen without scrolling
        expect(page.locator("#verdict-state")).to_have_text("Waiting for review.")

        page.keyboard.press("f")
        expect(page).to_have_url(re.compile(r"/console/queue\?"))
        query = parse_qs(urlsplit(page.url).query)
        assert query["min_amount"] == [f"{floor:g}"], f"the filter was lost: {page.url}"
        assert query["sort"] == ["risk"] and set(query) == {"min_amount", "sort"}
        expect(page.locator("p.msg[role=status]")).to_have_text("1 marked")
        expect(page.locator("#total")).to_have_text(
            f"{len(expected) - 1} of {len(pending) - 1} waiting"
        )
        assert target not in queue_ids(page)
        assert offline_page.guard.left_loopback == []
        assert offline_page.guard.console_errors == []

    # the verdict is a label everywhere the platform looks
    assert target not in service.pending()
    assert set(service.pending()) == set(pending) - {target}
    customer = mine[target]["customer_id"]
    state = service.api("GET", f"/v1/entities/customer_id/{customer}")
    assert state.status_code == 200, state.text
    events = {e["order_id"]: e for e in state.json()["events"]}
    assert events[target]["fraud_label_date"] is not None, events[target]
    feed = label_entries(service, target)
    assert len(feed) == 1, feed
    assert (feed[0]["is_fraud"], feed[0]["source"], feed[0]["origin"]) == (
        True,
        "analyst",
        "console:ana",
    )
    # the others of mine were not touched
    for order_id in set(mine) - {target}:
        assert label_entries(service, order_id) == []


def test_scoring_key_cannot_sign_in(
    offline_page: OfflinePage, service: Service, tmp_path: Path
) -> None:
    page = console_page(offline_page)
    with screenshot_on_failure(page, tmp_path / "scoring_key.png"):
        sign_in(page, service.url, SCORING_KEY)
        expect(page.locator("p.error[role=alert]")).to_contain_text("without the analyst role")
        expect(page).to_have_url(f"{service.url}/console/login")
        expect(page.locator("input#key")).to_be_visible()
        assert session_cookie(page) is None
        page.goto(f"{service.url}/console/queue")
        expect(page).to_have_url(re.compile(r"/console/login\?next="))
        expect(page.locator("table.queue")).to_have_count(0)


def test_form_post_without_csrf_token_is_refused(
    offline_page: OfflinePage, service: Service, tmp_path: Path
) -> None:
    mine = service.score("t2", order_rows(60, 2, at_least=REVIEW_AT))
    assert {o["decision"] for o in mine.values()} == {"review"}
    kept, control = sorted(mine)

    page = console_page(offline_page)
    with screenshot_on_failure(page, tmp_path / "csrf.png"):
        sign_in(page, service.url, ANALYST_KEY)
        expect(page).to_have_url(f"{service.url}/console/queue")
        form = {"order_id": kept, "verdict": "fraud", "note": "", "next": "/console/queue"}
        refused = page.request.post(
            f"{service.url}/console/order/verdict", form=form, max_redirects=0
        )
        assert refused.status == 403, (refused.status, refused.text()[:500])
        assert kept in service.pending()
        assert label_entries(service, kept) == []

        # the same request with the page's token is taken: the session travelled, only the
        # token was missing
        token = page.locator("input[name=_csrf_token]").first.get_attribute("value")
        assert token
        taken = page.request.post(
            f"{service.url}/console/order/verdict",
            form={**form, "order_id": control, "_csrf_token": token},
            max_redirects=0,
        )
        assert taken.status == 303, (taken.status, taken.text()[:500])
        assert urlsplit(taken.headers["location"]).path.startswith("/console")
        waiting = service.pending()
        assert control not in waiting and kept in waiting


def test_script_in_an_order_field_shows_as_text(
    offline_page: OfflinePage, service: Service, tmp_path: Path
) -> None:
    row = order_rows(120, 1)[0]
    row.update(order_id=f"{row['order_id']}-t3", customer_id=SCRIPT, email=SCRIPT)
    row["order_amount"] = max(row["order_amount"], REVIEW_AT + 50)
    scored = service.api("POST", "/v1/score", key=SCORING_KEY, json=row)
    assert scored.status_code == 200, scored.text
    assert scored.json()["decision"] == "review"
    order_id = row["order_id"]

    page = console_page(offline_page)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    with screenshot_on_failure(page, tmp_path / "script_as_text.png"):
        sign_in(page, service.url, ANALYST_KEY)
        expect(page).to_have_url(f"{service.url}/console/queue")
        answer = page.goto(f"{service.url}/console/order?id={order_id}")
        assert answer is not None and answer.status == 200
        expect(page.locator("#order-id")).to_have_text(order_id)
        shown = page.locator("main code").filter(has_text=SCRIPT)
        expect(shown.first).to_be_visible()
        expect(shown.first).to_have_text(SCRIPT)  # the markup itself, as text
        assert page.evaluate("typeof window.__pwned") == "undefined"
        # the only script on the page is the console's own
        scripts = page.locator("script")
        expect(scripts).to_have_count(1)
        assert scripts.first.get_attribute("src") == "/console/static/console.js"
        assert dialogs == []
        assert offline_page.guard.console_errors == []  # no blocked inline script either
        assert offline_page.guard.left_loopback == []
