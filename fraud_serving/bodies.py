"""Request bodies are decoded once, straight into the route's declared type, in strict mode.

Litestar's own path decodes JSON untyped and then converts it in msgspec's lax mode, where the
string "42.5" becomes an amount and an integer becomes a date; and bytes that are not UTF-8
escape as a 500. The API's types are strict instead: a value of the wrong JSON type is a 400
naming the field, and so is any body that is not JSON. Litestar passes the decoded struct on
unchanged (converting a struct to its own type is free).
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException


@functools.cache
def _decoder(target: Any) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(target, strict=True)


def _refuse(reason: str) -> ValidationException:
    return ValidationException(
        detail=reason, extra=[{"key": "body", "message": reason, "source": "body"}]
    )


def decode_strictly(body: bytes, target: Any) -> Any:
    """`body` as `target`, or a `ValidationException` whose message names the place in the body
    (msgspec's "- at `$.orders[1].order_amount`")."""
    try:
        return _decoder(target).decode(body)
    except UnicodeDecodeError as exc:
        raise _refuse(f"not valid UTF-8 (byte {exc.start})") from None
    except msgspec.ValidationError as exc:
        raise _refuse(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise _refuse(f"not valid JSON: {exc}") from None


class StrictJSONRequest(Request):
    """The app's request class: `json()` decodes into the handler's `data` type, strictly."""

    async def json(self) -> Any:
        data = self.route_handler.parsed_data_field
        if data is None:
            return await super().json()
        return decode_strictly(await self.body(), data.annotation)
