"""Wire behaviour of the Marketo stand-in, exercised over real HTTP on loopback."""

from __future__ import annotations

import copy
import threading

import pytest
import requests

from sandbox.core import Clock, Sandbox, parse_instant
from sandbox.marketo import create_app

START = "2026-01-01T00:05:12Z"

SCENARIO = {
    "format": 1,
    "settings": {"marketo": {"max_batch": 4, "rate_calls": 50, "activity_scan_size": 300}},
    "accounts": [
        {
            "account_id": "northwind",
            "map": {
                "type": "marketo",
                "client_id": "mkto_client_northwind",
                "client_secret": "mkto_secret_northwind",
                "munchkin_id": "123-ABC-456",
                "fields": [
                    {
                        "id": 5001,
                        "displayName": "MQL Date",
                        "dataType": "date",
                        "rest": {"name": "mqlDate__c", "readOnly": False},
                    }
                ],
                "score_field": "leadScore",
                "mql_date_field": "mqlDate__c",
                "scoring": {
                    "base": 5,
                    "per_field": {"title": 10, "company": 10, "phone": 5},
                    "keywords": {"director": 25, "vp": 30, "head": 20},
                    "mql_threshold": 40,
                },
                "leads": [
                    {
                        "id": 1000001,
                        "email": "solo@example.com",
                        "firstName": "Solo",
                        "leadScore": 99,
                        "createdAt": "2025-12-01T10:00:00Z",
                        "updatedAt": "2025-12-01T10:00:00Z",
                    },
                    {
                        "id": 1000002,
                        "email": "twin@example.org",
                        "createdAt": "2025-12-02T10:00:00Z",
                        "updatedAt": "2025-12-02T10:00:00Z",
                    },
                    {
                        "id": 1000005,
                        "email": "Twin@Example.org",
                        "createdAt": "2025-12-03T10:00:00Z",
                        "updatedAt": "2025-12-03T10:00:00Z",
                    },
                ],
            },
        }
    ],
}


@pytest.fixture
def serve():
    """Start a Marketo stand-in for a scenario (with optional setting overrides) and stop it after the test."""
    started: list[Sandbox] = []

    def start(**settings):
        scenario = copy.deepcopy(SCENARIO)
        scenario["settings"]["marketo"].update(settings)
        sandbox = Sandbox(scenario, Clock(parse_instant(START)))
        sandbox.add_app(create_app(sandbox))
        url = sandbox.serve(ports={"marketo": 0})["marketo"]
        started.append(sandbox)
        return url

    yield start
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def url(serve):
    return serve()


def get_token(url, client_id="mkto_client_northwind", secret="mkto_secret_northwind", method="GET"):
    params = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    if method == "POST":
        return requests.post(f"{url}/identity/oauth/token", data=params, timeout=5)
    return requests.get(f"{url}/identity/oauth/token", params=params, timeout=5)


def auth(url):
    return {"Authorization": f"Bearer {get_token(url).json()['access_token']}"}


def upsert(url, headers, records, **options):
    response = requests.post(
        f"{url}/rest/v1/leads.json", json={"input": records, **options}, headers=headers, timeout=5
    )
    assert response.status_code == 200
    return response.json()


def lookup(url, headers, **params):
    response = requests.get(f"{url}/rest/v1/leads.json", params=params, headers=headers, timeout=5)
    assert response.status_code == 200
    return response.json()


def advance(url, seconds):
    requests.post(f"{url}/_sandbox/clock", json={"advance_seconds": seconds}, timeout=5).raise_for_status()


def state(url):
    return requests.get(f"{url}/_sandbox/state", timeout=5).json()["northwind"]


def error_code(body):
    assert body["success"] is False
    return body["errors"][0]["code"]


# -- identity and tokens ------------------------------------------------------------


def test_identity_reuses_token_until_expiry(url):
    first = get_token(url)
    assert first.status_code == 200
    assert first.json()["expires_in"] == 3600
    assert first.json()["token_type"] == "bearer"

    advance(url, 600)
    second = get_token(url, method="POST").json()
    assert second["access_token"] == first.json()["access_token"]
    assert second["expires_in"] == 3000

    advance(url, 3000)
    headers = {"Authorization": f"Bearer {first.json()['access_token']}"}
    expired = lookup(url, headers, filterType="email", filterValues="solo@example.com")
    assert error_code(expired) == "602"

    third = get_token(url).json()
    assert third["access_token"] != first.json()["access_token"]
    assert third["expires_in"] == 3600


def test_identity_rejects_bad_credentials(url):
    response = get_token(url, secret="wrong")
    assert response.status_code == 401
    assert "access_token" not in response.json()


def test_rest_rejects_missing_and_query_tokens(url):
    token = get_token(url).json()["access_token"]
    missing = requests.get(f"{url}/rest/v1/leads/describe.json", timeout=5)
    assert missing.status_code == 200
    assert error_code(missing.json()) == "600"

    in_query = requests.get(f"{url}/rest/v1/leads/describe.json", params={"access_token": token}, timeout=5)
    assert in_query.status_code == 200
    assert error_code(in_query.json()) == "601"

    unknown = requests.get(f"{url}/rest/v1/leads/describe.json", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert error_code(unknown.json()) == "601"


# -- upsert ----------------------------------------------------------------------------


def test_upsert_results_follow_input_order(url):
    body = upsert(
        url,
        auth(url),
        [
            {"email": "new.lead@example.com", "firstName": "New"},
            {"email": "SOLO@example.com", "lastName": "Updated"},
            {"email": "twin@example.org", "firstName": "Twin"},
            {"email": "odd@example.com", "favouriteColour": "blue"},
        ],
    )
    assert body["success"] is True
    assert body["result"][0] == {"id": 1000006, "status": "created"}
    assert body["result"][1] == {"id": 1000001, "status": "updated"}
    assert body["result"][2] == {
        "status": "skipped",
        "reasons": [{"code": "1007", "message": "Multiple lead match lookup criteria"}],
    }
    assert body["result"][3]["status"] == "skipped"
    assert body["result"][3]["reasons"][0]["code"] == "1006"
    assert "favouriteColour" in body["result"][3]["reasons"][0]["message"]

    current = state(url)
    assert current["creates"] == 1
    assert current["updates"] == 1
    assert [lead["id"] for lead in current["leads"]] == [1000001, 1000002, 1000005, 1000006]


def test_upsert_actions_report_skip_reasons(url):
    headers = auth(url)
    create_only = upsert(
        url, headers, [{"email": "solo@example.com"}, {"email": "fresh@example.com"}], action="createOnly"
    )
    assert create_only["result"][0]["reasons"][0]["code"] == "1005"
    assert create_only["result"][1]["status"] == "created"

    update_only = upsert(url, headers, [{"email": "ghost@example.com", "firstName": "G"}], action="updateOnly")
    assert update_only["result"][0]["reasons"][0]["code"] == "1004"

    by_id = upsert(
        url,
        headers,
        [{"id": 1000002, "firstName": "Ida"}, {"id": 42, "firstName": "None"}],
        action="updateOnly",
        lookupField="id",
    )
    assert by_id["result"][0] == {"id": 1000002, "status": "updated"}
    assert by_id["result"][1]["reasons"][0]["code"] == "1004"

    duplicate = upsert(url, headers, [{"email": "solo@example.com"}], action="createDuplicate")
    assert duplicate["result"][0]["status"] == "created"


def test_upsert_rejects_oversized_batch(url):
    body = upsert(url, auth(url), [{"email": f"l{i}@example.com"} for i in range(5)])
    assert error_code(body) == "1003"
    assert state(url)["creates"] == 0


def test_new_ids_repeat_across_runs(serve):
    ids = []
    for _ in range(2):
        url = serve()
        body = upsert(url, auth(url), [{"email": "a@example.com"}, {"email": "b@example.com"}])
        ids.append([item["id"] for item in body["result"]])
    assert ids[0] == [1000006, 1000007]
    assert ids[1] == ids[0]


# -- scoring ------------------------------------------------------------------------------


def test_scoring_sets_score_and_mql_date(url):
    headers = auth(url)
    upsert(
        url,
        headers,
        [
            {"email": "vp@example.com", "title": "VP of Marketing", "company": "Example Corp"},
            {"email": "analyst@example.com", "title": "Analyst"},
        ],
    )
    body = lookup(
        url,
        headers,
        filterType="email",
        filterValues="vp@example.com,analyst@example.com,solo@example.com",
        fields="email,leadScore,mqlDate__c",
    )
    leads = {lead["email"]: lead for lead in body["result"]}
    # 5 base + 10 title + 10 company + 30 for "vp"
    assert leads["vp@example.com"]["leadScore"] == 55
    assert leads["vp@example.com"]["mqlDate__c"] == "2026-01-01"
    assert leads["analyst@example.com"]["leadScore"] == 15
    assert leads["analyst@example.com"]["mqlDate__c"] is None
    # Loaded leads keep their written score until they are written again.
    assert leads["solo@example.com"]["leadScore"] == 99

    # A day later the first token has expired, so fetch a new one.
    advance(url, 86400)
    headers = auth(url)
    upsert(
        url,
        headers,
        [{"email": "analyst@example.com", "title": "Head of Analytics", "company": "Example Corp", "phone": "555"}],
    )
    later = lookup(
        url, headers, filterType="email", filterValues="analyst@example.com", fields="leadScore,mqlDate__c,updatedAt"
    )
    assert later["result"][0]["leadScore"] == 50
    assert later["result"][0]["mqlDate__c"] == "2026-01-02"
    assert later["result"][0]["updatedAt"] == "2026-01-02T00:05:12Z"


# -- lookups ------------------------------------------------------------------------------


def test_lookup_by_email_ignores_case(url):
    body = lookup(url, auth(url), filterType="email", filterValues="TWIN@example.org")
    assert [lead["id"] for lead in body["result"]] == [1000002, 1000005]
    assert set(body["result"][0]) == {"id", "email", "updatedAt", "createdAt", "firstName", "lastName"}


def test_lookup_rejects_unknown_field(url):
    body = lookup(url, auth(url), filterType="email", filterValues="solo@example.com", fields="email,shoeSize")
    assert error_code(body) == "1006"


def test_lookup_limits_filter_values(url):
    values = ",".join(f"l{i}@example.com" for i in range(301))
    response = requests.post(
        f"{url}/rest/v1/leads.json",
        params={"_method": "GET"},
        data={"filterType": "email", "filterValues": values},
        headers=auth(url),
        timeout=5,
    )
    assert error_code(response.json()) == "1003"


def test_lookup_by_post_method_override(url):
    response = requests.post(
        f"{url}/rest/v1/leads.json",
        params={"_method": "GET"},
        data={"filterType": "id", "filterValues": "1000001,1000005,77", "fields": "id,email"},
        headers=auth(url),
        timeout=5,
    )
    assert response.json()["result"] == [
        {"id": 1000001, "email": "solo@example.com"},
        {"id": 1000005, "email": "Twin@Example.org"},
    ]


def test_oversized_uri_and_body_rejected(url):
    headers = auth(url)
    long_values = ",".join(f"someone.with.a.long.name{i}@example.com" for i in range(250))
    too_long = requests.get(
        f"{url}/rest/v1/leads.json",
        params={"filterType": "email", "filterValues": long_values},
        headers=headers,
        timeout=5,
    )
    assert too_long.status_code == 414

    big = [{"email": f"l{i}@example.com", "firstName": "x" * 400_000} for i in range(3)]
    too_big = requests.post(f"{url}/rest/v1/leads.json", json={"input": big}, headers=headers, timeout=5)
    assert too_big.status_code == 413


def test_describe_lists_custom_mql_field(url):
    body = requests.get(f"{url}/rest/v1/leads/describe.json", headers=auth(url), timeout=5).json()
    fields = {entry["rest"]["name"]: entry for entry in body["result"]}
    assert fields["mqlDate__c"]["id"] == 5001
    assert fields["mqlDate__c"]["dataType"] == "date"
    assert fields["id"]["rest"]["readOnly"] is True


# -- limits ------------------------------------------------------------------------------


def test_rate_limit_answers_606(serve):
    url = serve(rate_calls=3)
    headers = auth(url)
    bodies = [lookup(url, headers, filterType="id", filterValues="1000001") for _ in range(4)]
    assert [body["success"] for body in bodies] == [True, True, True, False]
    assert bodies[3]["errors"] == [{"code": "606", "message": "Max rate limit '3' exceeded with in '20' secs"}]

    advance(url, 19)
    assert error_code(lookup(url, headers, filterType="id", filterValues="1000001")) == "606"
    advance(url, 1)
    assert lookup(url, headers, filterType="id", filterValues="1000001")["success"] is True


def test_daily_quota_answers_607(serve):
    url = serve(daily_quota=2)
    headers = auth(url)
    bodies = [lookup(url, headers, filterType="id", filterValues="1000001") for _ in range(3)]
    assert [body["success"] for body in bodies] == [True, True, False]
    assert bodies[2]["errors"][0] == {"code": "607", "message": "Daily quota reached"}


def test_concurrency_limit_answers_615(serve):
    url = serve(max_concurrent=2, latency_seconds=1.0)
    headers = auth(url)
    bodies = []
    barrier = threading.Barrier(3)

    def call():
        barrier.wait()
        bodies.append(lookup(url, headers, filterType="id", filterValues="1000001"))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    codes = sorted(body["errors"][0]["code"] if not body["success"] else "ok" for body in bodies)
    assert codes == ["615", "ok", "ok"]


def test_faults_use_marketo_error_bodies(url):
    headers = auth(url)
    requests.post(
        f"{url}/_sandbox/faults",
        json=[{"kind": "throttle", "times": 1}, {"kind": "expire_token", "times": 1}],
        timeout=5,
    )
    throttled = requests.get(f"{url}/rest/v1/leads/describe.json", headers=headers, timeout=5)
    assert throttled.status_code == 200
    assert error_code(throttled.json()) == "606"
    expired = requests.get(f"{url}/rest/v1/leads/describe.json", headers=headers, timeout=5)
    assert expired.status_code == 200
    assert error_code(expired.json()) == "602"
    assert requests.get(f"{url}/rest/v1/leads/describe.json", headers=headers, timeout=5).json()["success"] is True


# -- lead changes ------------------------------------------------------------------------


def test_lead_changes_page_through_scan_windows(serve):
    url = serve(activity_scan_size=2)
    headers = auth(url)
    upsert(url, headers, [{"email": "vp@example.com", "title": "VP Sales"}])
    upsert(url, headers, [{"email": "vp@example.com", "firstName": "Val"}])
    upsert(url, headers, [{"email": "vp@example.com", "lastName": "Smith"}])
    upsert(url, headers, [{"email": "vp@example.com", "phone": "555-0100"}])
    token = requests.get(
        f"{url}/rest/v1/activities/pagingtoken.json",
        params={"sinceDatetime": "2026-01-01T00:00:00+00:00"},
        headers=headers,
        timeout=5,
    ).json()["nextPageToken"]

    pages = []
    while len(pages) < 10:
        page = requests.get(
            f"{url}/rest/v1/activities/leadchanges.json",
            params={"nextPageToken": token, "fields": "leadScore,mqlDate__c"},
            headers=headers,
            timeout=5,
        ).json()
        assert page["success"] is True
        assert page["nextPageToken"]
        pages.append(page)
        token = page["nextPageToken"]
        if not page["moreResult"]:
            break

    # Logged in order: New Lead, score 45, MQL date, firstName, lastName, phone, score 50.
    # Two activities are examined per call, so the third page matches nothing but has more.
    assert [page["moreResult"] for page in pages] == [True, True, True, False]
    assert [len(page.get("result", [])) for page in pages] == [2, 1, 0, 1]
    assert "result" not in pages[2]
    activities = [activity for page in pages for activity in page.get("result", [])]
    assert [activity["activityTypeId"] for activity in activities] == [12, 13, 13, 13]
    assert activities[1]["fields"] == [{"id": 10, "name": "leadScore", "newValue": "45", "oldValue": None}]
    assert activities[2]["fields"][0]["name"] == "mqlDate__c"
    assert activities[2]["fields"][0]["newValue"] == "2026-01-01"
    assert activities[3]["fields"] == [{"id": 10, "name": "leadScore", "newValue": "50", "oldValue": "45"}]


def test_lead_changes_since_excludes_older_activity(url):
    headers = auth(url)
    upsert(url, headers, [{"email": "early@example.com", "title": "Director"}])
    advance(url, 3600)
    headers = auth(url)
    upsert(url, headers, [{"email": "early@example.com", "company": "Example Corp"}])
    token = requests.get(
        f"{url}/rest/v1/activities/pagingtoken.json",
        params={"sinceDatetime": "2026-01-01T01:00:00Z"},
        headers=headers,
        timeout=5,
    ).json()["nextPageToken"]
    page = requests.get(
        f"{url}/rest/v1/activities/leadchanges.json",
        params={"nextPageToken": token, "fields": "leadScore"},
        headers=headers,
        timeout=5,
    ).json()
    assert [activity["fields"][0]["newValue"] for activity in page["result"]] == ["50"]
    assert page["result"][0]["activityDate"] == "2026-01-01T01:05:12Z"
    assert page["moreResult"] is False
