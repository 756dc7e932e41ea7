"""Write the Airflow connections of the compose stack as a LocalFilesystemBackend JSON file.

    python scripts/compose_connections.py --scenario scenarios/default.json \\
        --out /opt/airflow/leadflow-secrets/connections.json \\
        [--sandbox-host sandbox] [--warehouse-uri postgresql://...]

The output maps each connection id to an object with the fields of an Airflow
``Connection`` (``conn_type``, ``host``, ``login``, ``password``, ``port``,
``schema``, ``extra``), which is the JSON form that
``airflow.secrets.local_filesystem.LocalFilesystemBackend`` reads through its
``connections_file_path`` argument. It contains one connection per vendor and
account of the scenario, named as the DAGs look them up (``linkedin_<account>``,
``meta_<account>``, ``marketo_<account>`` or ``hubspot_<account>``,
``salesforce_<account>``), plus ``enrichment``, ``alerts_webhook``,
``alerts_smtp`` and ``warehouse``. Vendor hosts point at the sandbox service;
a production deployment writes the same ids with the real vendors' hosts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

# Listen ports of the vendor sandbox. They must equal sandbox.server.DEFAULT_PORTS,
# which tests/test_compose.py checks.
SANDBOX_PORTS = {
    "linkedin": 18101,
    "meta": 18102,
    "enrichment": 18103,
    "marketo": 18104,
    "hubspot": 18105,
    "salesforce": 18106,
    "alerts": 18107,
}
DEFAULT_SMTP_PORT = 18025
DEFAULT_SANDBOX_HOST = "sandbox"
DEFAULT_WAREHOUSE_URI = "postgresql://leadflow:leadflow@warehouse:5432/warehouse"
DEFAULT_ALERT_FROM = "leadflow@localhost"
DEFAULT_ALERT_TO = "data-team@example.com"
WEBHOOK_PATH = "/hooks/leadflow-alerts"


class ScenarioError(ValueError):
    """Missing or invalid scenario value that a connection needs."""


def _required(spec: dict[str, Any], key: str, where: str) -> Any:
    value = spec.get(key)
    if value in (None, ""):
        raise ScenarioError(f"missing {where}.{key} in the scenario, which the connection needs")
    return value


def _http(
    host: str, login: str | None = None, password: str | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    connection: dict[str, Any] = {"conn_type": "http", "host": host}
    if login is not None:
        connection["login"] = login
    if password is not None:
        connection["password"] = password
    if extra:
        connection["extra"] = extra
    return connection


def warehouse_connection(uri: str) -> dict[str, Any]:
    """Split a ``postgresql://user:password@host:port/database`` URI into connection fields."""
    parts = urlsplit(uri)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(
            f"invalid warehouse URI scheme {parts.scheme!r}: expected postgresql://user:password@host:port/database"
        )
    if not parts.hostname:
        raise ValueError("invalid warehouse URI: the host is missing")
    # leadflow.warehouse.dsn() builds its libpq URI from host, port, login,
    # password and schema only, so query options such as sslmode would be lost.
    if parts.query:
        raise ValueError(
            f"invalid warehouse URI: query options ({parts.query}) are not supported by leadflow.warehouse"
        )
    connection: dict[str, Any] = {"conn_type": "postgres", "host": parts.hostname}
    if parts.port:
        connection["port"] = parts.port
    if parts.username:
        connection["login"] = unquote(parts.username)
    if parts.password:
        connection["password"] = unquote(parts.password)
    database = parts.path.lstrip("/")
    if database:
        connection["schema"] = unquote(database)
    return connection


def build_connections(
    scenario: dict[str, Any],
    sandbox_host: str = DEFAULT_SANDBOX_HOST,
    warehouse_uri: str = DEFAULT_WAREHOUSE_URI,
    smtp_port: int = DEFAULT_SMTP_PORT,
    alert_from: str = DEFAULT_ALERT_FROM,
    alert_to: list[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Return the connections that the scenario's accounts need, keyed by connection id.

    Raises ``ScenarioError`` when an account's vendor section lacks a credential.
    """

    def url(vendor: str) -> str:
        return f"http://{sandbox_host}:{SANDBOX_PORTS[vendor]}"

    # The scenario's enrichment section is optional, and without it the connection has no API key.
    enrichment = scenario.get("enrichment") or {}
    connections: dict[str, dict[str, Any]] = {
        "warehouse": warehouse_connection(warehouse_uri),
        "enrichment": _http(url("enrichment"), password=enrichment.get("api_key")),
        "alerts_webhook": _http(url("alerts"), extra={"path": WEBHOOK_PATH}),
        "alerts_smtp": {
            "conn_type": "smtp",
            "host": sandbox_host,
            "port": smtp_port,
            "extra": {"from": alert_from, "to": list(alert_to or [DEFAULT_ALERT_TO])},
        },
    }
    accounts = scenario.get("accounts")
    if not isinstance(accounts, list):
        raise ScenarioError("missing accounts list in the scenario")
    for index, account in enumerate(accounts):
        account_id = _required(account, "account_id", f"accounts[{index}]")
        where = f"accounts[{account_id}]"
        if "linkedin" in account:
            token = _required(account["linkedin"], "access_token", f"{where}.linkedin")
            connections[f"linkedin_{account_id}"] = _http(url("linkedin"), password=token)
        if "meta" in account:
            token = _required(account["meta"], "access_token", f"{where}.meta")
            connections[f"meta_{account_id}"] = _http(url("meta"), password=token)
        map_spec = account.get("map") or {}
        map_type = map_spec.get("type")
        if map_type == "marketo":
            connections[f"marketo_{account_id}"] = _http(
                url("marketo"),
                login=_required(map_spec, "client_id", f"{where}.map"),
                password=_required(map_spec, "client_secret", f"{where}.map"),
                extra={"munchkin_id": map_spec.get("munchkin_id", "")},
            )
        elif map_type == "hubspot":
            token = _required(map_spec, "access_token", f"{where}.map")
            connections[f"hubspot_{account_id}"] = _http(url("hubspot"), password=token)
        elif map_type is not None:
            raise ScenarioError(f"unknown {where}.map.type {map_type!r}: expected marketo or hubspot")
        crm_spec = account.get("crm") or {}
        crm_type = crm_spec.get("type")
        if crm_type == "salesforce":
            connections[f"salesforce_{account_id}"] = _http(
                url("salesforce"),
                login=_required(crm_spec, "client_id", f"{where}.crm"),
                password=_required(crm_spec, "client_secret", f"{where}.crm"),
            )
        elif crm_type == "hubspot":
            # leadflow.accounts names the CRM connection <crm type>_<account>, so a
            # HubSpot CRM shares the id hubspot_<account> with a HubSpot MAP.
            token = _required(crm_spec, "access_token", f"{where}.crm")
            existing = connections.get(f"hubspot_{account_id}")
            if existing is not None and existing.get("password") != token:
                raise ScenarioError(
                    f"{where}.map and {where}.crm are both HubSpot with different access tokens, but connection hubspot_{account_id} can store only one"
                )
            connections[f"hubspot_{account_id}"] = _http(url("hubspot"), password=token)
        elif crm_type is not None:
            raise ScenarioError(f"unknown {where}.crm.type {crm_type!r}: expected salesforce or hubspot")
    return connections


def write_connections(connections: dict[str, dict[str, Any]], out: Path) -> None:
    """Write the file atomically with mode 0640, so running Airflow processes never read half a file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(connections, indent=2, sort_keys=True) + "\n"
    handle, temporary = tempfile.mkstemp(prefix=".connections-", suffix=".json", dir=out.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        # The owner reads and writes, group 0 reads, because every Airflow container runs with group 0.
        os.chmod(temporary, 0o640)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_scenario(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as stream:
        if path.suffix in (".yaml", ".yml"):
            return yaml.safe_load(stream)
        return json.load(stream)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write the Airflow connections for a scenario's accounts as a LocalFilesystemBackend JSON file."
    )
    parser.add_argument("--scenario", type=Path, required=True, help="scenario file, JSON or YAML")
    parser.add_argument("--out", type=Path, required=True, help="connections JSON file to write (replaced if present)")
    parser.add_argument(
        "--sandbox-host",
        default=DEFAULT_SANDBOX_HOST,
        help="host name of the vendor sandbox as the Airflow containers resolve it (default: %(default)s)",
    )
    parser.add_argument(
        "--warehouse-uri",
        default=DEFAULT_WAREHOUSE_URI,
        help="warehouse as postgresql://user:password@host:port/database (default: %(default)s)",
    )
    parser.add_argument(
        "--smtp-port",
        type=int,
        default=DEFAULT_SMTP_PORT,
        help="TCP port of the sandbox SMTP receiver (default: %(default)s)",
    )
    parser.add_argument(
        "--alert-from", default=DEFAULT_ALERT_FROM, help="sender address of alert emails (default: %(default)s)"
    )
    parser.add_argument(
        "--alert-to",
        action="append",
        help=f"recipient address of alert emails, repeatable (default: {DEFAULT_ALERT_TO})",
    )
    args = parser.parse_args(argv)

    try:
        scenario = read_scenario(args.scenario)
    except FileNotFoundError:
        parser.error(f"scenario file not found: {args.scenario}; generate it with `make scenarios`")
    except (ValueError, yaml.YAMLError) as error:
        parser.error(f"invalid scenario file {args.scenario}: {error}")
    if not isinstance(scenario, dict):
        parser.error(f"invalid scenario file {args.scenario}: the top level must be an object")
    try:
        connections = build_connections(
            scenario,
            sandbox_host=args.sandbox_host,
            warehouse_uri=args.warehouse_uri,
            smtp_port=args.smtp_port,
            alert_from=args.alert_from,
            alert_to=args.alert_to,
        )
    except ValueError as error:
        parser.error(str(error))
    write_connections(connections, args.out)
    # Print connection ids only, because the file contains credentials.
    print(f"wrote {len(connections)} connections to {args.out}: {', '.join(sorted(connections))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
