"""SalesforceClient and SalesforceCrm against the served Salesforce sandbox."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
import requests

from leadflow.clients.base import ClientConfig, PermanentError, QuotaExhausted, RetryPolicy, Throttled
from leadflow.clients.salesforce import (
    SalesforceClient,
    SalesforceCrm,
    format_soql_datetime,
    parse_sf_date,
    parse_sf_datetime,
)
from sandbox import salesforce
from sandbox.core import Clock, Sandbox, parse_instant

NOW = "2026-01-05T00:00:00Z"
API = "/services/data/v62.0"
LEAD_IDS = [f"00Q00000000000{n}AAA" for n in range(1, 8)]


def make_scenario(settings: dict | None = None, **crm) -> dict:
    return {
        "format": 1,
        "settings": {"salesforce": {"query_batch": 3, **(settings or {})}},
        "accounts": [
            {
                "account_id": "northwind",
                "crm": {"type": "salesforce", "client_id": "sf_client", "client_secret": "sf_secret", **crm},
            }
        ],
    }


def seven_leads() -> list[dict]:
    return [{"Id": lead_id, "LastName": f"Lead {n}", "Company": "Acme"} for n, lead_id in enumerate(LEAD_IDS)]


class Served:
    def __init__(self, scenario: dict):
        self.sandbox = Sandbox(scenario, Clock(parse_instant(NOW)))
        self.sandbox.add_app(salesforce.create_app(self.sandbox))
        self.url = self.sandbox.serve(ports={"salesforce": 0})["salesforce"]
        self.sleeps: list[float] = []

    def client(self, max_attempts: int = 4, **extra) -> SalesforceClient:
        config = ClientConfig(base_url=self.url, login="sf_client", password="sf_secret", extra=extra, timeout=5)
        policy = RetryPolicy(max_attempts=max_attempts, base_delay=0.001, max_delay=0.002, sleep=self.sleeps.append)
        return SalesforceClient(config, policy)

    def advance(self, seconds: float) -> None:
        requests.post(f"{self.url}/_sandbox/clock", json={"advance_seconds": seconds}, timeout=5).raise_for_status()

    def add_faults(self, *rules: dict) -> None:
        requests.post(f"{self.url}/_sandbox/faults", json=list(rules), timeout=5).raise_for_status()

    def requests(self) -> list[dict]:
        return requests.get(f"{self.url}/_sandbox/requests", timeout=5).json()

    def calls(self) -> list[tuple[str, str]]:
        return [(r["method"], r["path"]) for r in self.requests()]


@pytest.fixture
def serve():
    served: list[Served] = []

    def start(scenario: dict) -> Served:
        instance = Served(scenario)
        served.append(instance)
        return instance

    yield start
    for instance in served:
        instance.sandbox.stop()


def locator_of(calls: list[tuple[str, str]]) -> str:
    paths = [path for _, path in calls if path.startswith(f"{API}/query/")]
    return paths[0].rsplit("/", 1)[1].split("-")[0]


def test_query_follows_three_pages(serve):
    org = serve(make_scenario(leads=seven_leads()))
    client = org.client()
    records = list(client.query("SELECT Id, LastName FROM Lead"))
    assert [r["Id"] for r in records] == LEAD_IDS
    assert records[0] == {"Id": LEAD_IDS[0], "LastName": "Lead 0"}
    locator = locator_of(org.calls())
    assert org.calls() == [
        ("POST", "/services/oauth2/token"),
        ("GET", f"{API}/query"),
        ("GET", f"{API}/query/{locator}-3"),
        ("GET", f"{API}/query/{locator}-6"),
    ]
    assert client.api_usage == (3, 100000)
    assert client.instance_url == org.url


def test_query_sends_soql_and_batch_size(serve):
    org = serve(make_scenario(leads=seven_leads()))
    list(org.client(batch_size=500).query("SELECT Id FROM Lead WHERE IsConverted = true"))
    query_request = org.requests()[1]
    assert query_request["query"] == "q=SELECT+Id+FROM+Lead+WHERE+IsConverted+%3D+true"
    assert query_request["headers"]["sforce-query-options"] == "batchSize=500"
    assert query_request["authorization"].startswith("Bearer 00D")


def test_query_all_uses_query_all_endpoint(serve):
    leads = seven_leads()
    leads[0]["IsDeleted"] = True
    org = serve(make_scenario(leads=leads))
    client = org.client()
    assert len(list(client.query("SELECT Id FROM Lead"))) == 6
    assert [r["Id"] for r in client.query("SELECT Id FROM Lead WHERE IsDeleted = true", include_deleted=True)] == [
        LEAD_IDS[0]
    ]
    assert org.calls()[-1] == ("GET", f"{API}/queryAll")


def test_reauth_mid_pagination_keeps_next_url(serve):
    org = serve(make_scenario({"session_seconds": 60}, leads=seven_leads()))
    pages = org.client().query("SELECT Id FROM Lead")
    first_page = [next(pages)["Id"] for _ in range(3)]
    org.advance(61)
    rest = [record["Id"] for record in pages]
    assert first_page + rest == LEAD_IDS

    logged = org.requests()
    calls = [(r["method"], r["path"]) for r in logged]
    locator = locator_of(calls)
    assert calls == [
        ("POST", "/services/oauth2/token"),
        ("GET", f"{API}/query"),
        ("GET", f"{API}/query/{locator}-3"),
        ("POST", "/services/oauth2/token"),
        ("GET", f"{API}/query/{locator}-3"),
        ("GET", f"{API}/query/{locator}-6"),
    ]
    assert logged[2]["authorization"] == logged[1]["authorization"]
    assert logged[4]["authorization"] != logged[2]["authorization"]
    assert logged[5]["authorization"] == logged[4]["authorization"]


def test_second_session_rejection_fails(serve):
    org = serve(make_scenario(leads=seven_leads()))
    org.add_faults({"kind": "expire_token", "path": "/query$", "times": 2})
    with pytest.raises(PermanentError, match="session rejected again") as raised:
        list(org.client().query("SELECT Id FROM Lead"))
    assert raised.value.status == 401
    assert org.calls() == [
        ("POST", "/services/oauth2/token"),
        ("GET", f"{API}/query"),
        ("POST", "/services/oauth2/token"),
        ("GET", f"{API}/query"),
    ]


def test_daily_limit_raises_quota_exhausted(serve):
    org = serve(make_scenario({"daily_limit": 2}, leads=seven_leads()))
    client = org.client()
    seen = []
    with pytest.raises(QuotaExhausted) as raised:
        for record in client.query("SELECT Id FROM Lead"):
            seen.append(record["Id"])
    assert seen == LEAD_IDS[:6]
    assert raised.value.status == 403
    assert raised.value.code == "REQUEST_LIMIT_EXCEEDED"
    assert client.api_usage == (2, 2)
    assert org.sleeps == []
    assert len(org.calls()) == 4


def test_throttle_and_5xx_are_retried(serve):
    org = serve(make_scenario(leads=seven_leads()))
    org.add_faults(
        {"kind": "throttle", "path": "/query$", "times": 2},
        {"kind": "status", "status": 503, "path": "/query/01g", "times": 1},
    )
    ids = [record["Id"] for record in org.client().query("SELECT Id FROM Lead")]
    assert ids == LEAD_IDS
    assert len(org.sleeps) == 3
    locator = locator_of(org.calls())
    assert org.calls() == [
        ("POST", "/services/oauth2/token"),
        ("GET", f"{API}/query"),
        ("GET", f"{API}/query"),
        ("GET", f"{API}/query"),
        ("GET", f"{API}/query/{locator}-3"),
        ("GET", f"{API}/query/{locator}-3"),
        ("GET", f"{API}/query/{locator}-6"),
    ]


def test_throttle_gives_up_after_attempts(serve):
    org = serve(make_scenario(leads=seven_leads()))
    org.add_faults({"kind": "throttle", "path": "/query$", "times": 0})
    with pytest.raises(Throttled, match="ConcurrentRequests"):
        list(org.client(max_attempts=3).query("SELECT Id FROM Lead"))
    assert len(org.sleeps) == 2


def test_dropped_connection_is_retried(serve):
    org = serve(make_scenario(leads=seven_leads()))
    org.add_faults({"kind": "drop", "path": "/query$", "times": 1})
    assert len(list(org.client().query("SELECT Id FROM Lead"))) == 7
    assert len(org.sleeps) == 1


def test_discarded_locator_restarts_without_duplicates(serve):
    org = serve(make_scenario({"locator_idle_seconds": 30}, leads=seven_leads()))
    pages = org.client().query("SELECT Id FROM Lead")
    first_page = [next(pages)["Id"] for _ in range(3)]
    org.advance(31)
    assert first_page + [record["Id"] for record in pages] == LEAD_IDS
    calls = org.calls()
    old_locator = locator_of(calls)
    new_locator = calls[4][1].rsplit("/", 1)[1].split("-")[0]
    assert new_locator != old_locator
    assert calls == [
        ("POST", "/services/oauth2/token"),
        ("GET", f"{API}/query"),
        ("GET", f"{API}/query/{old_locator}-3"),
        ("GET", f"{API}/query"),
        ("GET", f"{API}/query/{new_locator}-3"),
        ("GET", f"{API}/query/{new_locator}-6"),
    ]


def test_malformed_query_is_permanent(serve):
    org = serve(make_scenario(leads=seven_leads()))
    with pytest.raises(PermanentError) as raised:
        list(org.client().query("SELECT Nope FROM Lead"))
    assert raised.value.code == "INVALID_FIELD"
    assert raised.value.status == 400
    assert org.sleeps == []


def test_bad_credentials_are_permanent(serve):
    org = serve(make_scenario(leads=seven_leads()))
    config = ClientConfig(base_url=org.url, login="sf_client", password="wrong", timeout=5)
    client = SalesforceClient(config, RetryPolicy(max_attempts=3, base_delay=0.001, sleep=org.sleeps.append))
    with pytest.raises(PermanentError) as raised:
        list(client.query("SELECT Id FROM Lead"))
    assert raised.value.code == "invalid_client"
    assert "wrong" not in str(raised.value)
    assert org.sleeps == []


def test_token_url_and_version_extras(serve):
    org = serve(make_scenario(leads=seven_leads()))
    config = ClientConfig(
        base_url="http://127.0.0.1:9",
        login="sf_client",
        password="sf_secret",
        extra={"token_url": f"{org.url}/services/oauth2/token", "api_version": "v60.0"},
        timeout=5,
    )
    client = SalesforceClient(config, RetryPolicy(max_attempts=1))
    assert client.limits() == {"DailyApiRequests": {"Max": 100000, "Remaining": 99999}}
    assert org.calls()[-1] == ("GET", "/services/data/v60.0/limits")


CRM = {
    "accounts": [
        {
            "Id": "001000000000001AAA",
            "Name": "Acme",
            "Website": "https://acme.example.com",
            "CreatedDate": "2026-01-01T00:00:00Z",
        },
        {"Id": "001000000000002AAA", "Name": "Globex", "Website": None, "CreatedDate": "2026-01-04T00:00:00Z"},
    ],
    "contacts": [
        {
            "Id": "003000000000001AAA",
            "AccountId": "001000000000001AAA",
            "Email": "ana@example.com",
            "CreatedDate": "2026-01-03T09:15:30.250+0000",
        },
        {
            "Id": "003000000000002AAA",
            "AccountId": "001000000000002AAA",
            "Email": "ben@example.com",
            "CreatedDate": "2025-12-20T00:00:00Z",
        },
    ],
    "opportunities": [
        {
            "Id": "006000000000001AAA",
            "AccountId": "001000000000001AAA",
            "Name": "Acme expansion",
            "StageName": "Closed Won",
            "Amount": 12500.5,
            "CloseDate": "2026-01-04",
            "IsWon": True,
            "IsClosed": True,
            "CreatedDate": "2026-01-03T10:00:00Z",
        },
        {
            "Id": "006000000000002AAA",
            "AccountId": "001000000000002AAA",
            "Name": "Globex pilot",
            "StageName": "Prospecting",
            "Amount": None,
            "CloseDate": "2026-03-31",
            "IsWon": False,
            "IsClosed": False,
            "CreatedDate": "2025-12-21T00:00:00Z",
            "LastModifiedDate": "2026-01-02T12:00:00Z",
        },
    ],
    "contact_roles": [
        {
            "Id": "00K000000000001AAA",
            "OpportunityId": "006000000000001AAA",
            "ContactId": "003000000000001AAA",
            "Role": "Decision Maker",
            "IsPrimary": True,
            "CreatedDate": "2026-01-03T10:05:00Z",
        },
        {
            "Id": "00K000000000002AAA",
            "OpportunityId": "006000000000002AAA",
            "ContactId": "003000000000002AAA",
            "Role": None,
            "IsPrimary": False,
            "CreatedDate": "2025-12-21T00:00:00Z",
        },
    ],
    "leads": [
        {
            "Id": "00Q000000000001AAA",
            "Email": "ana@example.com",
            "IsConverted": True,
            "ConvertedDate": "2026-01-03",
            "ConvertedContactId": "003000000000001AAA",
            "ConvertedAccountId": "001000000000001AAA",
            "ConvertedOpportunityId": "006000000000001AAA",
            "CreatedDate": "2026-01-01T00:21:00.000+0000",
            "LastModifiedDate": "2026-01-03T09:15:30Z",
        },
        {
            "Id": "00Q000000000002AAA",
            "Email": "ben@example.com",
            "IsConverted": True,
            "ConvertedDate": "2025-12-20",
            "ConvertedContactId": "003000000000002AAA",
            "ConvertedAccountId": "001000000000002AAA",
            "ConvertedOpportunityId": None,
            "CreatedDate": "2025-12-19T00:00:00Z",
            "LastModifiedDate": "2025-12-20T00:00:00Z",
        },
        {
            "Id": "00Q000000000003AAA",
            "Email": "cleo@example.org",
            "IsConverted": False,
            "CreatedDate": "2026-01-04T00:00:00Z",
        },
    ],
}

ANA_LEAD = {
    "Id": "00Q000000000001AAA",
    "Email": "ana@example.com",
    "ConvertedDate": date(2026, 1, 3),
    "ConvertedContactId": "003000000000001AAA",
    "ConvertedAccountId": "001000000000001AAA",
    "ConvertedOpportunityId": "006000000000001AAA",
}


def test_crm_pull_everything(serve):
    org = serve(make_scenario(**CRM))
    pulled = SalesforceCrm(org.client()).pull(None)
    assert list(pulled) == ["accounts", "contacts", "opportunities", "contact_roles", "converted_leads"]
    assert pulled["accounts"] == [
        {"Id": "001000000000001AAA", "Name": "Acme", "Website": "https://acme.example.com"},
        {"Id": "001000000000002AAA", "Name": "Globex", "Website": None},
    ]
    assert pulled["contacts"][0] == {
        "Id": "003000000000001AAA",
        "AccountId": "001000000000001AAA",
        "Email": "ana@example.com",
        "CreatedDate": datetime(2026, 1, 3, 9, 15, 30, 250000, tzinfo=UTC),
    }
    assert pulled["opportunities"][0] == {
        "Id": "006000000000001AAA",
        "AccountId": "001000000000001AAA",
        "Name": "Acme expansion",
        "StageName": "Closed Won",
        "Amount": 12500.5,
        "CloseDate": date(2026, 1, 4),
        "IsWon": True,
        "IsClosed": True,
        "CreatedDate": datetime(2026, 1, 3, 10, 0, tzinfo=UTC),
    }
    assert pulled["opportunities"][1]["Amount"] is None
    assert pulled["contact_roles"] == [
        {
            "Id": "00K000000000001AAA",
            "OpportunityId": "006000000000001AAA",
            "ContactId": "003000000000001AAA",
            "Role": "Decision Maker",
            "IsPrimary": True,
        },
        {
            "Id": "00K000000000002AAA",
            "OpportunityId": "006000000000002AAA",
            "ContactId": "003000000000002AAA",
            "Role": None,
            "IsPrimary": False,
        },
    ]
    assert pulled["converted_leads"] == [
        ANA_LEAD,
        {
            "Id": "00Q000000000002AAA",
            "Email": "ben@example.com",
            "ConvertedDate": date(2025, 12, 20),
            "ConvertedContactId": "003000000000002AAA",
            "ConvertedAccountId": "001000000000002AAA",
            "ConvertedOpportunityId": None,
        },
    ]


def test_crm_pull_since_filters_on_last_modified(serve):
    org = serve(make_scenario(**CRM))
    since = datetime(2026, 1, 3, 10, 15, 30, 999000, tzinfo=timezone(timedelta(hours=1)))
    pulled = SalesforceCrm(org.client()).pull(since)
    assert [r["Id"] for r in pulled["accounts"]] == ["001000000000002AAA"]
    assert [r["Id"] for r in pulled["contacts"]] == ["003000000000001AAA"]
    assert [r["Id"] for r in pulled["opportunities"]] == ["006000000000001AAA"]
    assert [r["Id"] for r in pulled["contact_roles"]] == ["00K000000000001AAA"]
    # The lead changed at 09:15:30.000 UTC and since is truncated to that second, so the lead is included.
    assert pulled["converted_leads"] == [ANA_LEAD]
    queries = [r["query"] for r in org.requests() if r["path"] == f"{API}/query"]
    assert queries[-1] == (
        "q=SELECT+Id%2C+Email%2C+ConvertedDate%2C+ConvertedContactId%2C+ConvertedAccountId%2C+ConvertedOpportunityId"
        "+FROM+Lead+WHERE+IsConverted+%3D+true+AND+LastModifiedDate+%3E%3D+2026-01-03T09%3A15%3A30Z"
    )


def test_crm_pull_stops_on_quota(serve):
    org = serve(make_scenario({"daily_limit": 3}, **CRM))
    with pytest.raises(QuotaExhausted):
        SalesforceCrm(org.client()).pull(None)
    assert len(org.calls()) == 5


def test_crm_rejects_naive_since(serve):
    org = serve(make_scenario(**CRM))
    with pytest.raises(ValueError, match="no timezone"):
        SalesforceCrm(org.client()).pull(datetime(2026, 1, 1))
    assert org.calls() == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T00:21:00.000+0000", datetime(2026, 1, 1, 0, 21, tzinfo=UTC)),
        ("2026-01-01T00:21:00Z", datetime(2026, 1, 1, 0, 21, tzinfo=UTC)),
        ("2026-01-01T02:21:00.500+0200", datetime(2026, 1, 1, 0, 21, 0, 500000, tzinfo=UTC)),
        ("2026-01-01T00:21:00+00:00", datetime(2026, 1, 1, 0, 21, tzinfo=UTC)),
        (None, None),
    ],
)
def test_parse_sf_datetime(text, expected):
    parsed = parse_sf_datetime(text)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo == UTC


def test_parse_sf_datetime_rejects_naive():
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_sf_datetime("2026-01-01T00:21:00")


def test_parse_sf_date():
    assert parse_sf_date("2026-01-03") == date(2026, 1, 3)
    assert parse_sf_date(None) is None


def test_format_soql_datetime_truncates_to_utc_seconds():
    value = datetime(2026, 1, 1, 1, 2, 3, 999999, tzinfo=timezone(timedelta(hours=-5)))
    assert format_soql_datetime(value) == "2026-01-01T06:02:03Z"
