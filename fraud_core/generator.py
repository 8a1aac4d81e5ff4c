"""Synthetic orders with learnable fraud in them: the demo data, the benchmarks' input and the
tests' fixtures.

Honest customers have a home e-mail, a few usual IPs, a home address, a personal typical amount and
their own order frequency. Fraud arrives as four patterns (account takeover, fraud rings, card
testing, stolen identities) plus "friendly fraud" that looks like an honest order, and honest
noise (shared office/carrier IPs, e-mail changes, travel, big purchases, new customers) keeps every
single rule imperfect. Everything is vectorised numpy per day and deterministic for a seed.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from fraud_core.contract.source import SourceFormat, source_orders
from fraud_core.schema import COLUMN_NAMES, ORDER_SCHEMA, TIMESTAMP
from fraud_core.storage import as_path, atomic_path, write_parquet

DAY_S = 86_400
HOUR_S = 3_600

# Index = the code stored while generating; the names are what `with_pattern=True` shows.
PATTERNS: tuple[str, ...] = (
    "none",
    "account_takeover",
    "fraud_ring",
    "card_testing",
    "stolen_identity",
    "friendly_fraud",
)
_NONE, _TAKEOVER, _RING, _CARD_TESTING, _STOLEN_ID, _FRIENDLY = range(len(PATTERNS))
PATTERN_COLUMN = "fraud_pattern"

# Honest shoppers buy in the evening more than at night; fraud is spread over the whole day.
_HOUR_WEIGHTS = np.array(
    [2, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 7, 6, 6, 6, 6, 7, 8, 9, 10, 9, 6, 4], dtype=np.float64
)
_HOUR_P = _HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. The defaults echo the original proof of concept: 10,000 customers,
    e-mails and IPs, about 100,000 orders per 30 days, for one year."""

    n_customers: int = 10_000
    n_emails: int = 10_000
    n_ips: int = 10_000
    orders_per_day: int = 3_333
    days: int = 365
    start: date = date(2026, 1, 1)
    seed: int = 42

    # Fraud: the expected share of orders that are fraud, and how it splits over the patterns
    # (relative weights; they need not sum to 1).
    fraud_rate: float = 0.01
    account_takeover_share: float = 0.30
    fraud_ring_share: float = 0.25
    card_testing_share: float = 0.20
    stolen_identity_share: float = 0.15
    friendly_fraud_share: float = 0.10
    fraud_proxy_share: float = 0.30  # fraud events that come through a reused "bad" proxy IP
    label_delay_days: tuple[int, int] = (1, 60)  # chargebacks arrive this many days later

    # Honest noise, so that no single rule is perfect.
    initial_customer_share: float = 0.6  # customers active from day one; the rest join later
    second_email_share: float = 0.15  # customers who alternate between two e-mails
    email_switch_share: float = 0.03  # customers who move to a new e-mail on some day
    shared_ip_rate: float = 0.06  # honest orders through a mobile-carrier NAT IP
    new_ip_rate: float = 0.04  # honest orders from an IP never seen before (travel, hotel wifi)
    proxy_ip_rate: float = 0.005  # honest orders through the same VPN/proxy IPs fraudsters use
    office_customer_share: float = 0.05  # customers who also order from a shared office IP
    big_purchase_rate: float = 0.01  # honest orders 5-20x the customer's usual amount
    gift_location_rate: float = 0.03  # honest orders shipped far from home

    def __post_init__(self) -> None:
        for name in ("n_customers", "n_emails", "n_ips", "orders_per_day", "days"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if not 0.0 <= self.fraud_rate < 0.5:
            raise ValueError(f"fraud_rate must be in [0, 0.5), got {self.fraud_rate}")
        if any(s < 0 for s in self._pattern_shares()) or sum(self._pattern_shares()) <= 0:
            raise ValueError("pattern shares must be >= 0 and not all 0")
        lo, hi = self.label_delay_days
        if not 1 <= lo <= hi:
            raise ValueError(f"label_delay_days must satisfy 1 <= lo <= hi, got {(lo, hi)}")
        rates = (f.name for f in fields(self) if f.name.endswith(("_rate", "_share")))
        for name in rates:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    def _pattern_shares(self) -> tuple[float, ...]:
        return (
            self.account_takeover_share,
            self.fraud_ring_share,
            self.card_testing_share,
            self.stolen_identity_share,
            self.friendly_fraud_share,
        )

    def day(self, index: int) -> date:
        return self.start + timedelta(days=index)


# ---------------------------------------------------------------------------------------------
# The world: who the honest customers are. Drawn once per seed; every day reads it.


@dataclass(frozen=True)
class _World:
    rate: np.ndarray  # relative order frequency per customer
    join_day: np.ndarray  # first day the customer may order
    log_amount: np.ndarray  # mean of log(amount) per customer
    emails: np.ndarray  # (n_customers, 2) e-mail indices; column 1 used when n_emails == 2
    n_emails: np.ndarray
    switch_day: np.ndarray  # day from which `switch_email` replaces the home e-mail
    switch_email: np.ndarray
    ips: np.ndarray  # (n_customers, 3) usual IP indices
    n_ips: np.ndarray
    home_lat: np.ndarray
    home_lon: np.ndarray
    city_lat: np.ndarray
    city_lon: np.ndarray
    carrier_ips: np.ndarray  # honest IPs shared by many customers (mobile NAT)
    proxy_ips: np.ndarray  # VPN/proxy IPs that fraudsters reuse (and a few honest users)
    next_email: int  # first index free for e-mails created while generating
    next_ip: int


def _build_world(config: GeneratorConfig) -> _World:
    rng = np.random.default_rng([config.seed, 0, 0])
    n = config.n_customers

    # Heavy-tailed activity: a few customers order every day, many a few times a year.
    # Capped at 5x the mean so that nobody orders a dozen times a day.
    rate = np.clip(rng.gamma(shape=0.6, scale=1.0, size=n), 1e-3, 3.0)
    join_day = np.where(
        rng.random(n) < config.initial_customer_share, 0, rng.integers(0, config.days, n)
    )
    join_day[0] = 0  # someone must be able to order on the first day
    big_spender = rng.random(n) < 0.05
    log_amount = rng.normal(np.log(60.0), 0.6, n) + np.where(big_spender, 1.5, 0.0)

    # E-mails: a permutation gives distinct home e-mails while the pool is large enough; the
    # second ones come from the same pool, so a few families share an address (honest noise).
    home_email = rng.permutation(max(n, config.n_emails))[:n] % config.n_emails
    emails = np.stack([home_email, rng.integers(0, config.n_emails, n)], axis=1)
    n_emails = np.where(rng.random(n) < config.second_email_share, 2, 1)
    switching = rng.random(n) < config.email_switch_share
    switch_day = np.where(switching, rng.integers(1, config.days + 1, n), np.iinfo(np.int64).max)
    switch_email = np.full(n, -1, dtype=np.int64)
    switch_email[switching] = config.n_emails + np.arange(int(switching.sum()))
    next_email = config.n_emails + int(switching.sum())

    # IPs: the pool [0, n_ips) is split into carrier NAT IPs, office IPs and household IPs.
    n_carrier = max(1, config.n_ips // 100)
    n_office = max(1, config.n_ips // 200)
    first_home = min(n_carrier + n_office, config.n_ips - 1)
    ips = rng.integers(first_home, config.n_ips, size=(n, 3))
    n_ips = rng.choice([1, 2, 3], size=n, p=[0.5, 0.35, 0.15])
    # An office worker also orders from the office IP, their last usual IP.
    office = rng.random(n) < config.office_customer_share
    n_ips = np.where(office, np.minimum(n_ips + 1, 3), n_ips)
    ips[office, n_ips[office] - 1] = rng.integers(
        n_carrier, n_carrier + n_office, int(office.sum())
    )
    n_proxy = max(5, config.n_ips // 200)
    proxy_ips = np.arange(config.n_ips, config.n_ips + n_proxy)

    # Homes cluster in cities (Europe-sized box) with a Zipf-like population.
    n_cities = 60
    city_lat = rng.uniform(36.0, 60.0, n_cities)
    city_lon = rng.uniform(-10.0, 30.0, n_cities)
    city_p = 1.0 / np.arange(1, n_cities + 1)
    city = rng.choice(n_cities, size=n, p=city_p / city_p.sum())
    home_lat = city_lat[city] + rng.normal(0.0, 0.05, n)
    home_lon = city_lon[city] + rng.normal(0.0, 0.05, n)

    return _World(
        rate=rate,
        join_day=join_day,
        log_amount=log_amount,
        emails=emails,
        n_emails=n_emails,
        switch_day=switch_day,
        switch_email=switch_email,
        ips=ips,
        n_ips=n_ips,
        home_lat=home_lat,
        home_lon=home_lon,
        city_lat=city_lat,
        city_lon=city_lon,
        carrier_ips=np.arange(n_carrier),
        proxy_ips=proxy_ips,
        next_email=next_email,
        next_ip=config.n_ips + n_proxy,
    )


# ---------------------------------------------------------------------------------------------
# Orders while generating: integer entity indices and seconds, formatted to strings at the end.


@dataclass
class _Orders:
    t_s: np.ndarray  # epoch seconds
    customer: np.ndarray
    email: np.ndarray
    ip: np.ndarray
    amount: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    pattern: np.ndarray  # index into PATTERNS; 0 = honest
    label_delay_s: np.ndarray  # 0 for honest orders

    @classmethod
    def concat(cls, parts: list[_Orders]) -> _Orders:
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    def take(self, index: np.ndarray) -> _Orders:
        return _Orders(*(getattr(self, f.name)[index] for f in fields(self)))

    def __len__(self) -> int:
        return len(self.t_s)


@dataclass
class _Counters:
    """Next free indices for entities created while generating (new accounts, e-mails, IPs).
    Days are generated in order, so a running counter keeps ids unique and deterministic."""

    customer: int
    email: int
    ip: int
    order: int = 0

    def new(self, kind: str, n: int) -> np.ndarray:
        first = getattr(self, kind)
        setattr(self, kind, first + n)
        return np.arange(first, first + n, dtype=np.int64)


@dataclass
class _Day:
    """What one day's generator needs besides the world."""

    config: GeneratorConfig
    world: _World
    index: int
    start_s: int
    rng: np.random.Generator
    counters: _Counters
    known: np.ndarray = field(init=False)  # customers who have been around for two weeks
    known_p: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        known = np.flatnonzero(self.world.join_day <= self.index - 14)
        if len(known) == 0:  # the first two weeks: anyone active will do
            known = np.flatnonzero(self.world.join_day <= self.index)
        self.known = known
        weights = self.world.rate[known]
        self.known_p = weights / weights.sum()

    def known_customers(self, n: int) -> np.ndarray:
        # Weighted by activity, so a victim almost always has a history to deviate from.
        return self.known[self.rng.choice(len(self.known), size=n, p=self.known_p)]

    def event_times(self, sizes: np.ndarray, mean_gap_s: float) -> np.ndarray:
        """Order times of events with `sizes` orders each: a random start in the day, then
        exponential gaps. Later orders may fall on the next days; the caller carries them over."""
        starts = self.start_s + self.rng.integers(0, DAY_S, len(sizes))
        gaps = self.rng.exponential(mean_gap_s, int(sizes.sum())).astype(np.int64)
        first = _first_of_event(sizes)
        gaps[first] = 0
        return np.repeat(starts, sizes) + _cumsum_within(gaps, sizes)

    def fraud_ips(self, n_events: int) -> np.ndarray:
        """One IP per fraud event: a fresh one, or one of the reused proxy IPs."""
        rng = self.rng
        fresh = self.counters.new("ip", n_events)
        proxy = self.world.proxy_ips[rng.integers(0, len(self.world.proxy_ips), n_events)]
        return np.where(rng.random(n_events) < self.config.fraud_proxy_share, proxy, fresh)

    def random_places(self, n: int, jitter_deg: float) -> tuple[np.ndarray, np.ndarray]:
        city = self.rng.integers(0, len(self.world.city_lat), n)
        lat = self.world.city_lat[city] + self.rng.normal(0.0, jitter_deg, n)
        lon = self.world.city_lon[city] + self.rng.normal(0.0, jitter_deg, n)
        return lat, lon

    def label_delays(self, n: int) -> np.ndarray:
        lo, hi = self.config.label_delay_days
        # Most chargebacks come within two to four weeks; a few take the full two months.
        seconds = np.round(self.rng.gamma(3.0, 7.0, n) * DAY_S).astype(np.int64)
        return np.clip(seconds, lo * DAY_S, hi * DAY_S)

    def orders(self, pattern: int, **columns: np.ndarray) -> _Orders:
        n = len(columns["t_s"])
        delay = np.zeros(n, np.int64) if pattern == _NONE else self.label_delays(n)
        return _Orders(
            t_s=columns["t_s"].astype(np.int64),
            customer=columns["customer"].astype(np.int64),
            email=columns["email"].astype(np.int64),
            ip=columns["ip"].astype(np.int64),
            amount=np.round(np.maximum(columns["amount"], 0.0), 2),
            lat=np.round(columns["lat"], 5),
            lon=np.round(columns["lon"], 5),
            pattern=np.full(n, pattern, np.int8),
            label_delay_s=delay,
        )


def _first_of_event(sizes: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)


def _cumsum_within(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Running sum of `values` restarting at each event (events are consecutive runs)."""
    total = np.cumsum(values)
    first = _first_of_event(sizes)
    before = total[first] - values[first]
    return total - np.repeat(before, sizes)


def _honest(d: _Day, n: int) -> _Orders:
    c, w, rng = d.config, d.world, d.rng
    weights = w.rate * (w.join_day <= d.index)
    cust = rng.choice(len(weights), size=n, p=weights / weights.sum())
    hour = rng.choice(24, size=n, p=_HOUR_P)
    t_s = d.start_s + hour * HOUR_S + rng.integers(0, HOUR_S, n)

    second = (w.n_emails[cust] == 2) & (rng.random(n) < 0.3)
    email = w.emails[cust, second.astype(np.int64)]
    email = np.where(w.switch_day[cust] <= d.index, w.switch_email[cust], email)

    slot = np.minimum(rng.choice(3, size=n, p=[0.7, 0.2, 0.1]), w.n_ips[cust] - 1)
    ip = w.ips[cust, slot]
    u = rng.random(n)
    carrier = u < c.shared_ip_rate
    fresh = (u >= c.shared_ip_rate) & (u < c.shared_ip_rate + c.new_ip_rate)
    proxy = (u >= c.shared_ip_rate + c.new_ip_rate) & (
        u < c.shared_ip_rate + c.new_ip_rate + c.proxy_ip_rate
    )
    ip[carrier] = w.carrier_ips[rng.integers(0, len(w.carrier_ips), int(carrier.sum()))]
    ip[fresh] = d.counters.new("ip", int(fresh.sum()))
    ip[proxy] = w.proxy_ips[rng.integers(0, len(w.proxy_ips), int(proxy.sum()))]

    amount = np.exp(w.log_amount[cust] + rng.normal(0.0, 0.5, n))
    big = rng.random(n) < c.big_purchase_rate
    amount[big] *= rng.uniform(5.0, 20.0, int(big.sum()))

    lat = w.home_lat[cust] + rng.normal(0.0, 0.01, n)
    lon = w.home_lon[cust] + rng.normal(0.0, 0.01, n)
    gift = rng.random(n) < c.gift_location_rate
    lat[gift], lon[gift] = d.random_places(int(gift.sum()), 0.05)
    return d.orders(
        _NONE, t_s=t_s, customer=cust, email=email, ip=ip, amount=amount, lat=lat, lon=lon
    )


def _account_takeover(d: _Day, k: int) -> _Orders:
    """A known customer suddenly orders with a new e-mail and a new IP, a high amount, far away."""
    rng, w = d.rng, d.world
    sizes = 1 + np.minimum(rng.poisson(0.6, k), 3)
    victim = d.known_customers(k)
    new_email = d.counters.new("email", k)
    email = np.where(rng.random(k) < 0.85, new_email, w.emails[victim, 0])
    lat, lon = d.random_places(k, 0.02)
    n = int(sizes.sum())
    amount = np.exp(np.repeat(w.log_amount[victim], sizes)) * rng.uniform(3.0, 12.0, n)
    return d.orders(
        _TAKEOVER,
        t_s=d.event_times(sizes, 1_800),
        customer=np.repeat(victim, sizes),
        email=np.repeat(email, sizes),
        ip=np.repeat(d.fraud_ips(k), sizes),
        amount=amount,
        lat=np.repeat(lat, sizes),
        lon=np.repeat(lon, sizes),
    )


def _fraud_ring(d: _Day, k: int) -> _Orders:
    """One IP (or one e-mail) shared by many customers within hours to two days, all shipping to
    the same drop address. Accounts are half compromised known customers, half freshly made."""
    rng, w = d.rng, d.world
    sizes = 6 + rng.poisson(8.0, k)
    n = int(sizes.sum())
    event = np.repeat(np.arange(k), sizes)
    duration = rng.uniform(2 * HOUR_S, 48 * HOUR_S, k)
    t_s = np.repeat(d.start_s + rng.integers(0, DAY_S, k), sizes) + (
        rng.random(n) * duration[event]
    ).astype(np.int64)

    existing = rng.random(n) < 0.5
    customer = np.empty(n, np.int64)
    customer[existing] = d.known_customers(int(existing.sum()))
    customer[~existing] = d.counters.new("customer", int((~existing).sum()))
    own_email = np.empty(n, np.int64)
    own_email[existing] = w.emails[customer[existing], 0]
    own_email[~existing] = d.counters.new("email", int((~existing).sum()))

    by_email = rng.random(k) < 0.3
    ring_ip = d.fraud_ips(k)
    ring_email = d.counters.new("email", k)
    ring_ips3 = d.counters.new("ip", 3 * k).reshape(k, 3)  # an e-mail ring rotates a few IPs
    e_by_email = by_email[event]
    email = np.where(e_by_email, ring_email[event], own_email)
    ip = np.where(e_by_email, ring_ips3[event, rng.integers(0, 3, n)], ring_ip[event])

    drop_lat, drop_lon = d.random_places(k, 0.02)
    return d.orders(
        _RING,
        t_s=t_s,
        customer=customer,
        email=email,
        ip=ip,
        amount=rng.lognormal(np.log(180.0), 0.6, n),
        lat=drop_lat[event] + rng.normal(0.0, 0.001, n),
        lon=drop_lon[event] + rng.normal(0.0, 0.001, n),
    )


def _card_testing(d: _Day, k: int) -> _Orders:
    """3-8 tiny orders within 40 minutes from one account and IP, then one big order."""
    rng, w = d.rng, d.world
    n_small = rng.integers(3, 9, k)
    sizes = n_small + 1
    n = int(sizes.sum())
    event = np.repeat(np.arange(k), sizes)
    position = np.arange(n) - np.repeat(_first_of_event(sizes), sizes)
    is_big = position == n_small[event]

    new_account = rng.random(k) < 0.5
    customer = np.empty(k, np.int64)
    customer[new_account] = d.counters.new("customer", int(new_account.sum()))
    customer[~new_account] = d.known_customers(int((~new_account).sum()))
    email = np.empty(k, np.int64)
    email[new_account] = d.counters.new("email", int(new_account.sum()))
    email[~new_account] = w.emails[customer[~new_account], 0]

    start = np.repeat(d.start_s + rng.integers(0, DAY_S, k), sizes)
    offset = np.where(is_big, 2_400 + rng.integers(60, 1_200, n), rng.integers(0, 2_400, n))
    amount = np.where(is_big, rng.lognormal(np.log(350.0), 0.4, n), rng.uniform(1.0, 5.0, n))
    lat, lon = d.random_places(k, 0.02)
    return d.orders(
        _CARD_TESTING,
        t_s=start + offset,
        customer=customer[event],
        email=email[event],
        ip=d.fraud_ips(k)[event],
        amount=amount,
        lat=lat[event],
        lon=lon[event],
    )


def _stolen_identity(d: _Day, k: int) -> _Orders:
    """A brand-new account with a new e-mail placing one to three high orders."""
    rng, w = d.rng, d.world
    sizes = 1 + np.minimum(rng.poisson(0.5, k), 2)
    n = int(sizes.sum())
    # Some come from an ordinary residential IP (a compromised machine), not a fresh one.
    residential = w.ips[rng.integers(0, len(w.ips), k), 0]
    ip = np.where(rng.random(k) < 0.4, residential, d.fraud_ips(k))
    lat, lon = d.random_places(k, 0.05)
    return d.orders(
        _STOLEN_ID,
        t_s=d.event_times(sizes, 2 * HOUR_S),
        customer=np.repeat(d.counters.new("customer", k), sizes),
        email=np.repeat(d.counters.new("email", k), sizes),
        ip=np.repeat(ip, sizes),
        amount=rng.lognormal(np.log(450.0), 0.5, n),
        lat=np.repeat(lat, sizes),
        lon=np.repeat(lon, sizes),
    )


def _friendly_fraud(d: _Day, k: int) -> _Orders:
    """A known customer's ordinary-looking order that is charged back: no behaviour gives it
    away, so no model should catch all fraud."""
    rng, w = d.rng, d.world
    cust = d.known_customers(k)
    return d.orders(
        _FRIENDLY,
        t_s=d.start_s + rng.integers(0, DAY_S, k),
        customer=cust,
        email=w.emails[cust, 0],
        ip=w.ips[cust, 0],
        amount=np.exp(w.log_amount[cust]) * rng.uniform(1.0, 2.5, k),
        lat=w.home_lat[cust] + rng.normal(0.0, 0.01, k),
        lon=w.home_lon[cust] + rng.normal(0.0, 0.01, k),
    )


# (builder, mean orders per event): the means turn a share of fraud orders into event counts.
_PATTERN_BUILDERS: tuple[tuple[Callable[[_Day, int], _Orders], float], ...] = (
    (_account_takeover, 1.55),
    (_fraud_ring, 14.0),
    (_card_testing, 6.5),
    (_stolen_identity, 1.5),
    (_friendly_fraud, 1.0),
)


def _generate_day(d: _Day) -> _Orders:
    c = d.config
    fraud_orders = c.orders_per_day * c.fraud_rate
    parts = [_honest(d, round(c.orders_per_day * (1.0 - c.fraud_rate)))]
    shares = np.array(c._pattern_shares())
    shares = shares / shares.sum()
    for (build, mean_size), share in zip(_PATTERN_BUILDERS, shares, strict=True):
        k = int(d.rng.poisson(fraud_orders * share / mean_size))
        if k:
            parts.append(build(d, k))
    return _Orders.concat(parts)


# ---------------------------------------------------------------------------------------------
# Strings without per-row Python: digits are written straight into an Arrow string buffer.

_POW10 = 10 ** np.arange(19, dtype=np.int64)


def _format(n: int, *parts: str | tuple[np.ndarray, int]) -> pa.StringArray:
    """Concatenate literal strings and non-negative integers (zero-padded to a minimum width)
    row by row, e.g. `_format(n, "C", (ids, 6))` -> "C000042"."""
    lengths = np.zeros(n, np.int64)
    widths: list[np.ndarray | None] = []
    for part in parts:
        if isinstance(part, str):
            lengths += len(part.encode())
            widths.append(None)
        else:
            values, min_width = part
            digits = np.searchsorted(_POW10[1:], values, side="right") + 1
            width = np.maximum(digits, min_width)
            lengths += width
            widths.append(width)
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    data = np.empty(int(offsets[-1]), np.uint8)
    cursor = offsets[:-1].astype(np.int64)
    for part, width in zip(parts, widths, strict=True):
        if isinstance(part, str):
            raw = np.frombuffer(part.encode(), np.uint8)
            data[cursor[:, None] + np.arange(len(raw))] = raw
            cursor += len(raw)
            continue
        values = np.asarray(part[0], np.int64)
        for j in range(int(width.max(initial=0))):  # j-th digit from the right
            has = j < width
            pos = (cursor + width - 1 - j)[has]
            data[pos] = (values[has] // _POW10[j]) % 10 + ord("0")
        cursor += width
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def _ip_strings(index: np.ndarray) -> pa.StringArray:
    """Dotted quads that look random yet stay distinct: the low 24 bits are an odd-multiplier
    permutation of the index's low 24 bits, and the first octet adds the index's high bits."""
    low = ((index.astype(np.uint64) * np.uint64(2_654_435_761)) & np.uint64(0xFFFFFF)).astype(
        np.int64
    )
    first = 11 + ((low * 7 >> 16) + (index >> 24)) % 116  # 11..126: no 0.x, loopback, multicast
    return _format(
        len(index),
        (first, 1), ".", (low >> 16, 1), ".", ((low >> 8) & 255, 1), ".", (low & 255, 1),
    )  # fmt: skip


def _to_table(orders: _Orders, first_order: int, with_pattern: bool) -> pa.Table:
    n = len(orders)
    fraud = orders.pattern != _NONE
    t_us = orders.t_s * 1_000_000
    columns = {
        "order_id": _format(n, "O", (np.arange(first_order, first_order + n), 9)),
        "order_date": pa.array(t_us, TIMESTAMP),
        "customer_id": _format(n, "C", (orders.customer, 6)),
        "email": _format(n, "u", (orders.email, 6), "@example.com"),
        "ip_addr": _ip_strings(orders.ip),
        "order_amount": pa.array(orders.amount, pa.float64()),
        "location_lat": pa.array(orders.lat, pa.float64()),
        "location_long": pa.array(orders.lon, pa.float64()),
        "is_fraud": pa.array(fraud.astype(np.int8), pa.int8()),
        "label_date": pa.array(t_us + orders.label_delay_s * 1_000_000, TIMESTAMP, mask=~fraud),
    }
    table = pa.table(columns, schema=ORDER_SCHEMA)
    if with_pattern:
        names = pa.array(PATTERNS, pa.string())
        patterns = pa.DictionaryArray.from_arrays(pa.array(orders.pattern, pa.int8()), names)
        table = table.append_column(PATTERN_COLUMN, patterns)
    return table


# ---------------------------------------------------------------------------------------------
# Public API


def iter_daily_tables(
    config: GeneratorConfig, *, with_pattern: bool = False
) -> Iterator[tuple[date, pa.Table]]:
    """One Arrow table per UTC day (schema `ORDER_SCHEMA`, sorted by order_date), in day order.

    Events that run past midnight (a ring active for two days) carry their later orders over to
    the next days; those still pending after the last day are dropped, as real data ends too.
    `with_pattern` adds a `fraud_pattern` column naming the pattern behind each order.
    """
    world = _build_world(config)
    counters = _Counters(customer=config.n_customers, email=world.next_email, ip=world.next_ip)
    epoch = datetime(config.start.year, config.start.month, config.start.day, tzinfo=UTC)
    start_s = int(epoch.timestamp())
    pending: _Orders | None = None
    for index in range(config.days):
        day_start = start_s + index * DAY_S
        rng = np.random.default_rng([config.seed, 1, index])
        orders = _generate_day(_Day(config, world, index, day_start, rng, counters))
        if pending is not None:
            orders = _Orders.concat([pending, orders])
        today = orders.t_s < day_start + DAY_S
        pending = orders.take(np.flatnonzero(~today))
        orders = orders.take(np.flatnonzero(today))
        orders = orders.take(np.argsort(orders.t_s, kind="stable"))
        yield config.day(index), _to_table(orders, counters.order, with_pattern)
        counters.order += len(orders)


def iter_daily_orders(
    config: GeneratorConfig, *, with_pattern: bool = False
) -> Iterator[tuple[date, pd.DataFrame]]:
    """One DataFrame per UTC day: the same rows as `generate_orders`, split by day."""
    for day, table in iter_daily_tables(config, with_pattern=with_pattern):
        yield day, table.to_pandas()


def generate_orders(config: GeneratorConfig, *, with_pattern: bool = False) -> pd.DataFrame:
    """All days' orders sorted by order_date, columns `schema.COLUMN_NAMES` (plus
    `fraud_pattern` when asked), order_date/label_date as datetime64[us, UTC], is_fraud int8."""
    tables = [table for _, table in iter_daily_tables(config, with_pattern=with_pattern)]
    return pa.concat_tables(tables).to_pandas()


def write_landing_files(
    config: GeneratorConfig,
    out_dir: Path,
    fmt: str = "parquet",
    progress: bool = False,
    *,
    on_file: Callable[[Path, pa.Table], None] | None = None,
    source: SourceFormat | None = None,
) -> list[Path]:
    """Write one landing file per day, `orders_YYYY-MM-DD.parquet` (or `.csv`), atomically.

    CSV timestamps are ISO-8601 in UTC with a `Z` suffix; an empty `label_date` means not fraud.
    With `source` (a contract's shape), the files take that shape instead: its column names,
    amount unit and times (`fraud_core.contract.source.source_orders`).
    `on_file` is called with each written path and its rows (the CLI sums them up).
    """
    shaped = source is not None and not source.identity
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")
    out_dir = as_path(out_dir)
    days = iter_daily_tables(config)
    if progress:
        from tqdm import tqdm

        days = tqdm(days, total=config.days, unit="day", desc="generating")
    paths: list[Path] = []
    for day, table in days:
        path = out_dir / f"orders_{day.isoformat()}.{fmt}"
        if shaped:
            write_frame(source_orders(source, table.to_pandas()), path, fmt)
        elif fmt == "parquet":
            write_parquet(table, path)
        else:
            _write_csv(table, path)
        paths.append(path)
        if on_file is not None:
            on_file(path, table)
    return paths


def write_frame(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    """`frame` as one landing file, parquet or CSV (as its values are), atomically."""
    if fmt == "parquet":
        write_parquet(pa.Table.from_pandas(frame, preserve_index=False), path)
        return
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def _write_csv(table: pa.Table, path: Path) -> Path:
    for name in ("order_date", "label_date"):
        # Whole seconds by construction, so the cast loses nothing and the text stays short.
        seconds = table[name].cast(pa.timestamp("s", tz="UTC"))
        text = pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%SZ")
        table = table.set_column(table.schema.get_field_index(name), name, text)
    # Unquoted, as most landing files are: generated ids never hold a comma or a quote, and Arrow
    # refuses to write one that did rather than writing a broken file.
    buffer = io.BytesIO()
    buffer.write((",".join(COLUMN_NAMES) + "\n").encode())
    pa_csv.write_csv(
        table.select(list(COLUMN_NAMES)),
        buffer,
        pa_csv.WriteOptions(include_header=False, quoting_style="none"),
    )
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return path
