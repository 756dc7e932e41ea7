"""Wire behaviour of the Meta Lead Ads sandbox, over real HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox import meta
from sandbox.core import Clock, Sandbox

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TOKEN = "meta_token_northwind"
PAGE = "100000000000001"
FORM = "610000000000001"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def created(minutes_before: float) -> str:
    return (NOW - timedelta(minutes=minutes_before)).strftime("%Y-%m-%dT%H:%M:%S+0000")


def lead(lead_id: str, minutes_before: float, **extra: object) -> dict:
    return {
        "id": lead_id,
        "created_time": created(minutes_before),
        "form_id": FORM,
        "ad_id": "23850000000000001",
        "campaign_id": "23850000000000003",
        "is_organic": False,
        "platform": "fb",
        "field_data": [{"name": "email", "values": [f"{lead_id}@example.com"]}],
        **extra,
    }


def scenario(**settings: object) -> dict:
    organic = lead("1200000000000003", 30)
    del organic["ad_id"], organic["campaign_id"], organic["is_organic"]
    return {
        "format": 1,
        "settings": {"meta": {"default_limit": 2, "max_limit": 3, "reduce_data_limit": 10, "token_ttl_seconds": 3600, **settings}},
        "accounts": [
            {
                "account_id": "northwind",
                "meta": {
                    "access_token": TOKEN,
                    "page_id": PAGE,
                    "forms": [
                        {"id": FORM, "name": "Demo request", "questions": [{"key": "email", "label": "Email", "type": "EMAIL"}]},
                        {"id": "610000000000002", "name": "Webinar", "questions": []},
                    ],
                    "leads": [
                        lead("1200000000000001", 50),
                        lead("1200000000000002", 40),
                        organic,
                        lead("1200000000000004", 20),
                        lead("1200000000000005", 10),
                        lead("1200000000000009", -5),
                        lead("1200000000000100", 15, form_id="610000000000002"),
                    ],
                },
            },
            {
                "account_id": "contoso",
                "meta": {"access_token": "meta_token_contoso", "page_id": "100000000000002", "forms": [{"id": "620000000000001", "name": "Other", "questions": []}], "leads": []},
            },
        ],
    }


def start_sandbox(data: dict) -> tuple[Sandbox, str]:
    sandbox = Sandbox(data, Clock(NOW))
    sandbox.add_app(meta.create_app(sandbox))
    return sandbox, sandbox.serve({"meta": 0})["meta"]


@pytest.fixture
def served():
    sandbox, url = start_sandbox(scenario())
    yield url
    sandbox.stop()


def get(url: str, path: str, params: dict | None = None, headers: dict | None = None) -> requests.Response:
    return requests.get(f"{url}{path}", params=params, headers=AUTH if headers is None else headers, timeout=5)


# -- fields and format ---------------------------------------------------------------


def test_default_fields_are_minimal(served):
    body = get(served, f"/v24.0/{FORM}/leads", {"limit": "1"}).json()
    assert body["data"] == [{"id": "1200000000000005", "created_time": created(10)}]


def test_requested_fields_and_time_format(served):
    body = get(served, f"/v24.0/{FORM}/leads", {"fields": "id,created_time,ad_id,is_organic,field_data", "limit": "3"}).json()
    by_id = {row["id"]: row for row in body["data"]}
    assert by_id["1200000000000005"]["created_time"] == "2026-01-01T11:50:00+0000"
    assert by_id["1200000000000005"]["ad_id"] == "23850000000000001"
    assert by_id["1200000000000003"]["is_organic"] is True
    assert "ad_id" not in by_id["1200000000000003"]
    assert by_id["1200000000000004"]["field_data"] == [{"name": "email", "values": ["1200000000000004@example.com"]}]


def test_unknown_field_rejected(served):
    response = get(served, f"/v24.0/{FORM}/leads", {"fields": "id,favourite_colour"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 100


# -- paging ----------------------------------------------------------------------


def test_cursor_paging_to_last_page(served):
    pages = []
    response = get(served, f"/v24.0/{FORM}/leads", {"limit": "2"})
    while True:
        body = response.json()
        pages.append([row["id"] for row in body["data"]])
        next_url = body["paging"].get("next")
        if not next_url:
            break
        assert "after" in body["paging"]["cursors"]
        response = requests.get(next_url, headers=AUTH, timeout=5)

    assert pages == [
        ["1200000000000005", "1200000000000004"],
        ["1200000000000003", "1200000000000002"],
        ["1200000000000001"],
    ]


def test_next_link_keeps_parameters(served):
    body = get(served, f"/v24.0/{FORM}/leads", {"fields": "id,form_id", "limit": "2", "access_token": TOKEN}, headers={}).json()
    query = parse_qs(urlsplit(body["paging"]["next"]).query)
    assert query["fields"] == ["id,form_id"]
    assert query["limit"] == ["2"]
    assert query["access_token"] == [TOKEN]
    assert query["after"] == [body["paging"]["cursors"]["after"]]


def test_cursor_stable_when_newer_lead_appears(served):
    first = get(served, f"/v24.0/{FORM}/leads", {"limit": "2"}).json()
    # The lead created 5 minutes after NOW becomes visible between two pages.
    requests.post(f"{served}/_sandbox/clock", json={"advance_seconds": 600}, timeout=5)
    second = requests.get(first["paging"]["next"], headers=AUTH, timeout=5).json()
    assert [row["id"] for row in second["data"]] == ["1200000000000003", "1200000000000002"]


def test_empty_page_has_no_paging(served):
    filtering = json.dumps([{"field": "time_created", "operator": "GREATER_THAN", "value": int(NOW.timestamp())}])
    body = get(served, f"/v24.0/{FORM}/leads", {"filtering": filtering}).json()
    assert body == {"data": []}


def test_invalid_cursor_rejected(served):
    response = get(served, f"/v24.0/{FORM}/leads", {"after": "not-a-cursor!"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 100


# -- filtering and limits ------------------------------------------------------------


def test_time_created_filter_is_strict(served):
    lower = int((NOW - timedelta(minutes=40)).timestamp())
    upper = int((NOW - timedelta(minutes=10)).timestamp())
    filtering = json.dumps(
        [
            {"field": "time_created", "operator": "GREATER_THAN", "value": lower},
            {"field": "time_created", "operator": "LESS_THAN", "value": upper},
        ]
    )
    body = get(served, f"/v24.0/{FORM}/leads", {"filtering": filtering, "limit": "3"}).json()
    assert [row["id"] for row in body["data"]] == ["1200000000000004", "1200000000000003"]
    assert "next" not in body["paging"]


def test_filter_on_created_time_rejected(served):
    filtering = json.dumps([{"field": "created_time", "operator": "GREATER_THAN", "value": 1}])
    response = get(served, f"/v24.0/{FORM}/leads", {"filtering": filtering})
    assert response.status_code == 400
    assert "time_created" in response.json()["error"]["message"]


def test_limit_capped_at_max(served):
    body = get(served, f"/v24.0/{FORM}/leads", {"limit": "8"}).json()
    assert len(body["data"]) == 3


def test_limit_over_threshold_answers_500(served):
    response = get(served, f"/v24.0/{FORM}/leads", {"limit": "11"})
    assert response.status_code == 500
    assert response.json()["error"]["message"] == "Please reduce the amount of data you're asking for, then retry your request"


# -- auth and throttling -----------------------------------------------------------


def test_token_in_query_parameter(served):
    response = get(served, f"/v24.0/{FORM}/leads", {"access_token": TOKEN}, headers={})
    assert response.status_code == 200
    assert response.headers["facebook-api-version"] == "v24.0"


def test_invalid_token_is_code_190(served):
    response = get(served, f"/v24.0/{FORM}/leads", headers={"Authorization": "Bearer wrong"})
    error = response.json()["error"]
    assert response.status_code == 400
    assert error["code"] == 190
    assert error["type"] == "OAuthException"
    assert "fbtrace_id" in error


def test_missing_token_is_code_104(served):
    response = get(served, f"/v24.0/{FORM}/leads", headers={})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 104


def test_token_expires_on_sandbox_clock(served):
    requests.post(f"{served}/_sandbox/clock", json={"advance_seconds": 3600}, timeout=5)
    response = get(served, f"/v24.0/{FORM}/leads")
    error = response.json()["error"]
    assert response.status_code == 400
    assert error["code"] == 190
    assert error["error_subcode"] == 463


def test_throttle_fault_shape(served):
    requests.post(f"{served}/_sandbox/faults", json={"kind": "throttle", "times": 1}, timeout=5)
    response = get(served, f"/v24.0/{FORM}/leads")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 80005
    usage = json.loads(response.headers["X-Business-Use-Case-Usage"])
    assert usage[PAGE][0]["type"] == "leadgen"
    assert usage[PAGE][0]["estimated_time_to_regain_access"] == 1
    assert get(served, f"/v24.0/{FORM}/leads").status_code == 200


def test_other_tenants_form_not_found(served):
    response = get(served, "/v24.0/620000000000001/leads")
    error = response.json()["error"]
    assert response.status_code == 400
    assert error["code"] == 100
    assert error["error_subcode"] == 33


# -- forms and single objects ---------------------------------------------------------


def test_list_page_forms(served):
    body = get(served, f"/v24.0/{PAGE}/leadgen_forms").json()
    assert [form["id"] for form in body["data"]] == ["610000000000002", "610000000000001"]
    assert body["data"][0] == {"id": "610000000000002", "locale": "en_US", "name": "Webinar", "status": "ACTIVE"}


def test_form_questions(served):
    body = get(served, f"/v24.0/{FORM}", {"fields": "questions"}).json()
    assert body == {"questions": [{"key": "email", "label": "Email", "type": "EMAIL"}]}


def test_single_lead_hidden_until_created(served):
    assert get(served, "/v24.0/1200000000000009").status_code == 400
    requests.post(f"{served}/_sandbox/clock", json={"advance_seconds": 600}, timeout=5)
    body = get(served, "/v24.0/1200000000000009", {"fields": "id,form_id"}).json()
    assert body == {"id": "1200000000000009", "form_id": FORM}


def test_state_counts_per_tenant(served):
    state = requests.get(f"{served}/_sandbox/state", timeout=5).json()
    assert state["northwind"] == {"page_id": PAGE, "forms": 2, "leads": 7}
    assert state["contoso"]["leads"] == 0
