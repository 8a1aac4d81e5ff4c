"""The fixed set of entity transforms a contract may name, and the keyed digest that stores a
personal value. They take and return pandas string Series (NA stays NA: a value the transform
cannot read, such as an e-mail without `@`, becomes NA and the row is refused as missing)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

import pandas as pd

from fraud_core.contract.model import Entity, Transform


def _lower_strip(values: pd.Series) -> pd.Series:
    return values.str.strip().str.lower()


def _email_domain(values: pd.Series) -> pd.Series:
    text = values.str.strip().str.lower()
    domain = text.str.rpartition("@")[2].where(text.str.contains("@", regex=False))
    return domain.mask(domain == "")


IPV6_PREFIX_BITS = 64  # an IPv6 customer network; `ip_prefix/24/48` says otherwise


def _ip_prefix(values: pd.Series, bits: int, bits_v6: int) -> pd.Series:
    def network(value: str) -> str | None:
        try:
            address = ipaddress.ip_address(value.strip())
        except ValueError:
            return None
        size = bits if address.version == 4 else bits_v6
        return str(ipaddress.ip_network(f"{address}/{size}", strict=False))

    unique = values.dropna().unique()
    mapping = {v: network(v) for v in unique}  # addresses repeat: parse each once
    return values.map(mapping, na_action="ignore").astype("string")


def _prefix(values: pd.Series, length: int) -> pd.Series:
    return values.str.strip().str.slice(0, length)


def apply_transform(transform: Transform, values: pd.Series) -> pd.Series:
    values = values.astype("string")
    if transform.name == "lower_strip":
        out = _lower_strip(values)
    elif transform.name == "email_domain":
        out = _email_domain(values)
    elif transform.name == "ip_prefix":
        out = _ip_prefix(values, transform.size or 32, transform.size_v6 or IPV6_PREFIX_BITS)
    elif transform.name == "prefix":
        out = _prefix(values, transform.size or 1)
    else:  # the loader admits no other name
        raise ValueError(f"unknown transform {transform.name!r}")
    return out.mask(out == "")


def keyed_digest(values: pd.Series, key: bytes) -> pd.Series:
    """HMAC-SHA256 of each value (hex): what a personal entity stores instead of the value."""
    digests = {
        v: hmac.new(key, v.encode("utf-8"), hashlib.sha256).hexdigest()
        for v in values.dropna().unique()
    }
    return values.map(digests, na_action="ignore").astype("string")


def entity_keys(entity: Entity, values: pd.Series, key: bytes | None = None) -> pd.Series:
    """The values an entity is keyed by: the column's text, through the entity's transform,
    then digested when the entity is personal (`key` required then)."""
    out = values.astype("string")
    if entity.transform is not None:
        out = apply_transform(entity.transform, out)
    if entity.personal:
        if not key:
            raise ValueError(f"entity {entity.name!r} is personal: a key is needed to store it")
        out = keyed_digest(out, key)
    return out
