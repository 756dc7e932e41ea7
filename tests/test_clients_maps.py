"""The Marketo and HubSpot MAP clients against the served sandbox, over real HTTP."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
import requests

from leadflow.clients.base import ClientConfig, QuotaExhausted, RetryPolicy
from leadflow.clients.hubspot import HubSpotClient
from leadflow.clients.maps import MapClient, make_map_client
from leadflow.clients.marketo import MarketoClient
from sandbox import hubspot, marketo
from sandbox.core import Clock, Sandbox, parse_instant

START = "2026-01-01T00:05:12Z"
HUBSPOT_TOKEN = "pat-na1-contoso"
SCORING = {
    "base": 5,
    "per_field": {"title": 10, "jobtitle": 10, "company": 10},
    "keywords": {"director": 25, "vp": 30, "head": 20},
    "mql_threshold": 40,
}
SCENARIO = {
    "format": 1,
    "settings": {"marketo": {}, "hubspot": {"search_per_second": 1000}},
    "accounts": [
        {
            "account_id": "northwind",
            "map": {
                "type": "marketo",
                "client_id": "mkto_client_northwind",
                "client_secret": "mkto_secret_northwind",
                "fields": [{"id": 5001, "displayName": "MQL Date", "dataType": "date", "rest": {"name": "mqlDate__c"}}],
                "score_field": "leadScore",
                "mql_date_field": "mqlDate__c",
                "scoring": SCORING,
                "leads": [
                    {"id": 1000001, "email": "solo@example.com", "updatedAt": "2025-12-01T10:00:00Z"},
                    {"id": 1000002, "email": "twin@example.org", "updatedAt": "2025-12-02T10:00:00Z"},
                    {"id": 1000005, "email": "Twin@Example.org", "updatedAt": "2025-12-03T10:00:00Z"},
                ],
            },
        },
        {
            "account_id": "contoso",
            "timezone": "UTC",
            "map": {
                "type": "hubspot",
                "access_token": HUBSPOT_TOKEN,
                "score_field": "hubspotscore",
                "mql_date_field": "hs_lifecyclestage_marketingqualifiedlead_date",
                "scoring": SCORING,
                "contacts": [
                    {
                        "id": "50001",
                        "properties": {"email": "Ana@Example.com"},
                        "createdAt": "2025-11-02T10:00:00.000Z",
                        "updatedAt": "2025-12-01T00:00:00.000Z",
                    },
                    {
                        "id": "50003",
                        "properties": {"email": "gone@example.com"},
                        "createdAt": "2025-11-02T10:00:00.000Z",
                        "updatedAt": "2025-12-01T00:00:00.000Z",
                        "archived": True,
                    },
                ],
            },
        },
    ],
}

# Per MAP: an existing record, an existing email in other case, the first new id, and field names.
EXISTING_ID = {"marketo": "1000001", "hubspot": "50001"}
EXISTING_EMAIL = {"marketo": "SOLO@example.com", "hubspot": "ana@EXAMPLE.com"}
FIRST_NEW_ID = {"marketo": 1000006, "hubspot": 50004}
FIRST_NAME = {"marketo": "firstName", "hubspot": "firstname"}
TITLE = {"marketo": "title", "hubspot": "jobtitle"}
WRITE_PATH = {"marketo": "/rest/v1/leads.json", "hubspot": "/crm/v3/objects/contacts/batch/create"}


class World:
    """A served sandbox with both MAPs, plus helpers to build clients and inspect the wire."""

    def __init__(self, scenario):
        self.sandbox = Sandbox(scenario, Clock(parse_instant(START)))
        self.sandbox.add_app(marketo.create_app(self.sandbox))
        self.sandbox.add_app(hubspot.create_app(self.sandbox))
        self.urls = self.sandbox.serve(ports={"marketo": 0, "hubspot": 0})
        self.waits: list[float] = []

    def client(self, kind: str, **extra) -> MapClient:
        policy = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=60.0, sleep=self.waits.append)
        if kind == "marketo":
            config = ClientConfig(
                base_url=self.urls["marketo"],
                login="mkto_client_northwind",
                password="mkto_secret_northwind",
                extra=extra,
                timeout=5,
            )
        else:
            config = ClientConfig(base_url=self.urls["hubspot"], password=HUBSPOT_TOKEN, extra=extra, timeout=5)
        return make_map_client(kind, config, policy)

    def calls(self, kind: str) -> list[tuple[str, str]]:
        records = requests.get(f"{self.urls[kind]}/_sandbox/requests", timeout=5).json()
        return [(record["method"], record["path"]) for record in records]

    def clear_calls(self, kind: str) -> None:
        requests.post(f"{self.urls[kind]}/_sandbox/requests/clear", timeout=5).raise_for_status()

    def add_fault(self, vendor: str, rule: dict) -> None:
        requests.post(f"{self.urls[vendor]}/_sandbox/faults", json=rule, timeout=5).raise_for_status()

    def advance(self, seconds: float) -> None:
        requests.post(
            f"{self.urls['marketo']}/_sandbox/clock", json={"advance_seconds": seconds}, timeout=5
        ).raise_for_status()

    def records(self, kind: str) -> list[dict]:
        account = "northwind" if kind == "marketo" else "contoso"
        current = requests.get(f"{self.urls[kind]}/_sandbox/state", timeout=5).json()[account]
        return current["leads"] if kind == "marketo" else current["contacts"]


@pytest.fixture
def start_world():
    """Serve a sandbox built from SCENARIO with optional overrides, and stop it after the test."""
    worlds: list[World] = []

    def start(marketo_settings=None, hubspot_settings=None, hubspot_contacts=None):
        scenario = copy.deepcopy(SCENARIO)
        scenario["settings"]["marketo"].update(marketo_settings or {})
        scenario["settings"]["hubspot"].update(hubspot_settings or {})
        if hubspot_contacts is not None:
            scenario["accounts"][1]["map"]["contacts"] = hubspot_contacts
        world = World(scenario)
        worlds.append(world)
        return world

    yield start
    for world in worlds:
        world.sandbox.stop()


@pytest.fixture
def world(start_world):
    return start_world()


def new_record(kind: str, n: int, **fields) -> dict:
    return {"email": f"new{n}@example.com", FIRST_NAME[kind]: f"New{n}", **fields}


def email_of(kind: str, record: dict) -> str:
    return str(record["email"] if kind == "marketo" else record["properties"].get("email"))


MAPS = pytest.mark.parametrize("kind", ["marketo", "hubspot"])


# -- writes ---------------------------------------------------------------------------------


@MAPS
def test_create_returns_ids_in_order(world, kind):
    client = world.client(kind)
    results = client.create([new_record(kind, 1), new_record(kind, 2), new_record(kind, 3)])
    first = FIRST_NEW_ID[kind]
    assert [result.id for result in results] == [str(first), str(first + 1), str(first + 2)]
    assert [result.status for result in results] == ["created"] * 3
    assert all(result.ok for result in results)


@MAPS
def test_create_skips_existing_email(world, kind):
    client = world.client(kind)
    results = client.create([new_record(kind, 1), {"email": EXISTING_EMAIL[kind]}, new_record(kind, 2)])
    assert [result.status for result in results] == ["created", "skipped", "created"]
    assert [result.id for result in results] == [str(FIRST_NEW_ID[kind]), None, str(FIRST_NEW_ID[kind] + 1)]
    assert results[1].ok is False
    assert results[1].reason == "exists"
    expected_detail = (
        "1005 Lead already exists"
        if kind == "marketo"
        else f"CONFLICT: Contact already exists. Existing ID: {EXISTING_ID[kind]}"
    )
    assert results[1].detail == expected_detail
    same_email = [r for r in world.records(kind) if email_of(kind, r).lower() == EXISTING_EMAIL[kind].lower()]
    assert len(same_email) == 1


@MAPS
def test_update_by_id(world, kind):
    client = world.client(kind)
    results = client.update([(EXISTING_ID[kind], {FIRST_NAME[kind]: "Zed"}), ("999999", {FIRST_NAME[kind]: "Nobody"})])
    assert results[0].status == "updated"
    assert results[0].id == EXISTING_ID[kind]
    assert results[1].status == "skipped"
    assert results[1].reason == "not found"
    assert client.read([EXISTING_ID[kind]], [FIRST_NAME[kind]]) == {EXISTING_ID[kind]: {FIRST_NAME[kind]: "Zed"}}


@MAPS
def test_batch_split_at_max_batch(start_world, kind):
    world = start_world(marketo_settings={"max_batch": 2}, hubspot_settings={"max_batch": 2})
    client = world.client(kind, max_batch=2)
    world.clear_calls(kind)
    results = client.create([new_record(kind, n) for n in range(5)])
    first = FIRST_NEW_ID[kind]
    assert [result.id for result in results] == [str(first + n) for n in range(5)]
    writes = [call for call in world.calls(kind) if call == ("POST", WRITE_PATH[kind])]
    assert len(writes) == 3


@MAPS
def test_read_returns_score_and_mql_date(world, kind):
    client = world.client(kind)
    created = client.create([new_record(kind, 1, **{TITLE[kind]: "VP Sales", "company": "Example Corp"})])
    new_id = created[0].id
    if kind == "marketo":
        values = client.read([new_id], ["leadScore", "mqlDate__c"])
        assert values == {new_id: {"leadScore": 55, "mqlDate__c": "2026-01-01"}}
    else:
        fields = ["hubspotscore", "hs_lifecyclestage_marketingqualifiedlead_date"]
        values = client.read([new_id], fields)
        assert values == {new_id: {"hubspotscore": "55", fields[1]: "2026-01-01T00:00:00.000Z"}}


# -- lookups --------------------------------------------------------------------------------


def test_marketo_find_returns_duplicated_email(world):
    client = world.client("marketo")
    found = client.find_by_emails(["TWIN@example.org", "solo@example.com", "nobody@example.com"])
    assert set(found) == {"twin@example.org", "solo@example.com"}
    twins = found["twin@example.org"]
    assert [record.id for record in twins] == ["1000002", "1000005"]
    assert [record.updated_at for record in twins] == [
        datetime(2025, 12, 2, 10, tzinfo=UTC),
        datetime(2025, 12, 3, 10, tzinfo=UTC),
    ]
    assert twins[1].email == "Twin@Example.org"


def test_hubspot_find_ignores_case_and_archived(world):
    client = world.client("hubspot")
    found = client.find_by_emails(["ANA@example.com", "gone@example.com"], fields=["firstname"])
    assert list(found) == ["ana@example.com"]
    record = found["ana@example.com"][0]
    assert record.id == "50001"
    assert record.updated_at == datetime(2025, 12, 1, tzinfo=UTC)
    assert "firstname" in record.fields


@MAPS
def test_existing_ids_drops_missing(world, kind):
    client = world.client(kind)
    if kind == "marketo":
        assert client.existing_ids(["1000001", "1000005", "424242", "abc"]) == {"1000001", "1000005"}
    else:
        # 50003 is archived, so HubSpot reports it as not found.
        assert client.existing_ids(["50001", "50003", "99999"]) == {"50001"}


def test_marketo_long_lookup_uses_method_override(world):
    client = world.client("marketo")
    emails = [f"someone.with.a.rather.long.address.{n}@example.com" for n in range(200)] + ["solo@example.com"]
    world.clear_calls("marketo")
    found = client.find_by_emails(emails)
    assert list(found) == ["solo@example.com"]
    records = requests.get(f"{world.urls['marketo']}/_sandbox/requests", timeout=5).json()
    lookups = [r for r in records if r["path"] == "/rest/v1/leads.json"]
    assert [(r["method"], r["query"]) for r in lookups] == [("POST", "_method=GET")]


# -- retries and tokens ---------------------------------------------------------------------


@MAPS
def test_throttle_then_success(world, kind):
    client = world.client(kind)
    client.existing_ids([EXISTING_ID[kind]])
    world.clear_calls(kind)
    world.add_fault(kind, {"kind": "throttle", "times": 2})
    results = client.create([new_record(kind, 1)])
    assert results[0].status == "created"
    assert world.calls(kind) == [("POST", WRITE_PATH[kind])] * 3
    # Marketo waits out its 20-second window, and HubSpot waits 10 s per attempt.
    assert world.waits == ([20.0, 20.0] if kind == "marketo" else [10.0, 20.0])


def test_hubspot_search_throttle_backoff(world):
    client = world.client("hubspot")
    world.add_fault("hubspot", {"kind": "throttle", "times": 2, "path": "/search$"})
    found = client.find_by_emails(["ana@example.com"])
    assert [record.id for record in found["ana@example.com"]] == ["50001"]
    assert world.waits == [1.0, 2.0]


def test_marketo_token_refresh_after_clock_advance(world):
    client = world.client("marketo")
    assert client.existing_ids(["1000001"]) == {"1000001"}
    world.clear_calls("marketo")
    world.advance(3600)
    assert client.existing_ids(["1000001"]) == {"1000001"}
    assert world.calls("marketo") == [
        ("GET", "/rest/v1/leads.json"),
        ("POST", "/identity/oauth/token"),
        ("GET", "/rest/v1/leads.json"),
    ]
    assert world.waits == []


@MAPS
def test_daily_limit_raises_quota_exhausted(start_world, kind):
    world = start_world(marketo_settings={"daily_quota": 1}, hubspot_settings={"daily_limit": 1})
    client = world.client(kind)
    client.existing_ids([EXISTING_ID[kind]])
    with pytest.raises(QuotaExhausted):
        client.existing_ids([EXISTING_ID[kind]])
    assert world.waits == []


# -- change feeds ---------------------------------------------------------------------------


def test_marketo_lead_changes_follow_more_result(start_world):
    world = start_world(marketo_settings={"activity_scan_size": 2})
    client: MarketoClient = world.client("marketo")
    client.create([{"email": "vp@example.com", "title": "VP Sales"}])
    client.update(
        [("1000006", {"firstName": "Val"}), ("1000006", {"lastName": "Smith"}), ("1000006", {"company": "Acme"})]
    )
    world.clear_calls("marketo")
    changes = list(client.lead_changes(datetime(2026, 1, 1, tzinfo=UTC), ["leadScore", "mqlDate__c"]))
    # New Lead, score 45, MQL date, then score 55 after the company was added.
    assert [change["activityTypeId"] for change in changes] == [12, 13, 13, 13]
    assert [change["fields"][0]["newValue"] for change in changes[1:]] == ["45", "2026-01-01", "55"]
    calls = world.calls("marketo")
    # Seven activities, two examined per call: one paging-token call and four leadchanges pages.
    assert calls.count(("GET", "/rest/v1/activities/leadchanges.json")) == 4
    assert calls.count(("GET", "/rest/v1/activities/pagingtoken.json")) == 1


def hubspot_contact(contact_id: int, modified: str) -> dict:
    return {
        "id": str(contact_id),
        "properties": {"email": f"c{contact_id}@example.com"},
        "createdAt": "2025-11-01T00:00:00.000Z",
        "updatedAt": modified,
    }


def test_hubspot_search_modified_since_passes_cap(start_world):
    same_instant = "2025-12-10T00:00:00.000Z"
    contacts = [hubspot_contact(60000, "2025-12-09T00:00:00.000Z")]
    contacts += [hubspot_contact(60000 + n, same_instant) for n in range(1, 7)]
    contacts += [
        hubspot_contact(60007, "2025-12-11T00:00:00.000Z"),
        hubspot_contact(60008, "2025-12-12T00:00:00.000Z"),
        hubspot_contact(60009, "2025-12-12T00:00:00.000Z"),
        hubspot_contact(60010, "2025-12-13T00:00:00.000Z"),
        hubspot_contact(60011, "2025-12-14T00:00:00.000Z"),
        hubspot_contact(60012, "2025-12-15T00:00:00.000Z"),
    ]
    world = start_world(hubspot_settings={"search_cap": 4, "search_page_max": 2}, hubspot_contacts=contacts)
    client: HubSpotClient = world.client("hubspot", search_cap=4, search_page_size=2)
    since = datetime(2025, 12, 10, tzinfo=UTC)
    ids = [entry["id"] for entry in client.search_modified_since(since, ["email"])]
    assert ids == [str(60000 + n) for n in range(1, 13)]
    # Search calls: the window from 12-10 hits the cap inside one instant (2 pages), so that
    # instant is paged by id (3 pages). The window after 12-10 hits the cap again (2 pages),
    # and the restart from 12-13 finishes the feed (2 pages).
    assert world.calls("hubspot").count(("POST", "/crm/v3/objects/contacts/search")) == 9


def test_make_map_client_rejects_unknown_type():
    with pytest.raises(ValueError, match="pardot"):
        make_map_client("pardot", ClientConfig(base_url="http://127.0.0.1:9"))
