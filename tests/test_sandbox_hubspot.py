"""Wire behaviour of the HubSpot stand-in, exercised over real HTTP on loopback."""

from __future__ import annotations

import copy

import pytest
import requests

from sandbox.core import Clock, Sandbox, parse_instant
from sandbox.hubspot import create_app

START = "2026-01-01T00:05:12Z"
TOKEN = "pat-na1-northwind"
CONTACTS = "/crm/v3/objects/contacts"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
RATE_HEADERS = {
    "X-HubSpot-RateLimit-Max",
    "X-HubSpot-RateLimit-Remaining",
    "X-HubSpot-RateLimit-Interval-Milliseconds",
    "X-HubSpot-RateLimit-Daily",
    "X-HubSpot-RateLimit-Daily-Remaining",
}


def contact(contact_id, email, modified, **properties):
    return {
        "id": contact_id,
        "properties": {"email": email, **properties},
        "createdAt": "2025-11-02T10:00:00.000Z",
        "updatedAt": modified,
    }


SCENARIO = {
    "format": 1,
    "settings": {"hubspot": {"max_batch": 4, "search_page_max": 3, "search_cap": 6, "search_per_second": 50}},
    "accounts": [
        {
            "account_id": "contoso",
            "timezone": "America/New_York",
            "map": {
                "type": "hubspot",
                "access_token": TOKEN,
                "score_field": "hubspotscore",
                "mql_date_field": "hs_lifecyclestage_marketingqualifiedlead_date",
                "scoring": {
                    "base": 5,
                    "per_field": {"jobtitle": 10, "company": 10, "phone": 5},
                    "keywords": {"director": 25, "vp": 30, "head": 20},
                    "mql_threshold": 40,
                },
                "contacts": [
                    contact("50001", "Ana@Example.com", "2025-12-01T00:00:00.000Z", firstname="Ana", hubspotscore="70"),
                    contact("50002", "ben@example.org", "2025-12-02T00:00:00.000Z"),
                    {**contact("50003", "gone@example.com", "2025-12-02T00:00:00.000Z"), "archived": True},
                    contact("50004", "same1@example.net", "2025-12-05T00:00:00.000Z"),
                    contact("50005", "same2@example.net", "2025-12-05T00:00:00.000Z"),
                    contact("50006", "same3@example.net", "2025-12-05T00:00:00.000Z"),
                    contact("50007", "late@example.net", "2025-12-09T00:00:00.000Z"),
                ],
            },
        }
    ],
}


@pytest.fixture
def serve():
    """Start a HubSpot stand-in with optional setting overrides and stop it after the test."""
    started: list[Sandbox] = []

    def start(**settings):
        scenario = copy.deepcopy(SCENARIO)
        scenario["settings"]["hubspot"].update(settings)
        sandbox = Sandbox(scenario, Clock(parse_instant(START)))
        sandbox.add_app(create_app(sandbox))
        url = sandbox.serve(ports={"hubspot": 0})["hubspot"]
        started.append(sandbox)
        return url

    yield start
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def url(serve):
    return serve()


def post(url, path, payload, headers=HEADERS):
    return requests.post(f"{url}{CONTACTS}{path}", json=payload, headers=headers, timeout=5)


def advance(url, seconds):
    requests.post(f"{url}/_sandbox/clock", json={"advance_seconds": seconds}, timeout=5).raise_for_status()


def contacts_state(url):
    return {c["id"]: c for c in requests.get(f"{url}/_sandbox/state", timeout=5).json()["contoso"]["contacts"]}


def search(url, filters, **extra):
    return post(url, "/search", {"filterGroups": [{"filters": filters}], **extra})


# -- auth ---------------------------------------------------------------------------------


def test_missing_or_wrong_token_is_401(url):
    missing = post(url, "/batch/read", {"inputs": [{"id": "50001"}]}, headers={})
    assert missing.status_code == 401
    assert missing.json()["category"] == "INVALID_AUTHENTICATION"
    wrong = post(url, "/batch/read", {"inputs": [{"id": "50001"}]}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


# -- batch upsert -------------------------------------------------------------------------


def test_upsert_by_email_reports_new_flag(url):
    response = post(
        url,
        "/batch/upsert",
        {
            "inputs": [
                {"idProperty": "email", "id": "new.person@example.com", "properties": {"firstname": "New"}},
                {"idProperty": "email", "id": "ANA@example.com", "properties": {"lastname": "Silva"}},
            ]
        },
    )
    assert response.status_code == 200
    results = {entry["id"]: entry for entry in response.json()["results"]}
    assert set(results) == {"50008", "50001"}
    assert results["50008"]["new"] is True
    assert results["50008"]["properties"]["email"] == "new.person@example.com"
    assert results["50001"]["new"] is False
    assert results["50001"]["properties"]["lastname"] == "Silva"
    assert RATE_HEADERS <= set(response.headers)


def test_upsert_rejects_duplicate_ids(url):
    response = post(
        url,
        "/batch/upsert",
        {
            "inputs": [
                {"idProperty": "email", "id": "dup@example.com", "properties": {}},
                {"idProperty": "email", "id": "DUP@example.com", "properties": {}},
            ]
        },
    )
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert "Duplicate IDs" in response.json()["message"]
    assert "50008" not in contacts_state(url)


def test_batch_over_max_is_rejected(url):
    inputs = [{"properties": {"email": f"p{i}@example.com"}} for i in range(5)]
    response = post(url, "/batch/create", {"inputs": inputs})
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


# -- batch create -------------------------------------------------------------------------


def test_create_conflict_fails_whole_batch(url):
    response = post(
        url,
        "/batch/create",
        {"inputs": [{"properties": {"email": "fresh@example.com"}}, {"properties": {"email": "ben@EXAMPLE.org"}}]},
    )
    assert response.status_code == 409
    assert response.json()["category"] == "CONFLICT"
    assert response.json()["message"] == "Contact already exists. Existing ID: 50002"
    assert "50008" not in contacts_state(url)


def test_create_with_trace_ids_is_multi_status(url):
    response = post(
        url,
        "/batch/create",
        {
            "inputs": [
                {"properties": {"email": "fresh@example.com", "firstname": "F"}, "objectWriteTraceId": "a"},
                {"properties": {"email": "ben@EXAMPLE.org"}, "objectWriteTraceId": "b"},
                {"properties": {"email": "second@example.com"}, "objectWriteTraceId": "c"},
            ]
        },
    )
    assert response.status_code == 207
    body = response.json()
    assert [(entry["id"], entry["objectWriteTraceId"]) for entry in body["results"]] == [("50008", "a"), ("50009", "c")]
    assert body["results"][0]["properties"]["firstname"] == "F"
    assert body["numErrors"] == 1
    assert body["errors"][0]["category"] == "CONFLICT"
    assert body["errors"][0]["objectWriteTraceId"] == "b"
    assert body["errors"][0]["message"] == "Contact already exists. Existing ID: 50002"


def test_create_without_conflict_is_201(url):
    response = post(url, "/batch/create", {"inputs": [{"properties": {"email": "x@example.com"}}]})
    assert response.status_code == 201
    assert response.json()["results"][0]["id"] == "50008"
    assert response.json()["results"][0]["createdAt"] == "2026-01-01T00:05:12.000Z"


# -- batch update -------------------------------------------------------------------------


def test_update_by_email_is_rejected(url):
    response = post(
        url, "/batch/update", {"inputs": [{"idProperty": "email", "id": "ben@example.org", "properties": {}}]}
    )
    assert response.status_code == 400
    assert response.json()["message"] == "Unable to perform update/upsert by non-unique 0-1 property"


def test_update_reports_missing_and_archived_ids(url):
    response = post(
        url,
        "/batch/update",
        {
            "inputs": [
                {"id": "50002", "properties": {"firstname": "Ben"}},
                {"id": "99999", "properties": {"firstname": "X"}},
                {"id": "50003", "properties": {"firstname": "Y"}},
            ]
        },
    )
    assert response.status_code == 207
    body = response.json()
    assert [entry["id"] for entry in body["results"]] == ["50002"]
    assert body["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert body["errors"][0]["context"]["ids"] == ["99999", "50003"]
    current = contacts_state(url)["50002"]
    assert current["properties"]["firstname"] == "Ben"
    assert current["updatedAt"] == "2026-01-01T00:05:12.000Z"


def test_update_to_taken_email_conflicts(url):
    response = post(url, "/batch/update", {"inputs": [{"id": "50002", "properties": {"email": "ana@example.com"}}]})
    assert response.status_code == 207
    assert response.json()["errors"][0]["category"] == "CONFLICT"
    assert contacts_state(url)["50002"]["properties"]["email"] == "ben@example.org"


# -- batch read ---------------------------------------------------------------------------


def test_read_reports_missing_and_archived(url):
    response = post(
        url,
        "/batch/read",
        {"inputs": [{"id": "50001"}, {"id": "50003"}, {"id": "424242"}], "properties": ["email", "hubspotscore"]},
    )
    assert response.status_code == 207
    body = response.json()
    assert body["results"][0]["properties"] == {"email": "Ana@Example.com", "hubspotscore": "70"}
    assert body["errors"][0]["context"]["ids"] == ["50003", "424242"]

    complete = post(url, "/batch/read", {"inputs": [{"id": "50002"}]})
    assert complete.status_code == 200
    assert set(complete.json()["results"][0]["properties"]) == {
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    }


# -- scoring ------------------------------------------------------------------------------


def test_scoring_marks_mql(url):
    post(
        url,
        "/batch/create",
        {
            "inputs": [
                {"properties": {"email": "head@example.com", "jobtitle": "Head of Sales", "company": "Example Corp"}}
            ]
        },
    )
    post(url, "/batch/create", {"inputs": [{"properties": {"email": "intern@example.com", "jobtitle": "Intern"}}]})
    names = [
        "hubspotscore",
        "lifecyclestage",
        "hs_lifecyclestage_marketingqualifiedlead_date",
        "hs_v2_date_entered_marketingqualifiedlead",
    ]
    body = post(
        url, "/batch/read", {"inputs": [{"id": "50008"}, {"id": "50009"}, {"id": "50001"}], "properties": names}
    ).json()
    by_id = {entry["id"]: entry["properties"] for entry in body["results"]}
    # 5 base + 10 jobtitle + 10 company + 20 for "head"
    assert by_id["50008"] == {
        "hubspotscore": "45",
        "lifecyclestage": "marketingqualifiedlead",
        "hs_lifecyclestage_marketingqualifiedlead_date": "2026-01-01T00:00:00.000Z",
        "hs_v2_date_entered_marketingqualifiedlead": "2026-01-01T00:00:00.000Z",
    }
    assert by_id["50009"]["hubspotscore"] == "15"
    assert by_id["50009"]["lifecyclestage"] is None
    # Loaded contacts keep their written score.
    assert by_id["50001"]["hubspotscore"] == "70"


# -- search -------------------------------------------------------------------------------


def test_search_email_ignores_case(url):
    response = search(url, [{"propertyName": "email", "operator": "EQ", "value": "ana@example.COM"}])
    assert response.status_code == 200
    assert [entry["id"] for entry in response.json()["results"]] == ["50001"]
    assert not RATE_HEADERS & set(response.headers)

    by_list = search(
        url, [{"propertyName": "email", "operator": "IN", "values": ["ben@example.org", "gone@example.com"]}]
    )
    assert [entry["id"] for entry in by_list.json()["results"]] == ["50002"]


def test_search_filters_on_epoch_ms(url):
    # 2025-12-05T00:00:00Z in epoch milliseconds.
    response = search(
        url,
        [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "1764892800000"}],
        sorts=[{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}],
        properties=["email"],
        limit=3,
    )
    body = response.json()
    assert body["total"] == 4
    assert [entry["id"] for entry in body["results"]] == ["50007", "50004", "50005"]
    assert body["paging"] == {"next": {"after": "3"}}
    assert set(body["results"][0]["properties"]) == {"email", "createdate", "hs_object_id", "lastmodifieddate"}

    rest = search(
        url,
        [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "1764892800000"}],
        sorts=[{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}],
        limit=3,
        after="3",
    ).json()
    assert [entry["id"] for entry in rest["results"]] == ["50006"]
    assert "paging" not in rest


def test_search_stops_at_cap(serve):
    url = serve(search_cap=4)
    page = search(url, [], limit=3, after="3").json()
    assert page["total"] == 6
    assert [entry["id"] for entry in page["results"]] == ["50005"]
    assert page["paging"] == {"next": {"after": "4"}}

    past_cap = search(url, [], limit=3, after="4")
    assert past_cap.status_code == 400
    assert past_cap.json()["category"] == "VALIDATION_ERROR"


def test_search_rejects_page_over_max(url):
    response = search(url, [], limit=4)
    assert response.status_code == 400


# -- limits -------------------------------------------------------------------------------


def test_ten_second_limit_answers_429(serve):
    url = serve(ten_second_limit=2)
    statuses = [post(url, "/batch/read", {"inputs": [{"id": "50001"}]}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = post(url, "/batch/read", {"inputs": [{"id": "50001"}]})
    body = limited.json()
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["correlationId"]
    assert limited.headers["X-HubSpot-RateLimit-Remaining"] == "0"

    advance(url, 10)
    assert post(url, "/batch/read", {"inputs": [{"id": "50001"}]}).status_code == 200


def test_search_limit_is_per_second(serve):
    url = serve(search_per_second=2, ten_second_limit=1)
    statuses = [search(url, []).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = search(url, [])
    assert limited.json()["message"] == "You have reached your secondly limit."
    assert not RATE_HEADERS & set(limited.headers)
    # Search does not use the 10-second limiter, so a batch call still passes.
    assert post(url, "/batch/read", {"inputs": [{"id": "50001"}]}).status_code == 200

    advance(url, 1)
    assert search(url, []).status_code == 200


def test_daily_limit_answers_429_daily(serve):
    url = serve(daily_limit=1)
    assert post(url, "/batch/read", {"inputs": [{"id": "50001"}]}).status_code == 200
    limited = post(url, "/batch/read", {"inputs": [{"id": "50001"}]})
    assert limited.status_code == 429
    assert limited.json()["policyName"] == "DAILY"
    # The day ends at midnight in the account's time zone (America/New_York, UTC-5).
    advance(url, 5 * 3600 - 312 - 1)
    assert post(url, "/batch/read", {"inputs": [{"id": "50001"}]}).status_code == 429
    advance(url, 1)
    assert post(url, "/batch/read", {"inputs": [{"id": "50001"}]}).status_code == 200


def test_throttle_fault_uses_hubspot_body(url):
    requests.post(f"{url}/_sandbox/faults", json={"kind": "throttle", "times": 1}, timeout=5)
    response = post(url, "/batch/read", {"inputs": [{"id": "50001"}]})
    assert response.status_code == 429
    assert response.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert post(url, "/batch/read", {"inputs": [{"id": "50001"}]}).status_code == 200
