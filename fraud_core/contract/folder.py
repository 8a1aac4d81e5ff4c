"""One data folder, one contract: the folder records the terms of the contract its orders were
validated under (`contract.json`), and a step under a contract with other terms is refused.

Validated orders, buckets, features, states, training sets and models all take their columns
and features from the contract; mixing two contracts' files in one folder would mix their
values. Renaming source columns or changing how landing files are formatted keeps the terms
(`Contract.model_terms`), so such a contract keeps the folder. The record also keeps the
feature names the platform computed under the contract: an upgrade of the platform that changes
them (new feature families for the same attributes) is refused too, rather than writing new
feature files beside old ones with other columns.
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
            record = {**contract.record(), "feature_names": contract.spec.feature_names}
            tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
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
    features = recorded.get("feature_names")  # records from before it was kept have none
    if features is not None and features != contract.spec.feature_names:
        added = [f for f in contract.spec.feature_names if f not in features]
        removed = [f for f in features if f not in contract.spec.feature_names]
        raise ContractError(
            f"{layout.root} holds features of contract {name!r} as an earlier version of the "
            f"platform computed them; this one computes {len(added)} more ({', '.join(added[:3])}"
            f"{', ...' if len(added) > 3 else ''}) and {len(removed)} fewer: use another "
            f"FRAUD_DATA_DIR (or delete {path.name} and every derived folder to rebuild this one "
            "from its landing files)"
        )
