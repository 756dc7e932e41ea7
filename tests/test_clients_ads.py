"""LinkedIn, Meta and enrichment clients against the served sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from leadflow.clients import enrichment as enrichment_client
from leadflow.clients import linkedin as linkedin_client
from leadflow.clients import meta as meta_client
from leadflow.clients.base import ClientConfig, PermanentError, RetryPolicy, Throttled
from sandbox import enrichment, linkedin, meta
from sandbox.core import Clock, Sandbox

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
WINDOW_START = NOW - timedelta(hours=1)
WINDOW_END = NOW

LI_TOKEN = "li_token_northwind"
LI_ACCOUNT = "500000001"
FORM_URN_V1 = "urn:li:versionedLeadGenForm:(urn:li:leadGenForm:9000001,1)"
FORM_URN_V2 = "urn:li:versionedLeadGenForm:(urn:li:leadGenForm:9000001,2)"

META_TOKEN = "meta_token_northwind"
META_FORM = "610000000000001"

ENRICH_KEY = "sk_enrich_demo"


# -- scenario ---------------------------------------------------------------------


def ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


def li_lead(lead_id: str, submitted: datetime, *, test: bool = False, form: str = FORM_URN_V2) -> dict:
    return {
        "id": lead_id,
        "versionedLeadGenFormUrn": form,
        "submittedAt": ms(submitted),
        "testLead": test,
        "formResponse": {"answers": [{"questionId": 101, "answerDetails": {"textQuestionAnswer": {"answer": "Ana"}}}]},
    }


LI_FULL_LEAD = {
    "id": "7f3c2a10-0000-4e5b-9a11-2b7c9d000001-3",
    "versionedLeadGenFormUrn": FORM_URN_V2,
    "submitter": "urn:li:person:AbCdEf123",
    "submittedAt": ms(NOW - timedelta(minutes=5)) + 345,
    "testLead": False,
    "leadMetadata": {"sponsoredLeadMetadata": {"campaign": "urn:li:sponsoredCampaign:300000001"}},
    "formResponse": {
        "answers": [
            {"questionId": 101, "answerDetails": {"textQuestionAnswer": {"answer": " Ana "}}},
            {"questionId": 102, "answerDetails": {"textQuestionAnswer": {"answer": "Lopez"}}},
            {"questionId": 103, "answerDetails": {"textQuestionAnswer": {"answer": "ana@example.com"}}},
            {"questionId": 104, "answerDetails": {"multipleChoiceAnswer": {"options": [2]}}},
            {"questionId": 105, "answerDetails": {"textQuestionAnswer": {"answer": "ES"}}},
            {"questionId": 106, "answerDetails": {"textQuestionAnswer": {"answer": ""}}},
            {"questionId": 108, "answerDetails": {"textQuestionAnswer": {"answer": "Example Corp"}}},
        ],
        "consentResponses": [{"consentId": 1, "accepted": True}, {"consentId": 2, "accepted": False}],
    },
}

LI_FORMS = [
    {
        "id": 9000001,
        "versionId": 1,
        "name": "Demo request",
        "content": {"questions": [{"questionId": 101, "name": "givenName", "predefinedField": "FIRST_NAME"}]},
    },
    {
        "id": 9000001,
        "versionId": 2,
        "name": "Demo request",
        "content": {
            "questions": [
                {"questionId": 101, "name": "firstName", "predefinedField": "FIRST_NAME"},
                {"questionId": 102, "name": "lastName", "predefinedField": "LAST_NAME"},
                {"questionId": 103, "name": "email", "predefinedField": "EMAIL"},
                {
                    "questionId": 104,
                    "name": "companySize",
                    "questionDetails": {
                        "multipleChoiceQuestionDetails": {
                            "options": [
                                {"id": 1, "text": {"localized": {"en_US": "1-50"}}},
                                {"id": 2, "text": {"localized": {"en_US": "51-200"}}},
                            ]
                        }
                    },
                },
                {"questionId": 105, "name": "country", "predefinedField": "COUNTRY"},
                {"questionId": 106, "name": "jobTitle", "predefinedField": "JOB_TITLE"},
                {"questionId": 107, "name": "phone", "predefinedField": "PHONE_NUMBER"},
                {"questionId": 108, "name": "company", "predefinedField": "COMPANY_NAME"},
            ]
        },
    },
]


def meta_lead(lead_id: str, created: datetime, **extra: object) -> dict:
    return {
        "id": lead_id,
        "created_time": created.strftime("%Y-%m-%dT%H:%M:%S+0000"),
        "form_id": META_FORM,
        "ad_id": "23850000000000001",
        "campaign_id": "23850000000000003",
        "is_organic": False,
        "platform": "fb",
        "field_data": [{"name": "email", "values": [f"{lead_id}@example.com"]}],
        **extra,
    }


META_ORGANIC_LEAD = {
    "id": "1200000000000099",
    "created_time": (NOW - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%S+0000"),
    "form_id": META_FORM,
    "is_organic": True,
    "platform": "ig",
    "field_data": [
        {"name": "email", "values": ["bo@example.org"]},
        {"name": "full_name", "values": ["Bo Berg "]},
        {"name": "phone_number", "values": ["+4915100000000"]},
        {"name": "company_name", "values": ["Sample Org"]},
        {"name": "job_title", "values": [""]},
        {"name": "team_size", "values": ["mid"]},
        {"name": "what_is_your_budget?", "values": ["10k"]},
    ],
    "custom_disclaimer_responses": [{"checkbox_key": "optin", "is_checked": "1"}],
}

META_QUESTIONS = [
    {"key": "email", "label": "Email", "type": "EMAIL"},
    {"key": "full_name", "label": "Full name", "type": "FULL_NAME"},
    {"key": "team_size", "label": "Team size", "type": "CUSTOM", "options": [{"key": "small", "value": "1-50"}, {"key": "mid", "value": "51-200"}]},
]

PERSON = {
    "id": "p-0001",
    "email": "ana@example.com",
    "geo": {"country": "Spain"},
    "employment": {"domain": "example.com", "name": "Example Corp", "title": "Head of Operations"},
}
COMPANY = {
    "id": "c-0001",
    "name": "Example Corp",
    "domain": "example.com",
    "category": {"industry": "Software"},
    "metrics": {"employees": 120},
    "geo": {"country": "Germany"},
}


def scenario() -> dict:
    li_leads = [
        li_lead("lead-1", NOW - timedelta(minutes=50)),
        li_lead("lead-2", NOW - timedelta(minutes=40), form=FORM_URN_V1),
        li_lead("lead-3", NOW - timedelta(minutes=30)),
        li_lead("lead-4", NOW - timedelta(minutes=20)),
        LI_FULL_LEAD,
        li_lead("test-1", NOW - timedelta(minutes=15), test=True),
        # Exactly on the window bounds: the start is inside, the end is not.
        li_lead("at-start", WINDOW_START),
        li_lead("before-window", WINDOW_START - timedelta(milliseconds=1)),
    ]
    meta_leads = [
        meta_lead("1200000000000001", NOW - timedelta(minutes=50)),
        meta_lead("1200000000000002", NOW - timedelta(minutes=40)),
        meta_lead("1200000000000003", NOW - timedelta(minutes=30)),
        meta_lead("1200000000000004", NOW - timedelta(minutes=20)),
        META_ORGANIC_LEAD,
        meta_lead("1200000000000005", WINDOW_START),
        meta_lead("1200000000000006", WINDOW_START - timedelta(seconds=1)),
    ]
    return {
        "format": 1,
        "settings": {
            "linkedin": {"max_count": 3},
            "meta": {"max_limit": 3, "reduce_data_limit": 3},
            "enrichment": {"per_minute": 100},
        },
        "enrichment": {
            "api_key": ENRICH_KEY,
            "people": [{"email": "ana@example.com", "person": PERSON, "company": COMPANY, "pending_first": True}],
            "companies": [{"domain": "example.com", "company": COMPANY}],
        },
        "accounts": [
            {
                "account_id": "northwind",
                "linkedin": {"access_token": LI_TOKEN, "sponsored_account_id": LI_ACCOUNT, "forms": LI_FORMS, "leads": li_leads},
                "meta": {
                    "access_token": META_TOKEN,
                    "page_id": "100000000000001",
                    "forms": [{"id": META_FORM, "name": "Demo request", "questions": META_QUESTIONS}],
                    "leads": meta_leads,
                },
            }
        ],
    }


LI_REAL_IDS = ["7f3c2a10-0000-4e5b-9a11-2b7c9d000001-3", "lead-4", "lead-3", "lead-2", "lead-1", "at-start"]
META_IDS = ["1200000000000099", "1200000000000004", "1200000000000003", "1200000000000002", "1200000000000001", "1200000000000005"]


# -- fixtures and helpers -----------------------------------------------------------


class RecordingPolicy(RetryPolicy):
    """Retry policy that records its waits instead of sleeping."""

    def __init__(self, max_attempts: int = 4):
        self.waits: list[float] = []
        super().__init__(max_attempts=max_attempts, base_delay=0.01, max_delay=60.0, sleep=self.waits.append)


def serve_one(module) -> tuple[Sandbox, str]:
    sandbox = Sandbox(scenario(), Clock(NOW))
    app = module.create_app(sandbox)
    sandbox.add_app(app)
    return sandbox, sandbox.serve({app.name: 0})[app.name]


@pytest.fixture
def li_url():
    sandbox, url = serve_one(linkedin)
    yield url
    sandbox.stop()


@pytest.fixture
def meta_url():
    sandbox, url = serve_one(meta)
    yield url
    sandbox.stop()


@pytest.fixture
def enrich_url():
    sandbox, url = serve_one(enrichment)
    yield url
    sandbox.stop()


def recorded(url: str, path_part: str) -> list[dict]:
    return [r for r in requests.get(f"{url}/_sandbox/requests", timeout=5).json() if path_part in r["path"]]


def add_fault(url: str, rule: dict) -> None:
    response = requests.post(f"{url}/_sandbox/faults", json=rule, timeout=5)
    response.raise_for_status()


def li(url: str, policy: RetryPolicy | None = None, **extra: object) -> linkedin_client.LinkedInClient:
    config = ClientConfig(base_url=url, password=LI_TOKEN, extra={"page_size": 2, **extra})
    return linkedin_client.LinkedInClient(config, policy or RecordingPolicy())


def fb(url: str, policy: RetryPolicy | None = None, **extra: object) -> meta_client.MetaLeadsClient:
    config = ClientConfig(base_url=url, password=META_TOKEN, extra={"page_size": 2, **extra})
    return meta_client.MetaLeadsClient(config, policy or RecordingPolicy())


def enricher(url: str, policy: RetryPolicy | None = None, **extra: object) -> enrichment_client.EnrichmentClient:
    config = ClientConfig(base_url=url, password=ENRICH_KEY, extra={"pending_wait_seconds": 0.5, **extra})
    return enrichment_client.EnrichmentClient(config, policy or RecordingPolicy())


# -- LinkedIn client -----------------------------------------------------------------


def test_linkedin_pages_return_exact_ids(li_url):
    ids = [e["id"] for e in li(li_url).iter_leads(LI_ACCOUNT, WINDOW_START, WINDOW_END)]
    assert ids == LI_REAL_IDS
    # The fourth page holds only the lead 1 ms before the window, which the
    # widened server range returns and the client drops.
    assert len(recorded(li_url, "/rest/leadFormResponses")) == 4


def test_linkedin_raw_query_encoding(li_url):
    list(li(li_url).iter_leads(LI_ACCOUNT, WINDOW_START, WINDOW_END))
    first = recorded(li_url, "/rest/leadFormResponses")[0]
    assert first["query"] == (
        "q=owner&owner=(sponsoredAccount:urn%3Ali%3AsponsoredAccount%3A500000001)"
        "&leadType=(leadType:SPONSORED)&limitedToTestLeads=false"
        f"&submittedAtTimeRange=(start:{ms(WINDOW_START) - 1},end:{ms(WINDOW_END)})&start=0&count=2"
    )
    assert first["headers"]["linkedin-version"] == "202601"
    assert first["headers"]["x-restli-protocol-version"] == "2.0.0"


def test_linkedin_server_cap_is_not_end(li_url):
    # The sandbox caps count at 3, so a page of 3 after asking for 5 is full.
    ids = [e["id"] for e in li(li_url, page_size=5).iter_leads(LI_ACCOUNT, WINDOW_START, WINDOW_END)]
    assert ids == LI_REAL_IDS
    assert len(recorded(li_url, "/rest/leadFormResponses")) == 3


def test_linkedin_include_test_second_pass(li_url):
    ids = [e["id"] for e in li(li_url).iter_leads(LI_ACCOUNT, WINDOW_START, WINDOW_END, include_test=True)]
    assert ids == [*LI_REAL_IDS, "test-1"]
    queries = [r["query"] for r in recorded(li_url, "/rest/leadFormResponses")]
    assert "limitedToTestLeads=true" in queries[-1]


def test_linkedin_retries_throttle_then_succeeds(li_url):
    add_fault(li_url, {"kind": "throttle", "times": 2})
    policy = RecordingPolicy()
    ids = [e["id"] for e in li(li_url, policy).iter_leads(LI_ACCOUNT, WINDOW_START, WINDOW_END)]
    assert ids == LI_REAL_IDS
    assert len(recorded(li_url, "/rest/leadFormResponses")) == 6
    assert len(policy.waits) == 2


def test_linkedin_throttle_exhausts_attempts(li_url):
    add_fault(li_url, {"kind": "throttle", "times": 0})
    with pytest.raises(Throttled) as caught:
        list(li(li_url, RecordingPolicy(max_attempts=3)).iter_leads(LI_ACCOUNT, WINDOW_START, WINDOW_END))
    assert caught.value.status == 429
    assert caught.value.retry_after is None
    assert len(recorded(li_url, "/rest/leadFormResponses")) == 3


def test_linkedin_malformed_json_retried(li_url):
    add_fault(li_url, {"kind": "malformed", "times": 1, "skip": 1})
    policy = RecordingPolicy()
    ids = [e["id"] for e in li(li_url, policy).iter_leads(LI_ACCOUNT, WINDOW_START, WINDOW_END)]
    assert ids == LI_REAL_IDS
    assert len(recorded(li_url, "/rest/leadFormResponses")) == 5
    assert len(policy.waits) == 1


def test_linkedin_dropped_connection_retried(li_url):
    add_fault(li_url, {"kind": "drop", "times": 1})
    ids = [e["id"] for e in li(li_url).iter_leads(LI_ACCOUNT, WINDOW_START, WINDOW_END)]
    assert ids == LI_REAL_IDS


def test_linkedin_rejected_token_is_permanent(li_url):
    config = ClientConfig(base_url=li_url, password="revoked", extra={"conn_id": "linkedin_northwind"})
    client = linkedin_client.LinkedInClient(config, RecordingPolicy())
    with pytest.raises(PermanentError) as caught:
        list(client.iter_leads(LI_ACCOUNT, WINDOW_START, WINDOW_END))
    assert caught.value.status == 401
    assert "linkedin_northwind" in str(caught.value)
    assert "revoked" not in str(caught.value)
    assert len(recorded(li_url, "/rest/leadFormResponses")) == 1


def test_linkedin_sunset_version_is_permanent(li_url):
    with pytest.raises(PermanentError) as caught:
        list(li(li_url, linkedin_version="202301").iter_leads(LI_ACCOUNT, WINDOW_START, WINDOW_END))
    assert caught.value.status == 426
    assert "linkedin_version" in str(caught.value)


def test_linkedin_naive_datetime_rejected(li_url):
    with pytest.raises(ValueError):
        li(li_url).iter_leads(LI_ACCOUNT, datetime(2026, 1, 1), WINDOW_END)
    assert recorded(li_url, "/rest/leadFormResponses") == []


def test_meta_naive_datetime_rejected(meta_url):
    with pytest.raises(ValueError):
        fb(meta_url).iter_leads(META_FORM, WINDOW_START, datetime(2026, 1, 1, 12))
    assert recorded(meta_url, "/leads") == []


def test_linkedin_form_versions_cached(li_url):
    client = li(li_url)
    v2 = client.get_form(FORM_URN_V2)
    again = client.get_form(FORM_URN_V2)
    v1 = client.get_form(FORM_URN_V1)

    assert again is v2
    assert v2["versionId"] == 2
    assert v1["content"]["questions"][0]["name"] == "givenName"
    calls = recorded(li_url, "/rest/leadForms")
    assert [(c["path"], c["query"]) for c in calls] == [
        ("/rest/leadForms/9000001", "versionId=2"),
        ("/rest/leadForms/9000001", "versionId=1"),
    ]


def test_linkedin_to_common_values(li_url):
    client = li(li_url)
    element = next(e for e in client.iter_leads(LI_ACCOUNT, WINDOW_START, WINDOW_END) if e["id"] == LI_FULL_LEAD["id"])
    record = linkedin_client.to_common(element, client.get_form(element["versionedLeadGenFormUrn"]))

    assert record["source"] == "linkedin"
    assert record["source_lead_id"] == "7f3c2a10-0000-4e5b-9a11-2b7c9d000001-3"
    assert record["submitted_at"] == NOW - timedelta(minutes=5) + timedelta(milliseconds=345)
    assert record["submitted_at"].tzinfo is not None
    assert record["form_id"] == "9000001"
    assert record["campaign_ref"] == "urn:li:sponsoredCampaign:300000001"
    assert record["is_test"] is False
    assert record["fields"] == {
        "first_name": " Ana ",
        "last_name": "Lopez",
        "email": "ana@example.com",
        "country": "ES",
        "job_title": "",
        "company": "Example Corp",
    }
    assert record["answers"] == {
        "firstName": " Ana ",
        "lastName": "Lopez",
        "email": "ana@example.com",
        "companySize": ["51-200"],
        "country": "ES",
        "jobTitle": "",
        "company": "Example Corp",
    }
    assert record["consent"] is False


def test_linkedin_to_common_uses_form_version(li_url):
    client = li(li_url)
    element = next(e for e in client.iter_leads(LI_ACCOUNT, WINDOW_START, WINDOW_END) if e["id"] == "lead-2")
    record = linkedin_client.to_common(element, client.get_form(element["versionedLeadGenFormUrn"]))
    assert record["answers"] == {"givenName": "Ana"}
    assert record["fields"] == {"first_name": "Ana"}
    assert record["consent"] is None
    assert record["campaign_ref"] is None


def test_linkedin_to_common_test_lead(li_url):
    client = li(li_url)
    element = list(client.iter_leads(LI_ACCOUNT, WINDOW_START, WINDOW_END, include_test=True))[-1]
    record = linkedin_client.to_common(element, client.get_form(element["versionedLeadGenFormUrn"]))
    assert record["is_test"] is True


# -- Meta client ----------------------------------------------------------------------


def test_meta_pages_return_exact_ids(meta_url):
    ids = [lead["id"] for lead in fb(meta_url).iter_leads(META_FORM, WINDOW_START, WINDOW_END)]
    assert ids == META_IDS
    calls = recorded(meta_url, "/leads")
    assert len(calls) == 3
    assert "fields=id%2Ccreated_time%2Cad_id" in calls[0]["query"]
    assert "filtering=" in calls[0]["query"]


def test_meta_halves_limit_on_reduce_data(meta_url):
    ids = [lead["id"] for lead in fb(meta_url, page_size=4).iter_leads(META_FORM, WINDOW_START, WINDOW_END)]
    assert ids == META_IDS
    limits = [r["query"].split("limit=")[1].split("&")[0] for r in recorded(meta_url, "/leads")]
    assert limits == ["4", "2", "2", "2"]


def test_meta_throttle_uses_regain_time(meta_url):
    add_fault(meta_url, {"kind": "throttle", "times": 2})
    policy = RecordingPolicy()
    ids = [lead["id"] for lead in fb(meta_url, policy).iter_leads(META_FORM, WINDOW_START, WINDOW_END)]
    assert ids == META_IDS
    assert policy.waits == [60.0, 60.0]
    assert len(recorded(meta_url, "/leads")) == 5


def test_meta_malformed_json_retried(meta_url):
    add_fault(meta_url, {"kind": "malformed", "times": 1})
    ids = [lead["id"] for lead in fb(meta_url).iter_leads(META_FORM, WINDOW_START, WINDOW_END)]
    assert ids == META_IDS
    assert len(recorded(meta_url, "/leads")) == 4


def test_meta_invalid_token_is_permanent(meta_url):
    config = ClientConfig(base_url=meta_url, password="expired", extra={"conn_id": "meta_northwind"})
    with pytest.raises(PermanentError) as caught:
        list(meta_client.MetaLeadsClient(config, RecordingPolicy()).iter_leads(META_FORM, WINDOW_START, WINDOW_END))
    assert caught.value.code == "190"
    assert "meta_northwind" in str(caught.value)
    assert len(recorded(meta_url, "/leads")) == 1


def test_meta_questions_cached(meta_url):
    client = fb(meta_url)
    first = client.get_form_questions(META_FORM)
    second = client.get_form_questions(META_FORM)
    assert first == META_QUESTIONS
    assert second is first
    assert len(recorded(meta_url, META_FORM)) == 1


def test_meta_to_common_values(meta_url):
    client = fb(meta_url)
    lead = next(item for item in client.iter_leads(META_FORM, WINDOW_START, WINDOW_END) if item["id"] == META_ORGANIC_LEAD["id"])
    record = meta_client.to_common(lead, client.get_form_questions(META_FORM))

    assert record["source"] == "meta"
    assert record["source_lead_id"] == "1200000000000099"
    assert record["submitted_at"] == NOW - timedelta(minutes=3)
    assert record["form_id"] == META_FORM
    assert record["campaign_ref"] is None
    assert record["is_test"] is False
    assert record["fields"] == {
        "email": "bo@example.org",
        "full_name": "Bo Berg ",
        "phone": "+4915100000000",
        "company": "Sample Org",
        "job_title": "",
    }
    assert record["answers"] == {
        "email": "bo@example.org",
        "full_name": "Bo Berg ",
        "phone_number": "+4915100000000",
        "company_name": "Sample Org",
        "job_title": "",
        "team_size": ["51-200"],
        "what_is_your_budget?": "10k",
    }
    assert record["consent"] is True


def test_meta_to_common_paid_lead(meta_url):
    client = fb(meta_url)
    lead = next(item for item in client.iter_leads(META_FORM, WINDOW_START, WINDOW_END) if item["id"] == "1200000000000004")
    record = meta_client.to_common(lead, client.get_form_questions(META_FORM))
    assert record["campaign_ref"] == "23850000000000003"
    assert record["consent"] is None
    assert record["fields"] == {"email": "1200000000000004@example.com"}


# -- enrichment client --------------------------------------------------------------


def test_enrichment_pending_then_matched(enrich_url):
    policy = RecordingPolicy()
    result = enricher(enrich_url, policy).lookup("ana@example.com")

    assert result.status == "matched"
    assert result.person == PERSON
    assert result.company_data == COMPANY
    assert result.company == "Example Corp"
    assert result.company_domain == "example.com"
    assert result.job_title == "Head of Operations"
    assert result.industry == "Software"
    assert result.employees == 120
    assert result.country == "Spain"
    assert policy.waits == [0.5]
    assert len(recorded(enrich_url, "/v2/combined/find")) == 2


def test_enrichment_pending_after_retries(enrich_url):
    result = enricher(enrich_url, pending_retries=0).lookup("ana@example.com")
    assert result.status == "pending"
    assert result.person is None
    assert len(recorded(enrich_url, "/v2/combined/find")) == 1


def test_enrichment_company_only(enrich_url):
    result = enricher(enrich_url).lookup("someone@example.com")
    assert result.status == "company_only"
    assert result.person is None
    assert result.company_data == COMPANY
    assert result.company == "Example Corp"
    assert result.job_title is None
    assert result.employees == 120
    assert result.country == "Germany"


def test_enrichment_no_match(enrich_url):
    result = enricher(enrich_url).lookup("nobody@unknown.example")
    assert result.status == "no_match"
    assert result.company_data is None
    assert result.company is None
    assert result.employees is None


def test_enrichment_throttle_retried(enrich_url):
    add_fault(enrich_url, {"kind": "throttle", "times": 2})
    policy = RecordingPolicy()
    result = enricher(enrich_url, policy).lookup("someone@example.com")
    assert result.status == "company_only"
    assert len(policy.waits) == 2
    assert len(recorded(enrich_url, "/v2/combined/find")) == 3


def test_enrichment_malformed_json_retried(enrich_url):
    add_fault(enrich_url, {"kind": "malformed", "times": 1})
    result = enricher(enrich_url).lookup("someone@example.com")
    assert result.status == "company_only"
    assert len(recorded(enrich_url, "/v2/combined/find")) == 2


def test_enrichment_invalid_key_is_permanent(enrich_url):
    config = ClientConfig(base_url=enrich_url, password="sk_wrong")
    with pytest.raises(PermanentError) as caught:
        enrichment_client.EnrichmentClient(config, RecordingPolicy()).lookup("someone@example.com")
    assert caught.value.status == 401
    assert caught.value.code == "invalid_api_key"


def test_enrichment_rate_limit_reset_hint():
    # Freeze the sandbox 10 s ahead of real time, so the window's reset lies
    # about 10 to 70 s after the client reads it.
    frozen = datetime.now(UTC) + timedelta(seconds=10)
    data = scenario()
    data["settings"]["enrichment"]["per_minute"] = 1
    sandbox = Sandbox(data, Clock(frozen))
    sandbox.add_app(enrichment.create_app(sandbox))
    url = sandbox.serve({"enrichment": 0})["enrichment"]
    try:
        client = enricher(url, RecordingPolicy(max_attempts=1))
        assert client.lookup("someone@example.com").status == "company_only"
        with pytest.raises(Throttled) as caught:
            client.lookup("someone@example.com")
        assert caught.value.retry_after is not None
        assert 5 <= caught.value.retry_after <= 70
    finally:
        sandbox.stop()
