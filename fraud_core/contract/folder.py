"""One data folder, one contract: the folder records the terms of the contract its orders were
validated under (`contract.json`), and a step under a contract with other terms is refused.

Validated orders, buckets, features, states, training sets and models all take their columns
and features from the contract; mixing two contracts' files in one folder would mix their
values. Renaming source columns or changing how landing files are formatted keeps the terms
(`Contract.model_terms`), so such a contract keeps the folder.
"""

from __future__ import annotations

import json

from fraud_core.contract.loader import ContractError
from fraud_core.contract.model import Contract, differing_terms
from fraud_core.storage import DataLayout, atomic_path


def pin_contract(layout: DataLayout, contract: Contract) -> None:
    """Record `contract` as the folder's when it has none; ContractError naming the differing
    terms when the folder's recorded contract means something else."""
    path = layout.contract_record
    if not path.exists():
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(contract.record(), indent=2), encoding="utf-8")
        return
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
        terms, name = recorded["terms"], recorded["name"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ContractError(f"{path}: not a contract record ({err})") from None
    differs = differing_terms(terms, json.loads(json.dumps(contract.model_terms())))
    if differs:
        raise ContractError(
            f"{layout.root} holds data under contract {name!r}, which differs from contract "
            f"{contract.name!r} in {', '.join(differs[:5])}: use another FRAUD_DATA_DIR for "
            f"this contract (or delete {path.name} and every derived folder to rebuild this "
            "one from its landing files)"
        )
