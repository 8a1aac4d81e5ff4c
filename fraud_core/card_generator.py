"""Sample card-present transactions in the shape of `contracts/card_present.yaml`: cards
presented at merchants' terminals, with fraud a model can learn and noise that keeps it honest.

The world: cards that shop mostly at a few "home" merchants near them, merchants with a
category code (MCC) and one to four terminals. The fraud, each pattern leaving traces the
contract's features can see:
- **compromised terminals**: on some days a terminal skims every card presented at it; days
  later some of those cards are tested with small manual-entry payments and then spent at
  electronics and jewellery merchants they never used;
- **leaked cards**: a batch of cards used within hours at many merchants, swiped;
- **unusual amounts**: a card spends many times its usual amount at a merchant it never used.
Chargebacks arrive days to weeks later (`chargeback_time`). Honest noise: travel (shopping away
from home), big honest purchases, manual entry by mail-order merchants. Each transaction also
says how far the terminal is from the card's home (`distance_km`, a numeric attribute): a card's
usual merchants sit at a few fixed distances, travel and stolen cards elsewhere. Deterministic
for a seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from fraud_core.contract import SHIPPED, Contract, load_contract
from fraud_core.contract.source import SourceFormat, source_orders
from fraud_core.features.offline import canonical_order
from fraud_core.generator import write_frame
from fraud_core.storage import as_path
from fraud_core.validation import validate_orders

DAY_S = 86_400
CARD_ENTITIES = ("card", "terminal", "merchant")  # what a contract needs for this generator
# category code -> (typical amount, spread of its log)
MCCS: dict[str, tuple[float, float]] = {
    "5411": (45.0, 0.6),  # grocery
    "5812": (28.0, 0.5),  # restaurants
    "5541": (55.0, 0.4),  # fuel
    "5912": (22.0, 0.6),  # pharmacy
    "5651": (70.0, 0.7),  # clothing
    "4111": (6.0, 0.5),  # transit
    "5732": (380.0, 0.8),  # electronics
    "5944": (650.0, 0.9),  # jewellery
}
CASH_OUT_MCCS = ("5732", "5944")  # where stolen cards are spent
MAIL_ORDER_MCC = "5964"  # honest manual entry (mail and phone orders)
REGION_KM = 600.0  # merchants are spread over a square this wide


@dataclass(frozen=True)
class CardGeneratorConfig:
    n_cards: int = 5_000
    n_merchants: int = 400
    txns_per_day: int = 3_000
    days: int = 90
    start: date = date(2026, 1, 1)
    seed: int = 42
    compromised_terminals_per_week: float = 2.0
    skimmed_card_fraud_share: float = 0.35  # of the cards a compromised terminal skims
    leaked_batches_per_week: float = 1.0
    leaked_batch_cards: int = 12
    unusual_amounts_per_day: float = 1.5
    label_delay_days: tuple[int, int] = (5, 45)
    travel_rate: float = 0.04  # honest payments away from home
    big_purchase_rate: float = 0.01  # honest payments far above the card's usual
    mail_order_rate: float = 0.01  # honest manual entry

    def __post_init__(self) -> None:
        for name in ("n_cards", "n_merchants", "txns_per_day", "days"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class _World:
    merchant_mcc: np.ndarray  # (merchants,) str
    merchant_terminals: list[np.ndarray]  # terminal indices of each merchant
    terminal_merchant: np.ndarray  # (terminals,)
    card_homes: np.ndarray  # (cards, 4) home merchant indices
    card_activity: np.ndarray  # (cards,) probability weights
    card_scale: np.ndarray  # (cards,) the card's spending level
    merchant_xy: np.ndarray  # (merchants, 2) where each merchant is, in km
    card_xy: np.ndarray  # (cards, 2) each card's home, near its first home merchant


def _world(config: CardGeneratorConfig, rng: np.random.Generator) -> _World:
    everyday = [m for m in MCCS if m not in CASH_OUT_MCCS]
    mccs = rng.choice(
        [*everyday, *CASH_OUT_MCCS, MAIL_ORDER_MCC],
        size=config.n_merchants,
        p=_normalised([8] * len(everyday) + [1, 0.5, 0.5]),
    )
    terminals, owner = [], []
    for m in range(config.n_merchants):
        k = int(rng.integers(1, 5))
        terminals.append(np.arange(len(owner), len(owner) + k))
        owner += [m] * k
    local = np.flatnonzero(~np.isin(mccs, [*CASH_OUT_MCCS, MAIL_ORDER_MCC]))
    homes = rng.choice(local, size=(config.n_cards, 4))
    activity = rng.pareto(2.0, config.n_cards) + 0.2
    # a stream of its own, so that adding the geography changed no other value
    geo = np.random.default_rng([config.seed, 17])
    merchant_xy = geo.uniform(0.0, REGION_KM, (config.n_merchants, 2))
    card_xy = merchant_xy[homes[:, 0]] + geo.normal(0.0, 3.0, (config.n_cards, 2))
    return _World(
        merchant_mcc=mccs,
        merchant_terminals=terminals,
        terminal_merchant=np.asarray(owner),
        card_homes=homes,
        card_activity=activity / activity.sum(),
        card_scale=rng.lognormal(0.0, 0.35, config.n_cards),
        merchant_xy=merchant_xy,
        card_xy=card_xy,
    )


def _normalised(weights: list[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return w / w.sum()


def _amounts(rng: np.random.Generator, mccs: np.ndarray, scale: np.ndarray) -> np.ndarray:
    typical = np.array([MCCS.get(m, (90.0, 0.8))[0] for m in mccs])
    spread = np.array([MCCS.get(m, (90.0, 0.8))[1] for m in mccs])
    return np.round(typical * scale * rng.lognormal(0.0, spread), 2).clip(0.5)


def _terminal_of(world: _World, merchants: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.array([rng.choice(world.merchant_terminals[m]) for m in merchants])


def iter_card_days(config: CardGeneratorConfig) -> Iterator[tuple[date, pd.DataFrame]]:
    """One frame per UTC day in the card-present contract's source shape, by `txn_time`."""
    rng = np.random.default_rng([config.seed, 7])
    world = _world(config, rng)
    pending: list[pd.DataFrame] = []  # fraud planned for later days (skimmed cards)
    serial = 0
    epoch = datetime(config.start.year, config.start.month, config.start.day, tzinfo=UTC)
    for index in range(config.days):
        day_start = int(epoch.timestamp()) + index * DAY_S
        day_rng = np.random.default_rng([config.seed, 11, index])
        parts = [_honest(config, world, day_rng, day_start)]
        parts += _compromised(config, world, day_rng, day_start, parts[0])
        parts += _leaked(config, world, day_rng, day_start)
        parts += _unusual(config, world, day_rng, day_start)
        parts += pending
        frame = pd.concat(parts, ignore_index=True)
        due = frame["t_s"] < day_start + DAY_S
        pending = [frame[~due]] if (~due).any() else []
        frame = frame[due].sort_values("t_s", kind="stable").reset_index(drop=True)
        yield config.start + timedelta(days=index), _shape(config, world, frame, serial, day_rng)
        serial += len(frame)


def _rows(cards, merchants, terminals, t_s, amounts, entry, fraud) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "card": np.asarray(cards),
            "merchant": np.asarray(merchants),
            "terminal": np.asarray(terminals),
            "t_s": np.asarray(t_s, dtype=np.int64),
            "amount": np.asarray(amounts, dtype=float),
            "entry_mode": np.asarray(entry, dtype=object),
            "is_fraud": np.asarray(fraud, dtype=np.int8),
        }
    )


def _honest(config, world, rng, day_start) -> pd.DataFrame:
    n = int(rng.poisson(config.txns_per_day))
    cards = rng.choice(config.n_cards, size=n, p=world.card_activity)
    merchants = world.card_homes[cards, rng.integers(0, 4, n)]
    away = rng.random(n) < config.travel_rate
    merchants[away] = rng.integers(0, config.n_merchants, away.sum())
    mail = rng.random(n) < config.mail_order_rate
    mail_merchants = np.flatnonzero(world.merchant_mcc == MAIL_ORDER_MCC)
    if len(mail_merchants):
        merchants[mail] = rng.choice(mail_merchants, mail.sum())
    amounts = _amounts(rng, world.merchant_mcc[merchants], world.card_scale[cards])
    big = rng.random(n) < config.big_purchase_rate
    amounts[big] = np.round(amounts[big] * rng.uniform(5, 15, big.sum()), 2)
    entry = rng.choice(["chip", "contactless", "swipe"], size=n, p=[0.55, 0.4, 0.05]).astype(object)
    entry[world.merchant_mcc[merchants] == MAIL_ORDER_MCC] = "manual"
    # daytime mostly: 7:00 to 23:00, with a few at night
    hours = np.where(rng.random(n) < 0.95, rng.uniform(7, 23, n), rng.uniform(0, 24, n))
    t_s = day_start + (hours * 3600).astype(np.int64)
    return _rows(
        cards, merchants, _terminal_of(world, merchants, rng), t_s, amounts, entry, np.zeros(n)
    )


def _cash_out(config, world, rng, cards: np.ndarray, start_s: np.ndarray) -> pd.DataFrame:
    """Stolen cards tested with small manual payments, then spent at cash-out merchants."""
    parts = []
    targets = np.flatnonzero(np.isin(world.merchant_mcc, CASH_OUT_MCCS))
    mail = np.flatnonzero(world.merchant_mcc == MAIL_ORDER_MCC)
    for card, t0 in zip(cards, start_s, strict=True):
        tests = int(rng.integers(1, 4))
        test_merchants = rng.choice(mail if len(mail) else targets, tests)
        t_tests = t0 + np.cumsum(rng.integers(30, 600, tests))
        parts.append(
            _rows(
                [card] * tests,
                test_merchants,
                _terminal_of(world, test_merchants, rng),
                t_tests,
                np.round(rng.uniform(0.5, 3.0, tests), 2),
                ["manual"] * tests,
                np.ones(tests),
            )
        )
        spends = int(rng.integers(1, 4))
        spend_merchants = rng.choice(targets, spends)
        t_spend = t_tests[-1] + np.cumsum(rng.integers(600, 7200, spends))
        parts.append(
            _rows(
                [card] * spends,
                spend_merchants,
                _terminal_of(world, spend_merchants, rng),
                t_spend,
                _amounts(rng, world.merchant_mcc[spend_merchants], np.full(spends, 1.5)),
                rng.choice(["swipe", "chip"], spends),
                np.ones(spends),
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else _rows([], [], [], [], [], [], [])


def _compromised(config, world, rng, day_start, honest: pd.DataFrame) -> list[pd.DataFrame]:
    k = int(rng.poisson(config.compromised_terminals_per_week / 7))
    if not k or honest.empty:
        return []
    terminals = rng.choice(honest["terminal"].unique(), size=min(k, honest["terminal"].nunique()))
    skimmed = honest.loc[honest["terminal"].isin(terminals), "card"].unique()
    used = skimmed[rng.random(len(skimmed)) < config.skimmed_card_fraud_share]
    start = day_start + rng.integers(2, 12, len(used)) * DAY_S + rng.integers(0, DAY_S, len(used))
    return [_cash_out(config, world, rng, used, start)]


def _leaked(config, world, rng, day_start) -> list[pd.DataFrame]:
    if rng.random() >= config.leaked_batches_per_week / 7:
        return []
    cards = rng.choice(config.n_cards, size=config.leaked_batch_cards, replace=False)
    n = len(cards) * 4
    merchants = rng.integers(0, config.n_merchants, n)
    t_s = day_start + int(rng.integers(0, DAY_S // 2)) + rng.integers(0, 6 * 3600, n)
    return [
        _rows(
            np.repeat(cards, 4),
            merchants,
            _terminal_of(world, merchants, rng),
            t_s,
            _amounts(rng, world.merchant_mcc[merchants], np.full(n, 2.0)),
            ["swipe"] * n,
            np.ones(n),
        )
    ]


def _unusual(config, world, rng, day_start) -> list[pd.DataFrame]:
    n = int(rng.poisson(config.unusual_amounts_per_day))
    if not n:
        return []
    cards = rng.choice(config.n_cards, size=n, p=world.card_activity)
    merchants = rng.choice(np.flatnonzero(np.isin(world.merchant_mcc, CASH_OUT_MCCS)), n)
    amounts = np.round(world.card_scale[cards] * rng.uniform(800, 3000, n), 2)
    t_s = day_start + rng.integers(0, DAY_S, n)
    entry = rng.choice(["manual", "swipe"], n)
    return [
        _rows(
            cards, merchants, _terminal_of(world, merchants, rng), t_s, amounts, entry, np.ones(n)
        )
    ]


def _shape(config, world, frame: pd.DataFrame, serial: int, rng) -> pd.DataFrame:
    """The contract's source columns."""
    n = len(frame)
    frame = frame.astype({"card": np.int64, "merchant": np.int64, "terminal": np.int64})
    delay_lo, delay_hi = config.label_delay_days
    delays = rng.integers(delay_lo * DAY_S, delay_hi * DAY_S + 1, n)
    fraud = frame["is_fraud"].to_numpy() == 1
    chargeback = pd.to_datetime(np.where(fraud, frame["t_s"] + delays, 0), unit="s", utc=True)
    offset = (
        world.merchant_xy[frame["merchant"].to_numpy()] - world.card_xy[frame["card"].to_numpy()]
    )
    distance = np.round(np.hypot(offset[:, 0], offset[:, 1]), 1)
    return pd.DataFrame(
        {
            "txn_id": [f"TX{serial + i:010d}" for i in range(n)],
            "txn_time": pd.to_datetime(frame["t_s"].to_numpy(), unit="s", utc=True),
            "card_token": [f"tok_{c:07d}" for c in frame["card"]],
            "terminal_id": [f"T{t:05d}" for t in frame["terminal"]],
            "merchant_id": [f"M{m:04d}" for m in frame["merchant"]],
            "amount": frame["amount"].to_numpy(),
            "mcc": world.merchant_mcc[frame["merchant"].to_numpy()].astype(object),
            "entry_mode": frame["entry_mode"].to_numpy(),
            "distance_km": distance,
            "is_fraud": frame["is_fraud"].to_numpy(dtype=np.int8),
            "chargeback_time": pd.Series(chargeback).where(fraud),
        }
    )


def iter_card_orders(config: CardGeneratorConfig) -> Iterator[tuple[date, pd.DataFrame]]:
    """(day, that day's transactions as validated orders: the platform's columns), day by day."""
    shipped = SourceFormat.of(load_contract(SHIPPED / "card_present.yaml", env={}))
    for day, frame in iter_card_days(config):
        yield day, validate_orders(frame, day, source=shipped, latest=_FAR_FUTURE).valid


def card_orders(config: CardGeneratorConfig) -> pd.DataFrame:
    """Every day's transactions as validated orders, in the order the feature paths read them."""
    return canonical_order(pd.concat([f for _, f in iter_card_orders(config)], ignore_index=True))


def write_card_files(
    config: CardGeneratorConfig, out_dir: Path, contract: Contract, fmt: str = "parquet"
) -> tuple[list[Path], int, int]:
    """One file a day, `orders_YYYY-MM-DD.<fmt>`, in `contract`'s shape (its column names, time
    zone rule and amount unit; its entities must be CARD_ENTITIES), atomically. Returns the
    paths, the transactions and the fraud written."""
    target = SourceFormat.of(contract)
    paths: list[Path] = []
    orders = fraud = 0
    # through the platform's columns, so any contract with these entities gets its own shape
    for day, platform in iter_card_orders(config):
        shaped = source_orders(target, platform)
        path = as_path(out_dir) / f"orders_{day.isoformat()}.{fmt}"
        write_frame(shaped, path, fmt)
        paths.append(path)
        orders += len(shaped)
        fraud += int(platform["is_fraud"].sum())
    return paths, orders, fraud


_FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)  # generated days may lie ahead of today
