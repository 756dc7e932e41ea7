"""The Salesforce sandbox over real HTTP: OAuth, SOQL subset, paging, sessions, limits, collections."""

from __future__ import annotations

import pytest
import requests

from sandbox import salesforce
from sandbox.core import Clock, Sandbox, parse_instant

NOW = "2026-01-05T00:00:00Z"
API = "/services/data/v62.0"

LEADS = [
    {
        "Id": "00Q000000000001AAA",
        "Email": "ana@example.com",
        "Status": "Qualified",
        "IsConverted": True,
        "ConvertedDate": "2026-01-03",
        "ConvertedContactId": "003000000000001AAA",
        "ConvertedAccountId": "001000000000001AAA",
        "ConvertedOpportunityId": "006000000000001AAA",
        "CreatedDate": "2026-01-01T00:21:00.000+0000",
        "LastModifiedDate": "2026-01-03T10:00:00Z",
    },
    {
        "Id": "00Q000000000002AAA",
        "Email": "Ben@Example.com",
        "Status": "Working",
        "IsConverted": False,
        "CreatedDate": "2026-01-02T08:00:00Z",
    },
    {
        "Id": "00Q000000000003AAA",
        "Email": None,
        "Status": "Open - Not Contacted",
        "IsConverted": False,
        "CreatedDate": "2026-01-02T09:30:00Z",
    },
    {
        "Id": "00Q000000000004AAA",
        "Email": "cleo@example.org",
        "Status": "Qualified",
        "IsConverted": True,
        "ConvertedDate": "2026-01-04",
        "ConvertedContactId": "003000000000002AAA",
        "ConvertedAccountId": "001000000000001AAA",
        "CreatedDate": "2026-01-03T12:00:00Z",
    },
    {
        "Id": "00Q000000000005AAA",
        "Email": "gone@example.com",
        "Status": "Working",
        "IsConverted": False,
        "IsDeleted": True,
        "CreatedDate": "2026-01-01T00:00:00Z",
    },
]


def make_scenario(settings: dict | None = None, **crm: list) -> dict:
    return {
        "format": 1,
        "settings": {"salesforce": settings or {}},
        "accounts": [
            {
                "account_id": "northwind",
                "crm": {"type": "salesforce", "client_id": "sf_client", "client_secret": "sf_secret", **crm},
            },
            {"account_id": "no_crm"},
        ],
    }


class Org:
    """A served sandbox plus a session token for the test account."""

    def __init__(self, scenario: dict):
        self.sandbox = Sandbox(scenario, Clock(parse_instant(NOW)))
        self.sandbox.add_app(salesforce.create_app(self.sandbox))
        self.url = self.sandbox.serve(ports={"salesforce": 0})["salesforce"]
        self.token = self.get_token()

    def get_token(self) -> str:
        response = requests.post(
            f"{self.url}/services/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": "sf_client", "client_secret": "sf_secret"},
            timeout=5,
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def get(self, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.token}", **kwargs.pop("headers", {})}
        return requests.get(f"{self.url}{path}", headers=headers, timeout=5, **kwargs)

    def query(self, soql: str, **kwargs) -> requests.Response:
        return self.get(f"{API}/query", params={"q": soql}, **kwargs)

    def ids(self, soql: str) -> list[str]:
        response = self.query(soql)
        assert response.status_code == 200, response.text
        return [record["Id"] for record in response.json()["records"]]

    def post(self, path: str, body) -> requests.Response:
        return requests.post(
            f"{self.url}{path}", json=body, headers={"Authorization": f"Bearer {self.token}"}, timeout=5
        )

    def advance(self, seconds: float) -> None:
        response = requests.post(f"{self.url}/_sandbox/clock", json={"advance_seconds": seconds}, timeout=5)
        assert response.status_code == 200


@pytest.fixture
def serve_org():
    orgs: list[Org] = []

    def start(scenario: dict) -> Org:
        org = Org(scenario)
        orgs.append(org)
        return org

    yield start
    for org in orgs:
        org.sandbox.stop()


@pytest.fixture
def org(serve_org) -> Org:
    return serve_org(make_scenario(leads=LEADS))


@pytest.fixture(scope="module")
def read_only_org():
    """One org shared by tests that neither write records nor move the clock, because stopping a server takes 0.5 s."""
    org = Org(make_scenario(leads=LEADS))
    yield org
    org.sandbox.stop()


def test_token_response_shape(org):
    response = requests.post(
        f"{org.url}/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "sf_client", "client_secret": "sf_secret"},
        timeout=5,
    )
    body = response.json()
    assert response.status_code == 200
    assert sorted(body) == ["access_token", "id", "instance_url", "issued_at", "scope", "signature", "token_type"]
    assert body["instance_url"] == org.url
    assert body["token_type"] == "Bearer"
    assert body["issued_at"] == str(int(parse_instant(NOW).timestamp() * 1000))
    assert body["id"].startswith(f"{org.url}/id/00D")


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "client_credentials", "client_id": "sf_client", "client_secret": "wrong"}, "invalid_client"),
        ({"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "sf_secret"}, "invalid_client"),
        ({"grant_type": "password", "client_id": "sf_client", "client_secret": "sf_secret"}, "unsupported_grant_type"),
    ],
)
def test_token_rejects_bad_request(org, form, error):
    response = requests.post(f"{org.url}/services/oauth2/token", data=form, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert "error_description" in response.json()


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("IsConverted = true", ["00Q000000000001AAA", "00Q000000000004AAA"]),
        ("IsConverted = false", ["00Q000000000002AAA", "00Q000000000003AAA"]),
        ("Email IN ('ana@example.com', 'BEN@example.com')", ["00Q000000000001AAA", "00Q000000000002AAA"]),
        ("Email NOT IN ('ana@example.com')", ["00Q000000000002AAA", "00Q000000000003AAA", "00Q000000000004AAA"]),
        ("Email = null", ["00Q000000000003AAA"]),
        ("Email != null AND IsConverted = false", ["00Q000000000002AAA"]),
        (
            "LastModifiedDate >= 2026-01-02T09:30:00Z",
            ["00Q000000000001AAA", "00Q000000000003AAA", "00Q000000000004AAA"],
        ),
        ("CreatedDate > 2026-01-02T09:00:00+01:00", ["00Q000000000003AAA", "00Q000000000004AAA"]),
        ("CreatedDate <= 2026-01-01T00:21:00Z", ["00Q000000000001AAA"]),
        ("ConvertedDate < 2026-01-04", ["00Q000000000001AAA"]),
        (
            "(IsConverted = true AND ConvertedDate >= 2026-01-04) OR Status = 'working'",
            ["00Q000000000002AAA", "00Q000000000004AAA"],
        ),
        ("NOT (Status = 'Qualified' OR Email = null)", ["00Q000000000002AAA"]),
        ("Id = '00Q000000000002AAA'", ["00Q000000000002AAA"]),
        ("Id = '00q000000000002aaa'", []),
    ],
)
def test_query_where_filters(read_only_org, where, expected):
    assert read_only_org.ids(f"SELECT Id FROM Lead WHERE {where}") == expected


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ("ORDER BY Email", ["00Q000000000003AAA", "00Q000000000001AAA", "00Q000000000002AAA", "00Q000000000004AAA"]),
        (
            "ORDER BY Email DESC",
            ["00Q000000000004AAA", "00Q000000000002AAA", "00Q000000000001AAA", "00Q000000000003AAA"],
        ),
        (
            "ORDER BY Email ASC NULLS LAST",
            ["00Q000000000001AAA", "00Q000000000002AAA", "00Q000000000004AAA", "00Q000000000003AAA"],
        ),
        (
            "ORDER BY Status, CreatedDate DESC",
            ["00Q000000000003AAA", "00Q000000000004AAA", "00Q000000000001AAA", "00Q000000000002AAA"],
        ),
        ("ORDER BY CreatedDate DESC LIMIT 2", ["00Q000000000004AAA", "00Q000000000003AAA"]),
        ("LIMIT 0", []),
    ],
)
def test_query_order_and_limit(read_only_org, tail, expected):
    assert read_only_org.ids(f"SELECT Id FROM Lead {tail}") == expected


def test_query_record_shape(read_only_org):
    response = read_only_org.query(
        "select id, EMAIL, ConvertedDate, CreatedDate, LastModifiedDate, IsConverted from lead where Id = '00Q000000000001AAA'"
    )
    assert response.status_code == 200
    assert response.json() == {
        "totalSize": 1,
        "done": True,
        "records": [
            {
                "attributes": {"type": "Lead", "url": f"{API}/sobjects/Lead/00Q000000000001AAA"},
                "Id": "00Q000000000001AAA",
                "Email": "ana@example.com",
                "ConvertedDate": "2026-01-03",
                "CreatedDate": "2026-01-01T00:21:00.000+0000",
                "LastModifiedDate": "2026-01-03T10:00:00.000+0000",
                "IsConverted": True,
            }
        ],
    }


def test_last_modified_defaults_to_created(read_only_org):
    records = read_only_org.query(
        "SELECT LastModifiedDate, SystemModstamp FROM Lead WHERE Id = '00Q000000000002AAA'"
    ).json()["records"]
    assert records[0]["LastModifiedDate"] == "2026-01-02T08:00:00.000+0000"
    assert records[0]["SystemModstamp"] == "2026-01-02T08:00:00.000+0000"


def test_query_all_includes_deleted(read_only_org):
    response = read_only_org.get(
        f"{API}/queryAll", params={"q": "SELECT Id, IsDeleted FROM Lead WHERE IsDeleted = true"}
    )
    assert response.status_code == 200
    assert [(r["Id"], r["IsDeleted"]) for r in response.json()["records"]] == [("00Q000000000005AAA", True)]
    assert read_only_org.ids("SELECT Id FROM Lead WHERE IsDeleted = true") == []


@pytest.mark.parametrize(
    ("soql", "code", "fragment"),
    [
        ("SELECT Id FROM Lead WHERE", "MALFORMED_QUERY", "unexpected token: <EOF>"),
        ("SELECT FROM Lead", "MALFORMED_QUERY", "unexpected token: 'FROM'"),
        ("SELECT Id, Nope FROM Lead", "INVALID_FIELD", "No such column 'Nope' on entity 'Lead'"),
        ("SELECT Id FROM Lead WHERE Nope = 1", "INVALID_FIELD", "No such column 'Nope'"),
        ("SELECT Id FROM Widget", "INVALID_TYPE", "sObject type 'Widget' is not supported"),
        ("SELECT Id FROM Lead WHERE CreatedDate > '2026-01-01T00:00:00Z'", "INVALID_FIELD", "must be of type dateTime"),
        ("SELECT Id FROM Lead WHERE ConvertedDate > 2026-01-01T00:00:00Z", "INVALID_FIELD", "must be of type date "),
        ("SELECT Id FROM Lead WHERE Email = 5", "INVALID_FIELD", "should be enclosed in quotes"),
        ("SELECT Id FROM Lead WHERE IsConverted = 'true'", "INVALID_FIELD", "must be of type boolean"),
        (
            "SELECT Id FROM Lead WHERE IsConverted = true AND Email = null OR Status = 'x'",
            "MALFORMED_QUERY",
            "unexpected token: 'OR'",
        ),
        ("SELECT Id FROM Lead WHERE Email LIKE 'a%'", "MALFORMED_QUERY", "unexpected token: 'LIKE'"),
        ("SELECT Account.Name FROM Contact", "MALFORMED_QUERY", "relationship field 'Account.Name'"),
        ("SELECT Id, Id FROM Lead", "MALFORMED_QUERY", "duplicate field selected: Id"),
        ("SELECT Id FROM Lead LIMIT -1", "MALFORMED_QUERY", "LIMIT must be a non-negative integer"),
        ("SELECT Id FROM Lead ORDER BY Email SIDEWAYS", "MALFORMED_QUERY", "unexpected token: 'SIDEWAYS'"),
        ("SELECT Id FROM Lead WHERE Email = 'open", "MALFORMED_QUERY", "unexpected token: '''"),
        ("SELECT Id FROM Lead WHERE CreatedDate > 2026-02-30T00:00:00Z", "MALFORMED_QUERY", "invalid datetime literal"),
    ],
)
def test_query_rejects_malformed(read_only_org, soql, code, fragment):
    response = read_only_org.query(soql)
    assert response.status_code == 400
    body = response.json()
    assert body[0]["errorCode"] == code
    assert fragment in body[0]["message"]


def test_query_error_points_at_column(read_only_org):
    message = read_only_org.query("SELECT Id FROM Lead WHERE Nope = 1").json()[0]["message"]
    assert message.splitlines()[1:4] == [
        "SELECT Id FROM Lead WHERE Nope = 1",
        " " * 26 + "^",
        "ERROR at Row:1:Column:27",
    ]


def test_query_without_q_is_malformed(read_only_org):
    response = read_only_org.get(f"{API}/query")
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "MALFORMED_QUERY"


def test_paging_exact_batches(serve_org):
    leads = [
        {"Id": f"00Q00000000000{n}AAA", "LastName": f"L{n}", "CreatedDate": "2026-01-01T00:00:00Z"} for n in range(1, 6)
    ]
    org = serve_org(make_scenario({"query_batch": 2}, leads=leads))
    first = org.query("SELECT Id FROM Lead ORDER BY Id").json()
    assert first["totalSize"] == 5
    assert first["done"] is False
    assert [r["Id"] for r in first["records"]] == ["00Q000000000001AAA", "00Q000000000002AAA"]
    locator, offset = first["nextRecordsUrl"].rsplit("/", 1)[1].split("-")
    assert first["nextRecordsUrl"] == f"{API}/query/{locator}-2"
    assert offset == "2"

    second = org.get(first["nextRecordsUrl"]).json()
    assert second["totalSize"] == 5
    assert second["done"] is False
    assert [r["Id"] for r in second["records"]] == ["00Q000000000003AAA", "00Q000000000004AAA"]
    assert second["nextRecordsUrl"] == f"{API}/query/{locator}-4"

    last = org.get(second["nextRecordsUrl"]).json()
    assert last["done"] is True
    assert "nextRecordsUrl" not in last
    assert [r["Id"] for r in last["records"]] == ["00Q000000000005AAA"]


def test_batch_size_header_is_clamped(serve_org):
    accounts = [{"Id": f"001{n:012d}AAA", "Name": f"Account {n}"} for n in range(450)]
    org = serve_org(make_scenario(accounts=accounts))
    for requested, expected_sizes in (
        ("batchSize=200", [200, 200, 50]),
        ("batchSize=50", [200, 200, 50]),
        (None, [450]),
    ):
        headers = {"Sforce-Query-Options": requested} if requested else {}
        page = org.query("SELECT Id FROM Account", headers=headers).json()
        sizes = [len(page["records"])]
        while not page["done"]:
            page = org.get(page["nextRecordsUrl"]).json()
            sizes.append(len(page["records"]))
        assert sizes == expected_sizes, requested


def test_locator_expires_after_idle(serve_org):
    leads = [{"Id": f"00Q00000000000{n}AAA", "LastName": f"L{n}"} for n in range(1, 4)]
    org = serve_org(make_scenario({"query_batch": 1, "locator_idle_seconds": 30}, leads=leads))
    first = org.query("SELECT Id FROM Lead").json()
    org.advance(30)
    second = org.get(first["nextRecordsUrl"])
    assert second.status_code == 200
    org.advance(31)
    third = org.get(second.json()["nextRecordsUrl"])
    assert third.status_code == 400
    assert third.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_unknown_locator_is_invalid(read_only_org):
    response = read_only_org.get(f"{API}/query/01gXX0000000009AAA-2000")
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_session_expires_on_sandbox_clock(serve_org):
    org = serve_org(make_scenario({"session_seconds": 600}, leads=LEADS))
    assert org.query("SELECT Id FROM Lead").status_code == 200
    org.advance(599)
    assert org.query("SELECT Id FROM Lead").status_code == 200
    org.advance(1)
    expired = org.query("SELECT Id FROM Lead")
    assert expired.status_code == 401
    assert expired.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    fresh = org.get_token()
    assert org.query("SELECT Id FROM Lead", token=fresh).status_code == 200


def test_missing_token_is_invalid_session(read_only_org):
    response = requests.get(f"{read_only_org.url}{API}/limits", timeout=5)
    assert response.status_code == 401
    assert response.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_daily_limit_rolls_over_24h(serve_org):
    org = serve_org(make_scenario({"daily_limit": 3, "session_seconds": 2 * 86400}, leads=LEADS))
    headers = []
    for _ in range(3):
        response = org.query("SELECT Id FROM Lead")
        assert response.status_code == 200
        headers.append(response.headers["Sforce-Limit-Info"])
        org.advance(3600)
    assert headers == ["api-usage=1/3", "api-usage=2/3", "api-usage=3/3"]

    refused = org.query("SELECT Id FROM Lead")
    assert refused.status_code == 403
    assert refused.json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert refused.headers["Sforce-Limit-Info"] == "api-usage=3/3"

    # The first call was 3 h ago, so 21 h more moves it out of the 24 h window.
    org.advance(21 * 3600)
    again = org.get(f"{API}/limits")
    assert again.status_code == 200
    assert again.headers["Sforce-Limit-Info"] == "api-usage=3/3"
    assert again.json() == {"DailyApiRequests": {"Max": 3, "Remaining": 0}}


def test_limits_endpoint_counts_itself(org):
    org.query("SELECT Id FROM Lead")
    response = org.get(f"{API}/limits")
    assert response.json() == {"DailyApiRequests": {"Max": 100000, "Remaining": 99998}}
    assert response.headers["Sforce-Limit-Info"] == "api-usage=2/100000"


def test_injected_faults_use_salesforce_bodies(org):
    requests.post(f"{org.url}/_sandbox/faults", json=[{"kind": "throttle"}, {"kind": "expire_token"}], timeout=5)
    throttled = org.query("SELECT Id FROM Lead")
    assert throttled.status_code == 403
    assert throttled.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert throttled.json()[0]["message"].startswith("ConcurrentRequests")
    expired = org.query("SELECT Id FROM Lead")
    assert expired.status_code == 401
    assert expired.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    assert org.query("SELECT Id FROM Lead").status_code == 200


def test_get_record_by_id(read_only_org):
    response = read_only_org.get(f"{API}/sobjects/Lead/00Q000000000004AAA")
    assert response.status_code == 200
    assert response.json()["ConvertedDate"] == "2026-01-04"
    assert read_only_org.get(f"{API}/sobjects/Lead/00Q000000000005AAA").status_code == 404


COLLECTION = [
    {"attributes": {"type": "Lead"}, "LastName": "Diaz", "Company": "Acme", "Email": "dora@example.com"},
    {"attributes": {"type": "Lead"}, "LastName": "Eng"},
    {"attributes": {"type": "Contact"}, "Email": "fay@example.com"},
    {"attributes": {"type": "Lead"}, "LastName": "Gil", "Company": "Acme", "Email": "not-an-email"},
    {"attributes": {"type": "Contact"}, "LastName": "Hu", "AccountId": "001MISSING000000AAA"},
]


def test_collection_partial_failure(org):
    response = org.post(f"{API}/composite/sobjects", {"allOrNone": False, "records": COLLECTION})
    assert response.status_code == 200
    results = response.json()
    assert [r["success"] for r in results] == [True, False, False, False, False]
    assert results[0]["id"].startswith("00Q")
    assert results[0]["errors"] == []
    assert results[1] == {
        "success": False,
        "errors": [
            {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing: [Company]",
                "fields": ["Company"],
            }
        ],
    }
    assert results[2]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert results[2]["errors"][0]["fields"] == ["LastName"]
    assert results[3]["errors"][0]["statusCode"] == "INVALID_EMAIL_ADDRESS"
    assert results[4]["errors"][0]["statusCode"] == "INVALID_CROSS_REFERENCE_KEY"
    assert results[4]["errors"][0]["fields"] == ["AccountId"]

    created = org.query(
        f"SELECT Id, LastName, Status, IsConverted, CreatedDate FROM Lead WHERE Id = '{results[0]['id']}'"
    )
    record = created.json()["records"][0]
    assert record["LastName"] == "Diaz"
    assert record["Status"] == "Open - Not Contacted"
    assert record["IsConverted"] is False
    assert record["CreatedDate"] == "2026-01-05T00:00:00.000+0000"
    assert org.ids("SELECT Id FROM Contact") == []


def test_collection_all_or_none_rolls_back(org):
    before = org.ids("SELECT Id FROM Lead")
    records = [COLLECTION[0], COLLECTION[1]]
    response = org.post(f"{API}/composite/sobjects", {"allOrNone": True, "records": records})
    assert response.status_code == 200
    results = response.json()
    assert results[0]["success"] is False
    assert "id" not in results[0]
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert org.ids("SELECT Id FROM Lead") == before


def test_collection_all_or_none_commits_when_valid(org):
    response = org.post(f"{API}/composite/sobjects", {"allOrNone": True, "records": [COLLECTION[0]]})
    assert response.json()[0]["success"] is True
    assert org.ids("SELECT Id FROM Lead WHERE Email = 'dora@example.com'") == [response.json()[0]["id"]]


def test_collection_rejects_read_only_fields(org):
    record = {"attributes": {"type": "Lead"}, "LastName": "Ito", "Company": "Acme", "IsConverted": True}
    result = org.post(f"{API}/composite/sobjects", {"records": [record]}).json()[0]
    assert result["success"] is False
    assert result["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert result["errors"][0]["fields"] == ["IsConverted"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"records": [{"attributes": {"type": "Lead"}, "LastName": "X", "Company": "Y", "Nope": 1}]}, "INVALID_FIELD"),
        ({"records": [{"attributes": {"type": "Widget"}, "Name": "X"}]}, "INVALID_TYPE"),
        ({"records": [{"LastName": "X"}]}, "INVALID_INPUT"),
        ({"records": "nope"}, "INVALID_INPUT"),
        (
            {
                "records": [
                    {"attributes": {"type": "Opportunity"}, "Name": "X", "StageName": "New", "CloseDate": "soon"}
                ]
            },
            "JSON_PARSER_ERROR",
        ),
        ({"records": [{"attributes": {"type": "Lead"}, "LastName": "X", "Company": "Y"}] * 3}, "EXCEEDED_ID_LIMIT"),
    ],
)
def test_collection_rejects_malformed_request(serve_org, body, code):
    org = serve_org(make_scenario({"max_collection": 2}))
    response = org.post(f"{API}/composite/sobjects", body)
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == code
    assert org.ids("SELECT Id FROM Lead") == []


def test_state_lists_records_per_account(org):
    org.post(f"{API}/composite/sobjects", {"records": [COLLECTION[0]]})
    state = requests.get(f"{org.url}/_sandbox/state", timeout=5).json()
    assert list(state) == ["northwind"]
    leads = state["northwind"]["leads"]
    assert len(leads) == 6
    assert leads[0]["ConvertedDate"] == "2026-01-03"
    assert leads[0]["LastModifiedDate"] == "2026-01-03T10:00:00.000+0000"
    assert leads[5]["Email"] == "dora@example.com"
    assert state["northwind"]["api_usage"] == 1
    assert state["northwind"]["contacts"] == []
