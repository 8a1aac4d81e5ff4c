"""Stored answers: what the service keeps per scored order, so that the same order sent again gets
the same answer and changes nothing (idempotency on `order_id`), and the fingerprint that tells
the same order from another one sent under the same id.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import msgspec

from fraud_core.features.offline import amount_cents, epoch_seconds
from fraud_serving.schemas import ScoreResult


class StoredAnswer(msgspec.Struct):
    """What Redis keeps per scored order: the request's fingerprint, its entities, the answer,
    and the order's own date (a label may not be dated before it; None in older records)."""

    fp: str
    ids: dict[str, str]
    answer: ScoreResult
    order_date: datetime | None = None


def fingerprint(order: Any, ids: dict[str, str], numbers: dict[str, int] | None = None) -> str:
    """What makes two requests the same order (fields the features use): its id, time and
    amount, its entity keys and categorical attributes (`ids`, in the contract's order) and its
    aggregated numeric attributes in whole units (`numbers`)."""
    text = "\x1f".join(
        (
            order.order_id,
            str(epoch_seconds(order.order_date)),
            str(amount_cents(order.order_amount)),
            *ids.values(),
            *(str(n) for n in (numbers or {}).values()),
        )
    )
    return hashlib.sha1(text.encode()).hexdigest()[:20]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(StoredAnswer)


def encode_record(stored: StoredAnswer) -> bytes:
    return _encoder.encode(stored)


def decode_record(blob: bytes) -> StoredAnswer:
    return _decoder.decode(blob)
