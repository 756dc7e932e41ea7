"""Load scenario files and check them against the scenario format.

``validate`` runs the JSON Schema in ``scenario.schema.json`` first. It then
runs the cross-record checks a schema cannot express: unique ids, LinkedIn
and Meta leads that point at forms of their own account, site keys unique
across accounts, and Salesforce references that resolve inside one org.
Every error names the JSON path of the offending value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

SCHEMA_PATH = Path(__file__).with_name("scenario.schema.json")

LINKEDIN_FORM_URN = re.compile(r"^urn:li:versionedLeadGenForm:\(urn:li:leadGenForm:(\d+),(\d+)\)$")

# Salesforce fields that hold the Id of another record, per object list of the
# scenario, mapped to the list that must contain that Id.
SALESFORCE_REFERENCES: dict[str, dict[str, str]] = {
    "contacts": {"AccountId": "accounts"},
    "opportunities": {"AccountId": "accounts"},
    "contact_roles": {"OpportunityId": "opportunities", "ContactId": "contacts"},
    "leads": {
        "ConvertedAccountId": "accounts",
        "ConvertedContactId": "contacts",
        "ConvertedOpportunityId": "opportunities",
    },
}


class ScenarioError(ValueError):
    """A scenario file that cannot be read or breaks the scenario format.

    ``problems`` lists every ``(json_path, message)`` found; the exception
    message starts with the first of them.
    """

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        path, message = problems[0]
        text = f"{path}: {message}"
        if len(problems) > 1:
            text += f" (and {len(problems) - 1} more problems)"
        super().__init__(text)


class _StringTimestampLoader(yaml.SafeLoader):
    """YAML loader that keeps ISO timestamps as strings, as JSON would."""


_StringTimestampLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def load(path: str | Path, *, check: bool = True) -> dict[str, Any]:
    """Read a scenario from a .json, .yaml or .yml file.

    With ``check`` (the default) the scenario is also validated, so a caller
    never sees a scenario that breaks the format. Raises ``ScenarioError`` for
    an unreadable file, an unknown extension, invalid JSON or YAML, or an
    invalid scenario.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise ScenarioError(
            [("$", f"unsupported scenario file extension {suffix!r} in {path}; use .json, .yaml or .yml")]
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([("$", f"cannot read scenario file {path}: {exc}")]) from exc
    try:
        if suffix == ".json":
            scenario = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
        else:
            scenario = yaml.load(text, Loader=_StringTimestampLoader)  # noqa: S506 (a SafeLoader subclass)
    except (ValueError, yaml.YAMLError) as exc:
        raise ScenarioError([("$", f"invalid {suffix[1:].upper()} in {path}: {exc}")]) from exc
    if not isinstance(scenario, dict):
        raise ScenarioError([("$", f"scenario file {path} must contain an object, found {type(scenario).__name__}")])
    if check:
        validate(scenario)
    return scenario


def validate(scenario: dict[str, Any]) -> None:
    """Check a scenario against the schema, then across records.

    Raises ``ScenarioError`` listing every problem; cross-record checks run
    only when the schema passes, because they rely on the shapes it enforces.
    """
    schema_errors = sorted(_validator().iter_errors(scenario), key=_error_rank)
    if schema_errors:
        raise ScenarioError([(error.json_path, error.message) for error in schema_errors])
    problems = list(_cross_check(scenario))
    if problems:
        raise ScenarioError(problems)


@cache
def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    checker = FormatChecker(formats=())
    checker.checks("date-time", raises=ValueError)(_parse_instant)
    return Draft202012Validator(schema, format_checker=checker)


def _parse_instant(value: object) -> bool:
    """Accept an ISO-8601 instant with an offset; other types are left to ``type``."""
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return True


def _error_rank(error: ValidationError) -> tuple[bool, int, str, str]:
    """Rank schema errors so the most specific one comes first.

    When one branch of a map or crm entry fails, ``unevaluatedProperties``
    also reports every key of that entry as unexpected. That error is ranked
    after the one that explains it, and deeper paths come before shallower ones.
    """
    return error.validator == "unevaluatedProperties", -len(error.absolute_path), error.json_path, error.message


def _cross_check(scenario: dict[str, Any]) -> Iterator[tuple[str, str]]:
    accounts = scenario["accounts"]
    yield from _duplicates(
        ((f"$.accounts[{i}].account_id", account["account_id"]) for i, account in enumerate(accounts)),
        "account_id",
    )
    yield from _check_site_keys(accounts)
    yield from _check_enrichment(scenario.get("enrichment", {}))
    for i, account in enumerate(accounts):
        base = f"$.accounts[{i}]"
        if "linkedin" in account:
            yield from _check_linkedin(account["linkedin"], f"{base}.linkedin")
        if "meta" in account:
            yield from _check_meta(account["meta"], f"{base}.meta")
        if "map" in account:
            yield from _check_map(account["map"], f"{base}.map")
        if account.get("crm", {}).get("type") == "salesforce":
            yield from _check_salesforce(account["crm"], f"{base}.crm")
        attribution = account.get("settings", {}).get("attribution", {})
        triggered = attribution.get("triggered_window_days")
        influenced = attribution.get("influenced_window_days")
        if triggered is not None and influenced is not None and triggered > influenced:
            yield (
                f"{base}.settings.attribution",
                f"triggered_window_days {triggered} is larger than influenced_window_days {influenced}; "
                "a triggered opportunity must also fall inside the influenced window",
            )


def _duplicates(items: Iterable[tuple[str, Any]], label: str) -> Iterator[tuple[str, str]]:
    """Yield one problem for each value already seen at an earlier path."""
    first_path: dict[Any, str] = {}
    for path, value in items:
        if value in first_path:
            yield path, f"duplicate {label} {value!r}, first used at {first_path[value]}"
        else:
            first_path[value] = path


def _check_site_keys(accounts: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    site_keys = (
        (f"$.accounts[{i}].pixel.site_key", account["pixel"]["site_key"])
        for i, account in enumerate(accounts)
        if "pixel" in account
    )
    yield from _duplicates(site_keys, "pixel site_key")


def _check_enrichment(enrichment: dict[str, Any]) -> Iterator[tuple[str, str]]:
    people = enumerate(enrichment.get("people", []))
    yield from _duplicates(
        ((f"$.enrichment.people[{i}].email", entry["email"].strip().lower()) for i, entry in people),
        "enrichment email (compared case-insensitively)",
    )
    companies = enumerate(enrichment.get("companies", []))
    yield from _duplicates(
        ((f"$.enrichment.companies[{i}].domain", entry["domain"].lower()) for i, entry in companies),
        "enrichment company domain",
    )


def _check_linkedin(linkedin: dict[str, Any], base: str) -> Iterator[tuple[str, str]]:
    forms = linkedin.get("forms", [])
    yield from _duplicates(
        ((f"{base}.forms[{i}]", (form["id"], form["versionId"])) for i, form in enumerate(forms)),
        "LinkedIn form version (id, versionId)",
    )
    versions = {(form["id"], form["versionId"]) for form in forms}
    leads = linkedin.get("leads", [])
    yield from _duplicates(((f"{base}.leads[{i}].id", lead["id"]) for i, lead in enumerate(leads)), "LinkedIn lead id")
    for i, lead in enumerate(leads):
        urn = lead["versionedLeadGenFormUrn"]
        match = LINKEDIN_FORM_URN.match(urn)
        if match is None:  # the schema pattern already rejected this URN
            continue
        version = (int(match.group(1)), int(match.group(2)))
        if version not in versions:
            yield (
                f"{base}.leads[{i}].versionedLeadGenFormUrn",
                f"form {version[0]} version {version[1]} of {urn!r} is not in {base}.forms",
            )


def _check_meta(meta: dict[str, Any], base: str) -> Iterator[tuple[str, str]]:
    forms = meta.get("forms", [])
    yield from _duplicates(((f"{base}.forms[{i}].id", form["id"]) for i, form in enumerate(forms)), "Meta form id")
    form_ids = {form["id"] for form in forms}
    leads = meta.get("leads", [])
    yield from _duplicates(((f"{base}.leads[{i}].id", lead["id"]) for i, lead in enumerate(leads)), "Meta lead id")
    for i, lead in enumerate(leads):
        if lead["form_id"] not in form_ids:
            yield f"{base}.leads[{i}].form_id", f"form_id {lead['form_id']!r} is not in {base}.forms"


def _check_map(map_config: dict[str, Any], base: str) -> Iterator[tuple[str, str]]:
    if map_config["type"] == "marketo":
        records = map_config.get("leads", [])
        yield from _duplicates(
            ((f"{base}.leads[{i}].id", record["id"]) for i, record in enumerate(records)), "Marketo lead id"
        )
        yield from _check_marketo_fields(map_config, base)
    else:
        records = map_config.get("contacts", [])
        yield from _duplicates(
            ((f"{base}.contacts[{i}].id", record["id"]) for i, record in enumerate(records)), "HubSpot contact id"
        )


def _check_marketo_fields(map_config: dict[str, Any], base: str) -> Iterator[tuple[str, str]]:
    """Check that every Marketo field the account writes or scores on is described."""
    if "fields" not in map_config:
        return
    described = {field["rest"]["name"] for field in map_config["fields"]}
    used = [
        (f"{base}.score_field", map_config["score_field"]),
        (f"{base}.mql_date_field", map_config["mql_date_field"]),
    ]
    used += [(f"{base}.field_map.{key}", name) for key, name in sorted(map_config["field_map"].items())]
    for path, name in used:
        if name not in described:
            yield path, f"Marketo field {name!r} is not in {base}.fields"


def _check_salesforce(crm: dict[str, Any], base: str) -> Iterator[tuple[str, str]]:
    list_names = ["accounts", *SALESFORCE_REFERENCES]
    ids_by_list = {name: {record["Id"] for record in crm.get(name, [])} for name in list_names}
    all_ids = (
        (f"{base}.{name}[{i}].Id", record["Id"]) for name in list_names for i, record in enumerate(crm.get(name, []))
    )
    yield from _duplicates(all_ids, "Salesforce Id")
    for list_name, references in SALESFORCE_REFERENCES.items():
        for i, record in enumerate(crm.get(list_name, [])):
            for field_name, target in references.items():
                value = record.get(field_name)
                if value is not None and value not in ids_by_list[target]:
                    yield (
                        f"{base}.{list_name}[{i}].{field_name}",
                        f"{field_name} {value!r} is not an Id in {base}.{target}",
                    )
