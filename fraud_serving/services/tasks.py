"""Background tasks that stop when they are told to.

A cancelled task can lose its cancellation inside a library call: a Redis command that times out
at the moment the task is cancelled comes back as a TimeoutError, which the store's probe catches
like any outage, and a `while True` loop then runs on and the app's shutdown waits for it forever
(seen once in a loaded test run: the TestClient hung on exit). Each loop asks after every round.
"""

from __future__ import annotations

import asyncio


def raise_if_cancelled() -> None:
    """Raise CancelledError when the running task has been asked to stop, even if a call it made
    swallowed the cancellation (the task's `cancelling()` count keeps the request)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
