"""`fraud serve`'s HTTP protocol (`fraud_serving.http`: uvicorn's, with a response's writes
joined) on a real uvicorn and raw sockets: keep-alive, pipelined requests answered in order,
`Connection: close` answered in full before the close, and a scored order's answer whole."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from .conftest import API_KEY
from .support import app_in_thread, payload, small_orders


@pytest.fixture
def port(settings) -> Iterator[int]:
    with app_in_thread(settings) as url:  # with `fraud serve`'s protocol
        yield int(urlsplit(url).port or 0)


def _request(method: str, path: str, body: bytes = b"", close: bool = False) -> bytes:
    head = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"X-API-Key: {API_KEY}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    if close:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _responses(sock: socket.socket, count: int, timeout_s: float = 10) -> list[tuple[int, bytes]]:
    """`count` responses (status, body) read off `sock`, by their Content-Length."""
    sock.settimeout(timeout_s)
    buffer, out = b"", []
    while len(out) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {len(out)} responses"
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        length = int(headers["content-length"])
        while len(buffer) < length:
            chunk = sock.recv(65536)
            assert chunk, "closed inside a body"
            buffer += chunk
        out.append((int(lines[0].split()[1]), buffer[:length]))
        buffer = buffer[length:]
    assert buffer == b""
    return out


def test_pipelined_and_kept_alive_requests_get_whole_answers_in_order(port) -> None:
    orders = [payload(small_orders().iloc[i]) for i in (1, 2, 3)]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        # three orders in one write: three answers, in the order asked
        sock.sendall(
            b"".join(_request("POST", "/v1/score", json.dumps(o).encode()) for o in orders)
        )
        answers = _responses(sock, 3)
        assert [status for status, _ in answers] == [200, 200, 200]
        assert [json.loads(body)["order_id"] for _, body in answers] == [
            o["order_id"] for o in orders
        ]
        # the same connection again: a bad body, then a route Litestar answers itself
        sock.sendall(_request("POST", "/v1/score", b"{not json"))
        sock.sendall(_request("GET", "/v1/model"))
        (bad, card) = _responses(sock, 2)
        assert bad[0] == 400 and json.loads(bad[1])["errors"]
        assert card[0] == 200 and json.loads(card[1])["version"]


def test_a_closing_request_gets_its_whole_answer_before_the_close(port) -> None:
    order = payload(small_orders().iloc[4])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(_request("POST", "/v1/score", json.dumps(order).encode(), close=True))
        ((status, body),) = _responses(sock, 1)
        assert status == 200 and json.loads(body)["order_id"] == order["order_id"]
        assert sock.recv(65536) == b""  # then the server closed the connection
