"""Entity state: the retained events of one entity, and its compact binary codec.

The codec is msgpack of plain columns (no pickle): the Redis loader writes it, the scoring service
reads and rewrites it. A version byte leads so that the format can evolve: version 2 added the
numeric attributes' values (a version-1 state, written before, has none).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import msgpack
import numpy as np
import pandas as pd

from fraud_core.features.kernel import NO_LABEL

CODEC_VERSION = 2


@dataclass
class EntityState:
    """Retained events of one entity, oldest first, as parallel columns."""

    t_s: list[int] = field(default_factory=list)
    cents: list[int] = field(default_factory=list)
    counterparts: dict[str, list[str]] = field(default_factory=dict)
    order_ids: list[str] = field(default_factory=list)
    label_s: list[int] = field(default_factory=list)
    # numeric attribute -> its values in whole units (`offline.order_numbers`)
    numbers: dict[str, list[int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.t_s)


def encode_state(state: EntityState) -> bytes:
    payload = [
        CODEC_VERSION,
        state.t_s,
        state.cents,
        state.counterparts,
        state.order_ids,
        [-1 if x == NO_LABEL else x for x in state.label_s],
        state.numbers,
    ]
    return msgpack.packb(payload, use_bin_type=True)


def decode_state(blob: bytes) -> EntityState:
    try:
        version, t_s, cents, counterparts, order_ids, label_s, *rest = msgpack.unpackb(
            blob, raw=False
        )
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, TypeError) as exc:
        raise ValueError(f"not an entity state: {exc}") from exc
    if (version, len(rest)) not in ((1, 0), (CODEC_VERSION, 1)):
        raise ValueError(
            f"entity state codec version {version} is not supported (expected {CODEC_VERSION})"
        )
    return EntityState(
        t_s=t_s,
        cents=cents,
        counterparts=counterparts,
        order_ids=order_ids,
        label_s=[NO_LABEL if x == -1 else x for x in label_s],
        numbers=rest[0] if rest else {},
    )


def states_from_frame(
    state: pd.DataFrame, counterparts: tuple[str, ...], numbers: tuple[str, ...] = ()
) -> dict[str, EntityState]:
    """Split a kind's state table (offline form, see `offline.state_columns`) into per-entity
    states, events kept in their order."""
    if state.empty:
        return {}
    order = np.argsort(pd.factorize(state["entity"])[0], kind="stable")
    s = state.iloc[order]
    entities = s["entity"].to_numpy()
    bounds = np.flatnonzero(np.r_[True, entities[1:] != entities[:-1], True])
    cols = {
        "t_s": s["t_s"].to_numpy().tolist(),
        "cents": s["cents"].to_numpy().tolist(),
        "order_id": s["order_id"].to_numpy().tolist(),
        "label_s": s["label_s"].to_numpy().tolist(),
        **{c: s[c].to_numpy().tolist() for c in (*counterparts, *numbers)},
    }
    out: dict[str, EntityState] = {}
    for a, b in itertools.pairwise(bounds):
        out[entities[a]] = EntityState(
            t_s=cols["t_s"][a:b],
            cents=cols["cents"][a:b],
            counterparts={c: cols[c][a:b] for c in counterparts},
            order_ids=cols["order_id"][a:b],
            label_s=cols["label_s"][a:b],
            numbers={c: cols[c][a:b] for c in numbers},
        )
    return out
