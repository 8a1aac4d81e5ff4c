"""OpenAPI descriptions of the error answers the routes share."""

from __future__ import annotations

from litestar.openapi import ResponseSpec

from fraud_serving.schemas import Problem


def problem(description: str) -> ResponseSpec:
    # generate_examples=False: Litestar otherwise fills the schema with random sample values,
    # which read as real error answers in the docs
    return ResponseSpec(data_container=Problem, description=description, generate_examples=False)


BAD_INPUT = {400: problem("Invalid input: `errors` lists each field with the reason")}
UNAUTHORIZED = {401: problem("Missing or unknown X-API-Key")}
FORBIDDEN = {403: problem("The key's role does not allow this (the detail names both)")}
UNAVAILABLE = {
    503: problem("Online store (Redis) unreachable, or no model loaded: nothing was stored; retry")
}
UNKNOWN_OUTCOME = {
    504: problem(
        "Redis stopped answering during the write: it may be stored; retry with the same "
        "order ids (a stored order is answered from the store)"
    )
}
