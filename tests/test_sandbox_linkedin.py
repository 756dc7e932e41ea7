"""Wire behaviour of the LinkedIn Lead Sync sandbox, over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from sandbox import linkedin
from sandbox.core import Clock, Sandbox

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
ACCOUNT = "500000001"
TOKEN = "li_token_northwind"
OWNER = f"(sponsoredAccount:urn%3Ali%3AsponsoredAccount%3A{ACCOUNT})"
FORM_V1 = "urn:li:versionedLeadGenForm:(urn:li:leadGenForm:9000001,1)"
FORM_V2 = "urn:li:versionedLeadGenForm:(urn:li:leadGenForm:9000001,2)"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "LinkedIn-Version": "202601", "X-Restli-Protocol-Version": "2.0.0"}


def ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


def lead(lead_id: str, minutes: float, *, test: bool = False, form: str = FORM_V2) -> dict:
    return {
        "id": lead_id,
        "versionedLeadGenFormUrn": form,
        "submittedAt": ms(NOW - timedelta(minutes=minutes)),
        "testLead": test,
        "formResponse": {"answers": [{"questionId": 101, "answerDetails": {"textQuestionAnswer": {"answer": "Ana"}}}]},
    }


def scenario(**settings: object) -> dict:
    forms = [
        {"id": 9000001, "versionId": 1, "name": "Demo v1", "content": {"questions": [{"questionId": 101, "name": "firstName", "predefinedField": "FIRST_NAME"}]}},
        {"id": 9000001, "versionId": 2, "name": "Demo v2", "content": {"questions": [{"questionId": 103, "name": "email", "predefinedField": "EMAIL"}]}},
        {"id": 9000002, "versionId": 1, "name": "Webinar", "content": {"questions": []}},
    ]
    leads = [
        lead("lead-1", 50),
        lead("lead-2", 40, form=FORM_V1),
        # Two leads submitted in the same millisecond.
        lead("lead-3", 30),
        lead("lead-4", 30),
        lead("lead-5", 10),
        lead("test-1", 20, test=True),
        lead("future-1", -5),
        lead("ancient-1", 366 * 24 * 60),
    ]
    return {
        "format": 1,
        "settings": {"linkedin": {"default_count": 2, "max_count": 3, "token_ttl_seconds": 3600, **settings}},
        "accounts": [
            {"account_id": "northwind", "linkedin": {"access_token": TOKEN, "sponsored_account_id": ACCOUNT, "forms": forms, "leads": leads}},
            {"account_id": "contoso", "linkedin": {"access_token": "li_token_contoso", "sponsored_account_id": "500000002", "forms": [], "leads": [lead("other-1", 5)]}},
        ],
    }


def start_sandbox(data: dict) -> tuple[Sandbox, str]:
    sandbox = Sandbox(data, Clock(NOW))
    sandbox.add_app(linkedin.create_app(sandbox))
    urls = sandbox.serve({"linkedin": 0})
    return sandbox, urls["linkedin"]


@pytest.fixture
def served():
    sandbox, url = start_sandbox(scenario())
    yield url
    sandbox.stop()


def get(url: str, path: str, query: str = "", headers: dict | None = None) -> requests.Response:
    full = f"{url}{path}" + (f"?{query}" if query else "")
    return requests.get(full, headers=HEADERS if headers is None else headers, timeout=5)


def leads_query(**extra: str) -> str:
    params = {"q": "owner", "owner": OWNER, "leadType": "(leadType:SPONSORED)", **extra}
    return "&".join(f"{name}={value}" for name, value in params.items())


def recorded(url: str) -> list[dict]:
    return requests.get(f"{url}/_sandbox/requests", timeout=5).json()


# -- paging ----------------------------------------------------------------------


def test_lead_paging_short_final_page(served):
    pages = []
    for start in (0, 2, 4):
        response = get(served, "/rest/leadFormResponses", leads_query(start=str(start), count="2"))
        assert response.status_code == 200
        pages.append(response.json())

    assert [[e["id"] for e in page["elements"]] for page in pages] == [["lead-5", "lead-3"], ["lead-4", "lead-2"], ["lead-1"]]
    for page in pages:
        assert page["paging"]["total"] == 5
        assert page["paging"]["count"] == 2
    assert [page["paging"]["start"] for page in pages] == [0, 2, 4]


def test_lead_count_capped_and_defaulted(served):
    capped = get(served, "/rest/leadFormResponses", leads_query(count="50")).json()
    assert capped["paging"]["count"] == 3
    assert len(capped["elements"]) == 3

    defaulted = get(served, "/rest/leadFormResponses", leads_query()).json()
    assert defaulted["paging"]["count"] == 2
    assert len(defaulted["elements"]) == 2


def test_lead_defaults_filled_in(served):
    element = get(served, "/rest/leadFormResponses", leads_query(count="1")).json()["elements"][0]
    assert element["owner"] == {"sponsoredAccount": f"urn:li:sponsoredAccount:{ACCOUNT}"}
    assert element["leadType"] == "SPONSORED"


# -- filters ---------------------------------------------------------------------


def test_test_leads_only_when_limited(served):
    only_test = get(served, "/rest/leadFormResponses", leads_query(limitedToTestLeads="true", count="3")).json()
    real = get(served, "/rest/leadFormResponses", leads_query(limitedToTestLeads="false", count="3")).json()
    absent = get(served, "/rest/leadFormResponses", leads_query(count="3")).json()

    assert [e["id"] for e in only_test["elements"]] == ["test-1"]
    assert only_test["paging"]["total"] == 1
    assert "test-1" not in [e["id"] for e in real["elements"]]
    assert real["paging"]["total"] == 5
    assert absent["paging"]["total"] == 5


def test_time_range_start_inclusive_end_exclusive(served):
    start = ms(NOW - timedelta(minutes=40))
    end = ms(NOW - timedelta(minutes=10))
    body = get(served, "/rest/leadFormResponses", leads_query(submittedAtTimeRange=f"(start:{start},end:{end})", count="3")).json()
    assert [e["id"] for e in body["elements"]] == ["lead-3", "lead-4", "lead-2"]
    assert body["paging"]["total"] == 3


def test_time_range_open_end(served):
    start = ms(NOW - timedelta(minutes=30))
    body = get(served, "/rest/leadFormResponses", leads_query(submittedAtTimeRange=f"(start:{start})", count="3")).json()
    assert [e["id"] for e in body["elements"]] == ["lead-5", "lead-3", "lead-4"]


def test_time_range_malformed_rejected(served):
    response = get(served, "/rest/leadFormResponses", leads_query(submittedAtTimeRange="(start:1;end:2)"))
    assert response.status_code == 400
    assert "submittedAtTimeRange" in response.json()["message"]


def test_future_lead_appears_when_clock_passes(served):
    before = get(served, "/rest/leadFormResponses", leads_query(count="3")).json()
    assert before["paging"]["total"] == 5

    requests.post(f"{served}/_sandbox/clock", json={"advance_seconds": 6 * 60}, timeout=5)
    after = get(served, "/rest/leadFormResponses", leads_query(count="3")).json()
    assert after["paging"]["total"] == 6
    assert after["elements"][0]["id"] == "future-1"


def test_versioned_form_filter(served):
    encoded = "urn%3Ali%3AversionedLeadGenForm%3A%28urn%3Ali%3AleadGenForm%3A9000001%2C1%29"
    body = get(served, "/rest/leadFormResponses", leads_query(versionedLeadGenFormUrn=encoded)).json()
    assert [e["id"] for e in body["elements"]] == ["lead-2"]

    literal = get(served, "/rest/leadFormResponses", leads_query(versionedLeadGenFormUrn=FORM_V1))
    assert literal.status_code == 400


# -- Rest.li encoding --------------------------------------------------------------


def test_raw_query_recorded_exactly(served):
    query = leads_query(start="0", count="2")
    get(served, "/rest/leadFormResponses", query)
    entry = recorded(served)[-1]
    assert entry["path"] == "/rest/leadFormResponses"
    assert entry["query"] == query
    assert "owner=(sponsoredAccount:urn%3Ali%3AsponsoredAccount%3A500000001)" in entry["query"]


def test_params_dict_encoding_rejected(served):
    # What requests produces from a params dict: parentheses and colons encoded.
    response = requests.get(
        f"{served}/rest/leadFormResponses",
        params={"q": "owner", "owner": f"(sponsoredAccount:urn:li:sponsoredAccount:{ACCOUNT})", "leadType": "(leadType:SPONSORED)"},
        headers=HEADERS,
        timeout=5,
    )
    assert response.status_code == 400
    assert "%28sponsoredAccount%3Aurn%3Ali" in recorded(served)[-1]["query"]
    assert "owner" in response.json()["message"]


@pytest.mark.parametrize(
    "owner",
    [
        "%28sponsoredAccount%3Aurn%253Ali%253AsponsoredAccount%253A500000001%29",
        "(sponsoredAccount:urn%253Ali%253AsponsoredAccount%253A500000001)",
        "(sponsoredAccount:urn:li:sponsoredAccount:500000001)",
    ],
)
def test_malformed_owner_rejected(served, owner):
    query = f"q=owner&owner={owner}&leadType=(leadType:SPONSORED)"
    response = get(served, "/rest/leadFormResponses", query)
    body = response.json()
    assert response.status_code == 400
    assert body["status"] == 400
    assert set(body) >= {"message", "serviceErrorCode", "status"}


def test_sponsored_type_with_organization_owner(served):
    query = "q=owner&owner=(organization:urn%3Ali%3Aorganization%3A123)&leadType=(leadType:SPONSORED)"
    response = get(served, "/rest/leadFormResponses", query)
    assert response.status_code == 400
    assert "sponsoredAccount owner" in response.json()["message"]


def test_unknown_lead_type_rejected(served):
    query = f"q=owner&owner={OWNER}&leadType=(leadType:ORGANIC)"
    assert get(served, "/rest/leadFormResponses", query).status_code == 400


def test_other_tenants_owner_forbidden(served):
    query = "q=owner&owner=(sponsoredAccount:urn%3Ali%3AsponsoredAccount%3A500000002)&leadType=(leadType:SPONSORED)"
    response = get(served, "/rest/leadFormResponses", query)
    assert response.status_code == 403
    assert response.json()["serviceErrorCode"] == 100


# -- headers, auth, throttling --------------------------------------------------------


def test_missing_version_header(served):
    headers = {k: v for k, v in HEADERS.items() if k != "LinkedIn-Version"}
    response = get(served, "/rest/leadFormResponses", leads_query(), headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "VERSION_MISSING"


def test_sunset_version_answers_426(served):
    response = get(served, "/rest/leadFormResponses", leads_query(), headers={**HEADERS, "LinkedIn-Version": "202301"})
    assert response.status_code == 426
    assert response.json()["status"] == 426


def test_missing_restli_protocol_header(served):
    headers = {k: v for k, v in HEADERS.items() if k != "X-Restli-Protocol-Version"}
    response = get(served, "/rest/leadFormResponses", leads_query(), headers=headers)
    assert response.status_code == 400
    assert "X-Restli-Protocol-Version" in response.json()["message"]


def test_wrong_token_answers_401_envelope(served):
    response = get(served, "/rest/leadFormResponses", leads_query(), headers={**HEADERS, "Authorization": "Bearer nope"})
    body = response.json()
    assert response.status_code == 401
    assert body["status"] == 401
    assert body["serviceErrorCode"] == 65600
    assert body["message"] == "Invalid access token"


def test_token_expires_on_sandbox_clock(served):
    assert get(served, "/rest/leadFormResponses", leads_query()).status_code == 200
    requests.post(f"{served}/_sandbox/clock", json={"advance_seconds": 3600}, timeout=5)
    response = get(served, "/rest/leadFormResponses", leads_query())
    assert response.status_code == 401
    assert response.json()["serviceErrorCode"] == 65601


def test_throttle_fault_shape(served):
    requests.post(f"{served}/_sandbox/faults", json={"kind": "throttle", "times": 1}, timeout=5)
    response = get(served, "/rest/leadFormResponses", leads_query())
    assert response.status_code == 429
    assert response.json() == {
        "serviceErrorCode": 101,
        "message": "Resource level throttle limit for calls to this resource is reached.",
        "status": 429,
    }
    assert "Retry-After" not in response.headers
    assert get(served, "/rest/leadFormResponses", leads_query()).status_code == 200


def test_daily_quota_resets_at_utc_midnight():
    sandbox, url = start_sandbox(scenario(daily_quota=2, token_ttl_seconds=10 * 86400))
    try:
        statuses = [get(url, "/rest/leadFormResponses", leads_query()).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        state = requests.get(f"{url}/_sandbox/state", timeout=5).json()
        assert state["northwind"]["calls_today"] == 3

        requests.post(f"{url}/_sandbox/clock", json={"now": "2026-01-01T23:59:59Z"}, timeout=5)
        assert get(url, "/rest/leadFormResponses", leads_query()).status_code == 429
        requests.post(f"{url}/_sandbox/clock", json={"now": "2026-01-02T00:00:00Z"}, timeout=5)
        assert get(url, "/rest/leadFormResponses", leads_query()).status_code == 200
    finally:
        sandbox.stop()


def test_retention_hides_old_leads(served):
    body = get(served, "/rest/leadFormResponses", leads_query(count="3", start="3")).json()
    assert "ancient-1" not in [e["id"] for e in body["elements"]]


def test_get_single_lead(served):
    response = get(served, "/rest/leadFormResponses/lead-2")
    assert response.status_code == 200
    assert response.json()["versionedLeadGenFormUrn"] == FORM_V1
    assert get(served, "/rest/leadFormResponses/other-1").status_code == 404
    assert get(served, "/rest/leadFormResponses/future-1").status_code == 404


# -- leadForms ---------------------------------------------------------------------


def test_form_finder_has_no_total(served):
    body = get(served, "/rest/leadForms", f"q=owner&owner={OWNER}&count=1").json()
    assert "total" not in body["paging"]
    assert [(f["id"], f["versionId"]) for f in body["elements"]] == [(9000001, 2)]

    second = get(served, "/rest/leadForms", f"q=owner&owner={OWNER}&start=1&count=1").json()
    assert [f["id"] for f in second["elements"]] == [9000002]


def test_form_versions_by_version_id(served):
    latest = get(served, "/rest/leadForms/9000001").json()
    first = get(served, "/rest/leadForms/9000001", "versionId=1").json()
    assert latest["versionId"] == 2
    assert latest["content"]["questions"][0]["predefinedField"] == "EMAIL"
    assert first["versionId"] == 1
    assert first["content"]["questions"][0]["predefinedField"] == "FIRST_NAME"


def test_form_unknown_version_404(served):
    response = get(served, "/rest/leadForms/9000001", "versionId=7")
    assert response.status_code == 404
    assert response.json()["status"] == 404
    assert get(served, "/rest/leadForms/1234").status_code == 404


def test_state_counts_per_tenant(served):
    state = requests.get(f"{served}/_sandbox/state", timeout=5).json()
    assert state["northwind"]["leads"] == 8
    assert state["northwind"]["test_leads"] == 1
    assert state["northwind"]["forms"] == 3
    assert state["contoso"]["leads"] == 1
