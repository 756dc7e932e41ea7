"""Command line entry point: ``python -m leadflow.collector [--host H] [--port N]``."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from leadflow.collector.app import create_app

DEFAULT_PORT = 18200


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m leadflow.collector",
        description="Run the pixel collector HTTP service. Settings other than the listen address come from "
        "environment variables (see leadflow.collector.app).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port to listen on (default: %(default)s)")
    parser.add_argument(
        "--proxy-headers",
        action="store_true",
        help="take the client address from X-Forwarded-For sent by --forwarded-allow-ips, so the per-address "
        "rate limit sees browsers behind a load balancer",
    )
    parser.add_argument(
        "--forwarded-allow-ips",
        default="127.0.0.1",
        help="comma-separated proxy addresses trusted for X-Forwarded-For (default: %(default)s)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app()
    except ValueError as exc:
        parser.error(str(exc))
    # The access log is off because it records client addresses in clear.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        proxy_headers=args.proxy_headers,
        forwarded_allow_ips=args.forwarded_allow_ips,
        log_level=args.log_level,
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
