"""Airflow connections of the local stack, as ``AIRFLOW_CONN_*`` variables in JSON form.

Each vendor connection points its host at the sandbox and carries the
scenario's credentials for that account, exactly as a production connection
would carry the real vendor's host and secrets.
"""

from __future__ import annotations

import json
from typing import Any

SANDBOX_HOST = "127.0.0.1"
SANDBOX_PORTS = {
    "linkedin": 18101,
    "meta": 18102,
    "enrichment": 18103,
    "marketo": 18104,
    "hubspot": 18105,
    "salesforce": 18106,
    "alerts": 18107,
}
SMTP_PORT = 18025


def _url(vendor: str) -> str:
    return f"http://{SANDBOX_HOST}:{SANDBOX_PORTS[vendor]}"


def _conn(host: str, login: str | None = None, password: str | None = None, extra: dict[str, Any] | None = None, port: int | None = None) -> str:
    spec: dict[str, Any] = {"conn_type": "http", "host": host}
    if login is not None:
        spec["login"] = login
    if password is not None:
        spec["password"] = password
    if port is not None:
        spec["port"] = port
    if extra:
        spec["extra"] = extra
    return json.dumps(spec)


def env_name(conn_id: str) -> str:
    return "AIRFLOW_CONN_" + conn_id.upper()


def connections(scenario: dict[str, Any]) -> dict[str, str]:
    """Return environment variables for every connection the scenario's accounts need."""
    env: dict[str, str] = {}
    enrichment = scenario.get("enrichment") or {}
    env[env_name("enrichment")] = _conn(_url("enrichment"), password=enrichment.get("api_key", ""), extra={"pending_wait_seconds": 0.2})
    env[env_name("alerts_webhook")] = _conn(_url("alerts"), extra={"path": "/hooks/leadflow-alerts"})
    env[env_name("alerts_smtp")] = json.dumps(
        {"conn_type": "smtp", "host": SANDBOX_HOST, "port": SMTP_PORT, "extra": {"from": "leadflow@localhost", "to": ["data-team@example.com"]}}
    )
    for account in scenario["accounts"]:
        account_id = account["account_id"]
        if "linkedin" in account:
            env[env_name(f"linkedin_{account_id}")] = _conn(_url("linkedin"), password=account["linkedin"]["access_token"])
        if "meta" in account:
            env[env_name(f"meta_{account_id}")] = _conn(_url("meta"), password=account["meta"]["access_token"])
        map_spec = account.get("map") or {}
        if map_spec.get("type") == "marketo":
            env[env_name(f"marketo_{account_id}")] = _conn(
                _url("marketo"), login=map_spec["client_id"], password=map_spec["client_secret"], extra={"munchkin_id": map_spec.get("munchkin_id", "")}
            )
        elif map_spec.get("type") == "hubspot":
            env[env_name(f"hubspot_{account_id}")] = _conn(_url("hubspot"), password=map_spec["access_token"])
        crm_spec = account.get("crm") or {}
        if crm_spec.get("type") == "salesforce":
            env[env_name(f"salesforce_{account_id}")] = _conn(_url("salesforce"), login=crm_spec["client_id"], password=crm_spec["client_secret"])
    return env
