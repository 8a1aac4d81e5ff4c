"""`fraud serve`: the scoring service under uvicorn (127.0.0.1:8000 unless told otherwise).

Configuration comes from the environment (see `fraud_serving.settings`). Without
`FRAUD_API_KEYS` a key is generated for this run and printed, so the service is never open.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="interface (default $FRAUD_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default $FRAUD_PORT or 8000)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--log-level", default="info", help="log level of uvicorn and the service (default info)"
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from fraud_core.access import ADMIN, KEYS_ENV, KEYS_FILE_ENV, KeyConfigError, KeyRing
    from fraud_core.contract import ContractError, serving_contract
    from fraud_serving.http import SERVER_OPTIONS
    from fraud_serving.settings import CONSOLE_SECRET_ENV

    try:
        serving_contract()
    except ContractError as err:
        print(f"fraud serve: {err}", file=sys.stderr)
        return 2
    host = args.host or os.environ.get("FRAUD_HOST") or "127.0.0.1"
    port = args.port or int(os.environ.get("FRAUD_PORT") or 8000)
    if not (os.environ.get(KEYS_ENV, "").strip() or os.environ.get(KEYS_FILE_ENV, "").strip()):
        # one admin key for every worker process, shown once
        key = secrets.token_urlsafe(24)
        os.environ[KEYS_ENV] = f"{ADMIN}:generated:{key}"
        print(f"{KEYS_ENV} is not set; this run's admin API key is: {key}", file=sys.stderr)
    if not os.environ.get(CONSOLE_SECRET_ENV, "").strip():
        # the review console's sessions must open in every worker: one secret for all of them
        os.environ[CONSOLE_SECRET_ENV] = secrets.token_hex(32)
    try:  # a bad entry is named here, once, not by each worker's traceback
        KeyRing.of(os.environ.get(KEYS_ENV, "").split(","), os.environ.get(KEYS_FILE_ENV) or None)
    except KeyConfigError as err:
        print(f"fraud serve: {err}", file=sys.stderr)
        return 2
    os.environ["FRAUD_LOG_LEVEL"] = args.log_level.upper()  # the service's own loggers, per worker
    uvicorn.run(
        "fraud_serving.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=args.access_log,
        **SERVER_OPTIONS,  # uvicorn's httptools protocol, a response in one write
    )
    return 0
