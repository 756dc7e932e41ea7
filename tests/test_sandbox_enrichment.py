"""Wire behaviour of the Clearbit-style enrichment sandbox, over real HTTP."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
import requests

from sandbox import enrichment
from sandbox.core import Clock, Sandbox

NOW = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)
KEY = "sk_enrich_demo"
AUTH = {"Authorization": f"Bearer {KEY}"}

PERSON = {"id": "p-0001", "email": "ana@example.com", "employment": {"domain": "example.com", "name": "Example Corp", "title": "Head of Ops"}}
COMPANY = {"id": "c-0001", "name": "Example Corp", "domain": "example.com", "metrics": {"employees": 120}}
OTHER_COMPANY = {"id": "c-0002", "name": "Sample Org", "domain": "example.org"}


def scenario(**settings: object) -> dict:
    return {
        "format": 1,
        "settings": {"enrichment": {"per_minute": 5, **settings}},
        "enrichment": {
            "api_key": KEY,
            "people": [
                {"email": "Ana@Example.com", "person": PERSON, "company": COMPANY, "pending_first": True},
                {"email": "bo@example.org", "person": {"id": "p-0002", "email": "bo@example.org"}},
            ],
            "companies": [{"domain": "example.com", "company": COMPANY}, {"domain": "example.org", "company": OTHER_COMPANY}],
        },
        "accounts": [],
    }


def start_sandbox(data: dict) -> tuple[Sandbox, str]:
    sandbox = Sandbox(data, Clock(NOW))
    sandbox.add_app(enrichment.create_app(sandbox))
    return sandbox, sandbox.serve({"enrichment": 0})["enrichment"]


@pytest.fixture
def served():
    sandbox, url = start_sandbox(scenario())
    yield url
    sandbox.stop()


def find(url: str, email: str | None, headers: dict | None = None) -> requests.Response:
    params = {} if email is None else {"email": email}
    return requests.get(f"{url}/v2/combined/find", params=params, headers=AUTH if headers is None else headers, timeout=5)


def test_pending_first_then_matched(served):
    first = find(served, "ana@example.com")
    assert first.status_code == 202
    assert first.content == b""

    second = find(served, "ANA@example.com")
    assert second.status_code == 200
    assert second.json() == {"person": PERSON, "company": COMPANY}


def test_pending_disabled_by_setting():
    sandbox, url = start_sandbox(scenario(pending_first_lookup=False))
    try:
        response = find(url, "ana@example.com")
        assert response.status_code == 200
        assert response.json()["person"]["id"] == "p-0001"
    finally:
        sandbox.stop()


def test_person_company_from_domain(served):
    body = find(served, "bo@example.org").json()
    assert body["person"]["id"] == "p-0002"
    assert body["company"] == OTHER_COMPANY


def test_company_only_by_domain(served):
    response = find(served, "someone@example.com")
    assert response.status_code == 200
    assert response.json() == {"person": None, "company": COMPANY}


def test_unknown_email_both_null(served):
    assert find(served, "nobody@unknown.example").json() == {"person": None, "company": None}


def test_basic_auth_user_name(served):
    token = base64.b64encode(f"{KEY}:".encode()).decode()
    response = find(served, "someone@example.com", headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 200


def test_invalid_key_rejected(served):
    response = find(served, "someone@example.com", headers={"Authorization": "Bearer sk_wrong"})
    assert response.status_code == 401
    assert response.json() == {"error": {"type": "invalid_api_key", "message": "Invalid API key"}}


def test_missing_key_rejected(served):
    response = find(served, "someone@example.com", headers={})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "auth_required"


def test_missing_email_rejected(served):
    response = find(served, None)
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "invalid_email"


def test_unknown_route_envelope(served):
    response = requests.get(f"{served}/v2/people/find", headers=AUTH, timeout=5)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "unknown_route"


def test_rate_limit_per_sandbox_minute(served):
    statuses = [find(served, "someone@example.com").status_code for _ in range(5)]
    assert statuses == [200] * 5

    limited = find(served, "someone@example.com")
    window_end = int(datetime(2026, 1, 1, 12, 1, tzinfo=UTC).timestamp())
    assert limited.status_code == 429
    assert limited.json()["error"]["type"] == "rate_limit"
    assert limited.headers["x-ratelimit-limit"] == "5"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert limited.headers["x-ratelimit-reset"] == str(window_end)
    assert "Retry-After" not in limited.headers

    requests.post(f"{served}/_sandbox/clock", json={"advance_seconds": 30}, timeout=5)
    after = find(served, "someone@example.com")
    assert after.status_code == 200
    assert after.headers["x-ratelimit-remaining"] == "4"


def test_remaining_counts_down(served):
    remaining = [find(served, "someone@example.com").headers["x-ratelimit-remaining"] for _ in range(3)]
    assert remaining == ["4", "3", "2"]


def test_throttle_fault_shape(served):
    requests.post(f"{served}/_sandbox/faults", json={"kind": "throttle", "times": 1}, timeout=5)
    response = find(served, "someone@example.com")
    assert response.status_code == 429
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert find(served, "someone@example.com").status_code == 200


def test_state_counts(served):
    find(served, "ana@example.com")
    find(served, "someone@example.com")
    state = requests.get(f"{served}/_sandbox/state", timeout=5).json()
    assert state["lookups"] == 2
    assert state["queued"] == 1
    assert state["people"] == 2
