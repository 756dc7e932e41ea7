"""Run the vendor sandbox: ``python -m sandbox --scenario FILE [--urls-file PATH]``.

Serves every vendor on its own loopback port (defaults in ``sandbox.server``)
plus the SMTP receiver for alert emails, until interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from sandbox.server import DEFAULT_PORTS, build_sandbox, load_scenario

log = logging.getLogger("sandbox")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the vendor sandbox for one scenario.")
    parser.add_argument("--scenario", required=True, help="scenario file, JSON or YAML")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback by default)")
    parser.add_argument("--port-offset", type=int, default=0, help="added to every default port")
    parser.add_argument("--smtp-port", type=int, default=None, help="port of the SMTP receiver for alert emails (default: settings.alerts.smtp_port of the scenario, else 18025)")
    parser.add_argument("--urls-file", type=Path, help="write the vendor base URLs here as JSON once serving")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    scenario = load_scenario(args.scenario)
    sandbox = build_sandbox(scenario)
    urls = sandbox.serve({name: port + args.port_offset for name, port in DEFAULT_PORTS.items()}, host=args.host)
    alerts = sandbox.apps.get("alerts")
    if alerts is not None and hasattr(alerts, "start_smtp"):
        alerts.start_smtp(args.host, args.smtp_port)
        urls["smtp"] = f"smtp://{args.host}:{alerts.smtp_port}"
    if args.urls_file:
        args.urls_file.parent.mkdir(parents=True, exist_ok=True)
        args.urls_file.write_text(json.dumps(urls, indent=1), encoding="utf-8")
    log.info("sandbox serving scenario %r: %s", scenario.get("name"), urls)

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    if alerts is not None and hasattr(alerts, "stop_smtp"):
        alerts.stop_smtp()
    sandbox.stop()
    log.info("sandbox stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
