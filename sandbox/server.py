"""Build a sandbox from a scenario file and serve every vendor on its own port."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from sandbox.core import Clock, Sandbox, parse_instant

# Vendor module name -> default loopback port. Each module exposes
# ``create_app(sandbox) -> VendorApp``.
DEFAULT_PORTS = {
    "linkedin": 18101,
    "meta": 18102,
    "enrichment": 18103,
    "marketo": 18104,
    "hubspot": 18105,
    "salesforce": 18106,
    "alerts": 18107,
}


def load_scenario(path: str | Path) -> dict[str, Any]:
    """Read a scenario file in JSON or YAML and validate it against the scenario schema."""
    from sandbox.scenario import load

    return load(path)


def build_sandbox(scenario: dict[str, Any]) -> Sandbox:
    clock_spec = scenario.get("clock") or {}
    frozen = clock_spec.get("frozen_at")
    start = clock_spec.get("start_at")
    clock = Clock(parse_instant(frozen) if frozen else None, parse_instant(start) if start else None)
    sandbox = Sandbox(scenario, clock)
    for vendor in DEFAULT_PORTS:
        module = importlib.import_module(f"sandbox.{vendor}")
        sandbox.add_app(module.create_app(sandbox))
    return sandbox
