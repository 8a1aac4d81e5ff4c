"""Which of the platform's sample-data generators can write a contract's orders: the e-commerce
one (`fraud_core.generator`) for the built-in entities, the card-present one
(`fraud_core.card_generator`) for a card, a terminal and a merchant, none for other entities."""

from __future__ import annotations

from fraud_core.card_generator import CARD_ENTITIES
from fraud_core.contract import Contract, builtin_contract

ECOMMERCE = "ecommerce"
CARD_PRESENT = "card_present"


def sample_generator(contract: Contract) -> str | None:
    """ECOMMERCE, CARD_PRESENT, or None when no generator writes this contract's entities."""
    kinds = set(contract.entity_kinds)
    if kinds == set(builtin_contract().entity_kinds):
        return ECOMMERCE
    if kinds == set(CARD_ENTITIES):
        return CARD_PRESENT
    return None


def no_sample_data(contract: Contract) -> str:
    """Why there is no sample data for `contract`, for people."""
    return (
        f"contract {contract.name!r} has the entities {sorted(contract.entity_kinds)}: sample data "
        f"exists for the built-in entities {list(builtin_contract().entity_kinds)} and for "
        f"card-present ones {list(CARD_ENTITIES)}"
    )
