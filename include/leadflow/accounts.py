"""Client accounts: settings with defaults, loading from the warehouse and from scenario files.

Connection ids follow one pattern per vendor and account, for example
``marketo_northwind`` or ``linkedin_northwind``; the enrichment provider is one
shared connection, ``enrichment``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from leadflow import warehouse

DEFAULT_SETTINGS: dict[str, Any] = {
    "push_before_verification": False,
    "include_test_leads": False,
    "include_spam_leads": False,
    "review_deadline_policy": "hold",
    "custom_pull_fields": [],
    "attribution": {"triggered_window_days": 90, "influenced_window_days": 365},
}

# Product field name -> MAP field name, used when an account sets no field_map.
DEFAULT_FIELD_MAPS = {
    "marketo": {
        "email": "email",
        "first_name": "firstName",
        "last_name": "lastName",
        "company": "company",
        "job_title": "title",
        "phone": "phone",
        "country": "country",
        "industry": "industry",
        "lead_source": "leadSource",
    },
    "hubspot": {
        "email": "email",
        "first_name": "firstname",
        "last_name": "lastname",
        "company": "company",
        "job_title": "jobtitle",
        "phone": "phone",
        "country": "country",
        "industry": "industry",
        "lead_source": "hs_analytics_source_data_1",
    },
}


@dataclass
class Account:
    account_id: str
    name: str
    active: bool
    settings: dict[str, Any]
    map_type: str | None
    map_conn_id: str | None
    map_config: dict[str, Any]
    crm_type: str | None
    crm_conn_id: str | None
    attribution_rule_version: int
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)

    def setting(self, name: str) -> Any:
        return self.settings.get(name, DEFAULT_SETTINGS[name])

    @property
    def field_map(self) -> dict[str, str]:
        return self.map_config.get("field_map") or DEFAULT_FIELD_MAPS.get(self.map_type or "", {})

    @property
    def score_field(self) -> str:
        return self.map_config.get("score_field") or ("leadScore" if self.map_type == "marketo" else "hubspotscore")

    @property
    def mql_date_field(self) -> str | None:
        return self.map_config.get("mql_date_field")

    @property
    def optin_field(self) -> str | None:
        """MAP field that keeps the opt-in address; written on create only."""
        return self.map_config.get("optin_field")


def load_accounts(cur, account_ids: list[str] | None = None, include_inactive: bool = False) -> list[Account]:
    """Return accounts ordered by id, with their connected sources."""
    cur.execute(
        "SELECT * FROM leadflow.accounts WHERE (%(all)s OR account_id = ANY(%(ids)s))"
        " AND (active OR %(inactive)s) ORDER BY account_id",
        {"all": not account_ids, "ids": list(account_ids or []), "inactive": include_inactive},
    )
    accounts = [
        Account(
            account_id=row["account_id"],
            name=row["name"],
            active=row["active"],
            settings={**DEFAULT_SETTINGS, **(row["settings"] or {})},
            map_type=row["map_type"],
            map_conn_id=row["map_conn_id"],
            map_config=row["map_config"] or {},
            crm_type=row["crm_type"],
            crm_conn_id=row["crm_conn_id"],
            attribution_rule_version=row["attribution_rule_version"],
        )
        for row in cur.fetchall()
    ]
    by_id = {a.account_id: a for a in accounts}
    cur.execute(
        "SELECT account_id, source, conn_id, config FROM leadflow.account_sources WHERE active AND account_id = ANY(%s)",
        (list(by_id),),
    )
    for row in cur.fetchall():
        by_id[row["account_id"]].sources[row["source"]] = {"conn_id": row["conn_id"], **(row["config"] or {})}
    return accounts


def upsert_account(cur, spec: dict[str, Any]) -> None:
    """Write one scenario account entry (settings, sources, pixel site) to the warehouse.

    A change of the attribution settings bumps the account's rule version, which
    makes the next attribution run recompute the account from scratch.
    """
    account_id = spec["account_id"]
    settings = {**DEFAULT_SETTINGS, **(spec.get("settings") or {})}
    map_spec = spec.get("map") or {}
    crm_spec = spec.get("crm") or {}
    map_type = map_spec.get("type")
    map_config = {k: map_spec[k] for k in ("field_map", "score_field", "mql_date_field", "optin_field") if k in map_spec}
    cur.execute("SELECT settings FROM leadflow.accounts WHERE account_id = %s", (account_id,))
    existing = cur.fetchone()
    bump = existing is not None and (existing["settings"] or {}).get("attribution") != settings["attribution"]
    cur.execute(
        """
        INSERT INTO leadflow.accounts AS a (account_id, name, active, timezone, settings, map_type, map_conn_id,
                                            map_config, crm_type, crm_conn_id)
        VALUES (%(id)s, %(name)s, %(active)s, %(tz)s, %(settings)s, %(map_type)s, %(map_conn)s, %(map_config)s,
                %(crm_type)s, %(crm_conn)s)
        ON CONFLICT (account_id) DO UPDATE SET
            name = EXCLUDED.name, active = EXCLUDED.active, timezone = EXCLUDED.timezone,
            settings = EXCLUDED.settings, map_type = EXCLUDED.map_type, map_conn_id = EXCLUDED.map_conn_id,
            map_config = EXCLUDED.map_config, crm_type = EXCLUDED.crm_type, crm_conn_id = EXCLUDED.crm_conn_id,
            attribution_rule_version = a.attribution_rule_version + CASE WHEN %(bump)s THEN 1 ELSE 0 END,
            updated_at = clock_timestamp()
        """,
        {
            "id": account_id,
            "name": spec.get("name", account_id),
            "active": spec.get("active", True),
            "tz": spec.get("timezone", "UTC"),
            "settings": json.dumps(settings),
            "map_type": map_type,
            "map_conn": f"{map_type}_{account_id}" if map_type else None,
            "map_config": json.dumps(map_config),
            "crm_type": crm_spec.get("type"),
            "crm_conn": f"{crm_spec['type']}_{account_id}" if crm_spec.get("type") else None,
            "bump": bump,
        },
    )
    source_configs = {
        "linkedin": lambda s: {"sponsored_account_id": str(s["sponsored_account_id"])},
        "meta": lambda s: {"page_id": str(s.get("page_id", "")), "form_ids": [str(f["id"]) for f in s.get("forms", [])]},
        "pixel": lambda s: {"site_key": s["site_key"]},
    }
    cur.execute("UPDATE leadflow.account_sources SET active = false WHERE account_id = %s", (account_id,))
    for source, build in source_configs.items():
        if source not in spec:
            continue
        conn_id = f"{source}_{account_id}" if source != "pixel" else None
        cur.execute(
            """
            INSERT INTO leadflow.account_sources (account_id, source, conn_id, config, active)
            VALUES (%s, %s, %s, %s, true)
            ON CONFLICT (account_id, source) DO UPDATE
                SET conn_id = EXCLUDED.conn_id, config = EXCLUDED.config, active = true
            """,
            (account_id, source, conn_id, json.dumps(build(spec[source]))),
        )
    pixel = spec.get("pixel")
    if pixel:
        cur.execute(
            """
            INSERT INTO leadflow.pixel_sites (site_key, account_id, allowed_origins, active)
            VALUES (%s, %s, %s, true)
            ON CONFLICT (site_key) DO UPDATE SET account_id = EXCLUDED.account_id,
                allowed_origins = EXCLUDED.allowed_origins, active = true
            """,
            (pixel["site_key"], account_id, list(pixel.get("allowed_origins", []))),
        )


def read_scenario(path: str) -> dict[str, Any]:
    """Read a scenario or account settings file in JSON or YAML."""
    with open(path, encoding="utf-8") as handle:
        if path.endswith((".yaml", ".yml")):
            import yaml

            return yaml.safe_load(handle)
        return json.load(handle)


def load_scenario_accounts(scenario: dict[str, Any]) -> int:
    """Upsert every account of a scenario; return how many were written."""
    with warehouse.transaction() as cur:
        for spec in scenario["accounts"]:
            upsert_account(cur, spec)
    return len(scenario["accounts"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write client account settings into the warehouse.")
    sub = parser.add_subparsers(dest="command", required=True)
    load = sub.add_parser("load", help="upsert the accounts of a scenario file")
    load.add_argument("scenario", help="scenario file (JSON or YAML)")
    args = parser.parse_args(argv)
    warehouse.migrate()
    count = load_scenario_accounts(read_scenario(args.scenario))
    print(f"loaded {count} accounts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
