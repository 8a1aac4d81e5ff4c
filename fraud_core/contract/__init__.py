"""The data contract: one YAML file that says what an order looks like (source columns and their
roles), which entities and attributes it has and what features they get. Everything else
derives from it; without `FRAUD_CONTRACT` the built-in e-commerce contract applies."""

from fraud_core.contract.loader import (
    CONTRACT_ENV,
    DEFAULT_CONTRACT_PATH,
    SHIPPED,
    ContractError,
    active_contract,
    applied_contract,
    builtin_contract,
    contract_from_text,
    contract_path,
    load_contract,
    serving_contract,
)
from fraud_core.contract.model import Contract

__all__ = [
    "CONTRACT_ENV",
    "DEFAULT_CONTRACT_PATH",
    "SHIPPED",
    "Contract",
    "ContractError",
    "active_contract",
    "applied_contract",
    "builtin_contract",
    "contract_from_text",
    "contract_path",
    "load_contract",
    "serving_contract",
]
