"""An entity's clock may not run ahead of the wall clock by more than the allowed skew.

The online path accepts an order dated before its entity's latest event at that latest time, so
one event dated in 2099 would drag every later order of the entity to 2099. The API refuses such
orders (`fraud_core.clock`), but a state written before that rule, or by a loader allowing more
skew, can still hold one: the scorer drops those impossible events before it uses the state.
"""

from __future__ import annotations

import bisect

from fraud_core.features.state import EntityState


def without_future_events(state: EntityState, latest_s: int) -> tuple[EntityState, list[str]]:
    """The state without its events dated after `latest_s` (epoch seconds), and the order ids
    dropped. Events are in accepted order (times never decrease), so those form a suffix."""
    keep = bisect.bisect_right(state.t_s, latest_s)
    if keep == len(state):
        return state, []
    return (
        EntityState(
            t_s=state.t_s[:keep],
            cents=state.cents[:keep],
            counterparts={c: values[:keep] for c, values in state.counterparts.items()},
            order_ids=state.order_ids[:keep],
            label_s=state.label_s[:keep],
            numbers={v: values[:keep] for v, values in state.numbers.items()},
        ),
        state.order_ids[keep:],
    )
