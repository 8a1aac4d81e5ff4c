"""The HTTP protocol `fraud serve` runs the app under: uvicorn's httptools protocol, whose
responses leave in one write.

uvicorn writes a response's status line and headers when the app sends `http.response.start`
and its body when it sends `http.response.body`: two `send` system calls and two TCP segments
for every scored order, about a ninth of a worker's time under wrk (bench/RESULTS.md, issue
14). Here the connection's writes made in one turn of the event loop are joined and leave
together at the end of the turn; a response's two messages are sent in one turn, so they leave
as one write. Closing the connection sends what is held first.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _JoinedWrites:
    """A transport whose `write`s in one event-loop turn reach the socket as one."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._held:
            self._loop.call_soon(self._flush)
        self._held.append(data)

    def writelines(self, data: list[bytes]) -> None:  # in order with what `write` holds
        for chunk in data:
            self.write(chunk)

    def _flush(self) -> None:
        held, self._held = self._held, []
        if held and not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(b) for b in self._held)

    def __getattr__(self, name: str) -> Any:  # everything else is the transport's own
        return getattr(self._transport, name)


class JoinedWritesProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a `_JoinedWrites` transport (`fraud serve` passes it as
    uvicorn's `http`)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_JoinedWrites(transport, self.loop))  # type: ignore[arg-type]


# uvicorn's options for the service, wherever it is started (`fraud serve`, the tests' servers)
SERVER_OPTIONS: dict[str, Any] = {"http": JoinedWritesProtocol, "server_header": False}
