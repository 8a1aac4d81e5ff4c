"""Looking up one entity: its retained history and its current features."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fraud_core.contract.request import RequestShape, RequestValueError
from fraud_core.features.kernel import NO_LABEL
from fraud_core.features.offline import epoch_seconds
from fraud_core.features.spec import CENTS_PER_UNIT, FeatureSpec
from fraud_core.features.state import decode_state
from fraud_core.scoring.entity import entity_features_at
from fraud_serving.schemas import EntityEvent, EntityView
from fraud_serving.services.scoring import InvalidInputError
from fraud_serving.services.store import OnlineStore

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class EntityNotFoundError(LookupError):
    pass


def _moment(t_s: int) -> datetime:
    return _EPOCH + timedelta(seconds=t_s)


class EntityService:
    def __init__(self, store: OnlineStore, shape: RequestShape, spec: FeatureSpec) -> None:
        self.store = store
        self.shape = shape
        self.spec = spec

    async def view(self, kind: str, value: str, as_of: datetime | None = None) -> EntityView:
        """The entity of `kind` whose value (as an order would send it) is `value`: its key is
        derived as for an order (transform, keyed digest); the view shows the key."""
        try:
            key = self.shape.key_of(kind, value)
        except RequestValueError as err:
            raise InvalidInputError(err.field, err.reason) from None
        return await self.view_key(kind, key, as_of, shown=value)

    async def view_key(
        self, kind: str, key: str, as_of: datetime | None = None, shown: str | None = None
    ) -> EntityView:
        """The entity whose key, as the store keeps it, is `key` (`shown`: how to name it in
        the error when it is not there)."""
        namespace, (blob,) = await self.store.get_states([(kind, key)])
        if blob is None:
            raise EntityNotFoundError(f"no {kind} {shown or key!r} in the online store")
        state = decode_state(blob)
        moment = as_of or datetime.now(UTC)
        features = entity_features_at(state, kind, epoch_seconds(moment), self.spec)
        events = [
            EntityEvent(
                order_id=state.order_ids[i],
                order_date=_moment(state.t_s[i]),
                order_amount=state.cents[i] / CENTS_PER_UNIT,
                counterparts={c: values[i] for c, values in state.counterparts.items()},
                numbers={
                    v.name: state.numbers[v.name][i] / v.scale
                    for v in self.spec.numeric
                    if v.name in state.numbers
                },
                fraud_label_date=None
                if state.label_s[i] == NO_LABEL
                else _moment(state.label_s[i]),
            )
            for i in range(len(state))
        ]
        return EntityView(
            kind=kind,  # type: ignore[arg-type]
            id=key,
            as_of=moment,
            namespace=namespace,
            events=events,
            features={k: (None if v != v else v) for k, v in features.items()},
        )
