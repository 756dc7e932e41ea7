"""Tests of the scenario format checks and of the committed, generated scenarios."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox.scenario import ScenarioError, load, validate

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
GENERATOR = SCENARIOS / "generate.py"

FREE_MAIL_DOMAINS = {"gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "mail.ru", "qq.com", "163.com"}
DISPOSABLE_DOMAINS = {"mailinator.com", "guerrillamail.com", "yopmail.com", "trashmail.com", "10minutemail.com"}
HARD_CASES = (
    "cross_source_duplicate",
    "personal_and_work_email",
    "personal_email_only",
    "non_latin_name",
    "test_lead_excluded",
    "test_lead_included",
    "spam_disposable_domain",
    "spam_gibberish_name",
    "spam_honeypot",
    "malformed_email_missing",
    "malformed_email_invalid",
    "malformed_email_non_ascii",
    "malformed_email_empty",
    "malformed_company_too_long",
    "malformed_first_name_too_long",
    "malformed_phone_invalid",
)
SCRIPTS = {
    "chinese": re.compile(r"[\u4e00-\u9fff]"),
    "cyrillic": re.compile(r"[\u0400-\u04ff]"),
    "arabic": re.compile(r"[\u0600-\u06ff]"),
    "greek": re.compile(r"[\u0370-\u03ff]"),
}
LINKEDIN_FIELDS = {
    "FIRST_NAME": "first_name",
    "LAST_NAME": "last_name",
    "EMAIL": "email",
    "WORK_EMAIL": "work_email",
    "COMPANY_NAME": "company",
    "JOB_TITLE": "job_title",
    "PHONE_NUMBER": "phone",
}
META_FIELDS = {"phone_number": "phone", "company_name": "company"}
URN = re.compile(r"urn:li:leadGenForm:(\d+),(\d+)\)$")


@pytest.fixture(scope="module")
def default_scenario() -> dict[str, Any]:
    return load(SCENARIOS / "default.json")


@pytest.fixture(scope="module")
def small_scenario() -> dict[str, Any]:
    return load(SCENARIOS / "small.json")


# --------------------------------------------------------------------------- helpers


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00").replace("+0000", "+00:00")).astimezone(UTC)


def lead_records(scenario: dict[str, Any]) -> list[tuple[dict[str, Any], str, dict[str, Any]]]:
    """Every lead of every account as (account, source, record)."""
    records = []
    for account in scenario["accounts"]:
        for record in account.get("linkedin", {}).get("leads", []):
            records.append((account, "linkedin", record))
        for record in account.get("meta", {}).get("leads", []):
            records.append((account, "meta", record))
        for record in account.get("pixel", {}).get("submissions", []):
            records.append((account, "pixel", record))
    return records


def submitted_at(source: str, record: dict[str, Any]) -> datetime:
    if source == "linkedin":
        return datetime.fromtimestamp(record["submittedAt"] / 1000, tz=UTC)
    if source == "meta":
        return instant(record["created_time"])
    return instant(record["submitted_at"])


def lead_fields(account: dict[str, Any], source: str, record: dict[str, Any]) -> dict[str, str]:
    """Answers of one lead under common names (email, work_email, first_name, company, phone, website...)."""
    if source == "pixel":
        return dict(record["fields"])
    if source == "meta":
        return {
            META_FIELDS.get(item["name"], item["name"]): (item["values"] or [""])[0] for item in record["field_data"]
        }
    form_id, version = (int(part) for part in URN.search(record["versionedLeadGenFormUrn"]).groups())
    form = next(f for f in account["linkedin"]["forms"] if (f["id"], f["versionId"]) == (form_id, version))
    predefined = {q["questionId"]: q.get("predefinedField") for q in form["content"]["questions"]}
    fields = {}
    for answer in record["formResponse"]["answers"]:
        text = answer["answerDetails"].get("textQuestionAnswer")
        name = LINKEDIN_FIELDS.get(predefined.get(answer["questionId"]) or "")
        if name and text is not None:
            fields[name] = text["answer"]
    return fields


def all_fields(scenario: dict[str, Any]) -> list[tuple[dict[str, Any], str, dict[str, str]]]:
    return [
        (account, source, lead_fields(account, source, record)) for account, source, record in lead_records(scenario)
    ]


def record_ref(source: str, record: dict[str, Any]) -> str:
    if source == "pixel":
        return f"pixel:{record['submitted_at']}"
    return f"{source}:{record['id']}"


def run_generator(out: Path, *flags: str) -> None:
    subprocess.run(
        [sys.executable, str(GENERATOR), *flags, "--out", str(out)], check=True, cwd=ROOT, capture_output=True
    )


# --------------------------------------------------------------------------- committed files


@pytest.mark.parametrize("file_name", ["default.json", "small.json"])
def test_committed_scenario_validates(file_name: str) -> None:
    scenario = load(SCENARIOS / file_name)
    validate(scenario)


@pytest.mark.parametrize(("file_name", "flags"), [("default.json", ()), ("small.json", ("--small",))])
def test_regeneration_is_byte_identical(tmp_path: Path, file_name: str, flags: tuple[str, ...]) -> None:
    out = tmp_path / file_name
    run_generator(out, *flags)
    assert out.read_bytes() == (SCENARIOS / file_name).read_bytes()


def test_other_seed_changes_output(tmp_path: Path) -> None:
    out = tmp_path / "small.json"
    run_generator(out, "--small", "--seed", "8")
    assert out.read_bytes() != (SCENARIOS / "small.json").read_bytes()
    validate(json.loads(out.read_text(encoding="utf-8")))


# --------------------------------------------------------------------------- default scenario


def test_default_counts(default_scenario: dict[str, Any]) -> None:
    accounts = default_scenario["accounts"]
    assert len(lead_records(default_scenario)) >= 1000
    assert sum(account["active"] for account in accounts) >= 5
    assert [account["account_id"] for account in accounts if not account["active"]] == ["tundra"]


def test_default_windows_and_clock(default_scenario: dict[str, Any]) -> None:
    assert default_scenario["windows"] == {"start": "2026-11-29T23:00:00Z", "count": 6, "minutes": 15}
    assert default_scenario["clock"] == {"frozen_at": "2026-11-30T00:30:00Z"}


@pytest.mark.parametrize(
    ("account_id", "map_type", "push_before_verification", "policy", "custom_fields", "sources"),
    [
        ("northwind", "marketo", False, "hold", ["leadStatus"], {"linkedin", "meta", "pixel"}),
        ("helios", "hubspot", True, "push_unverified", ["hs_lead_status", "lifecyclestage"], {"linkedin", "pixel"}),
        ("kestrel", "marketo", True, "hold", ["leadStatus", "rating"], {"meta", "linkedin"}),
        ("orbit", "hubspot", False, "push_unverified", [], {"linkedin", "meta"}),
        ("juniper", "marketo", False, "hold", ["leadStatus"], {"linkedin", "meta", "pixel"}),
        ("tundra", "marketo", False, "hold", [], {"linkedin"}),
    ],
)
def test_default_account_settings(
    default_scenario: dict[str, Any],
    account_id: str,
    map_type: str,
    push_before_verification: bool,
    policy: str,
    custom_fields: list[str],
    sources: set[str],
) -> None:
    account = next(a for a in default_scenario["accounts"] if a["account_id"] == account_id)
    settings = account["settings"]
    assert account["map"]["type"] == map_type
    assert settings["push_before_verification"] is push_before_verification
    assert settings["review_deadline_policy"] == policy
    assert settings["custom_pull_fields"] == custom_fields
    assert {source for source in ("linkedin", "meta", "pixel") if source in account} == sources
    if account_id == "kestrel":
        assert settings["include_test_leads"] is True
    if account_id == "juniper":
        assert settings["attribution"] == {"triggered_window_days": 60, "influenced_window_days": 180}
    if account["active"]:
        assert account["crm"]["type"] == "salesforce"


@pytest.mark.parametrize("fixture_name", ["default_scenario", "small_scenario"])
def test_submissions_inside_windows(request: pytest.FixtureRequest, fixture_name: str) -> None:
    scenario = request.getfixturevalue(fixture_name)
    start = instant(scenario["windows"]["start"])
    end = start + timedelta(minutes=scenario["windows"]["count"] * scenario["windows"]["minutes"])
    outside = [
        record_ref(source, record)
        for _, source, record in lead_records(scenario)
        if not start <= submitted_at(source, record) < end
    ]
    assert outside == []


def test_default_same_millisecond_and_boundary_leads(default_scenario: dict[str, Any]) -> None:
    start = instant(default_scenario["windows"]["start"])
    window_ends = [start + timedelta(minutes=15 * (i + 1)) for i in range(6)]
    shared = Counter(
        (account["account_id"], record["submittedAt"])
        for account, source, record in lead_records(default_scenario)
        if source == "linkedin"
    )
    near_end = [
        record
        for _, source, record in lead_records(default_scenario)
        if any(end - timedelta(minutes=2) <= submitted_at(source, record) < end for end in window_ends)
    ]
    assert sum(count >= 3 for count in shared.values()) >= 3
    assert len(near_end) >= 5


def test_default_linkedin_forms_have_two_versions(default_scenario: dict[str, Any]) -> None:
    for account in default_scenario["accounts"]:
        if "linkedin" not in account:
            continue
        forms = account["linkedin"]["forms"]
        versions = Counter(form["id"] for form in forms)
        question_sets = {
            (form["id"], form["versionId"]): {q["questionId"] for q in form["content"]["questions"]} for form in forms
        }
        used = {URN.search(lead["versionedLeadGenFormUrn"]).groups() for lead in account["linkedin"]["leads"]}
        two_version_forms = [form_id for form_id, count in versions.items() if count == 2]
        assert two_version_forms, account["account_id"]
        form_id = two_version_forms[0]
        assert question_sets[(form_id, 1)] != question_sets[(form_id, 2)]
        assert {(str(form_id), "1"), (str(form_id), "2")} <= used


def test_default_answer_shapes(default_scenario: dict[str, Any]) -> None:
    shapes = Counter(
        next(iter(answer["answerDetails"]))
        for _, source, record in lead_records(default_scenario)
        if source == "linkedin"
        for answer in record["formResponse"]["answers"]
    )
    meta = [record for _, source, record in lead_records(default_scenario) if source == "meta"]
    custom_keys = {item["name"] for record in meta for item in record["field_data"] if item["name"].endswith("?")}
    assert shapes["textQuestionAnswer"] > 0
    assert shapes["multipleChoiceAnswer"] > 0
    assert custom_keys
    assert sum(record["is_organic"] and "ad_id" not in record for record in meta) >= 5


def test_default_hard_cases_noted_five_times(default_scenario: dict[str, Any]) -> None:
    counts = Counter(note["case"] for note in default_scenario["notes"])
    too_few = {case: counts[case] for case in HARD_CASES if counts[case] < 5}
    assert too_few == {}


@pytest.mark.parametrize("fixture_name", ["default_scenario", "small_scenario"])
def test_note_refs_resolve(request: pytest.FixtureRequest, fixture_name: str) -> None:
    scenario = request.getfixturevalue(fixture_name)
    refs = {(account["account_id"], record_ref(source, record)) for account, source, record in lead_records(scenario)}
    missing = []
    for note in scenario["notes"]:
        for ref in note.get("refs", []):
            # A note about two accounts names the second account; its first ref may belong to another one.
            if not any((account["account_id"], ref) in refs for account in scenario["accounts"]):
                missing.append((note["case"], ref))
    assert missing == []


def test_default_hard_cases_in_data(default_scenario: dict[str, Any]) -> None:
    fields = all_fields(default_scenario)
    emails = [f.get("email") for _, _, f in fields]
    test_leads = Counter(
        account["settings"].get("include_test_leads", False)
        for account, source, record in lead_records(default_scenario)
        if source == "linkedin" and record.get("testLead")
    )
    assert test_leads[True] >= 5
    assert test_leads[False] >= 5
    assert sum(bool(f.get("website")) for _, _, f in fields) >= 5
    assert sum(e is not None and e.strip().rsplit("@", 1)[-1] in DISPOSABLE_DOMAINS for e in emails) >= 5
    assert sum(e == "" for e in emails) >= 5
    assert sum(e is None for e in emails) >= 5
    assert sum(e is not None and e != "" and "@" not in e for e in emails) >= 5
    assert sum(e is not None and not e.isascii() for e in emails) >= 5
    assert sum(len(f.get("company", "")) > 255 for _, _, f in fields) >= 5
    assert sum(len(f.get("first_name", "")) > 100 for _, _, f in fields) >= 5
    assert sum(bool(re.search("[A-Za-z]", f.get("phone", ""))) for _, _, f in fields) >= 5


def test_default_email_cases_in_data(default_scenario: dict[str, Any]) -> None:
    both = only_personal = 0
    sources_by_email: dict[tuple[str, str], set[str]] = {}
    raw_by_email: dict[tuple[str, str], set[str]] = {}
    for account, source, f in all_fields(default_scenario):
        email, work = f.get("email"), f.get("work_email")
        if not email or "@" not in email:
            continue
        free = email.strip().lower().rsplit("@", 1)[-1] in FREE_MAIL_DOMAINS
        if free and work and work != email:
            both += 1
        elif free and not work:
            only_personal += 1
        key = (account["account_id"], email.strip().lower())
        sources_by_email.setdefault(key, set()).add(source)
        raw_by_email.setdefault(key, set()).add(email)
    cross_source = [key for key, sources in sources_by_email.items() if len(sources) > 1 and len(raw_by_email[key]) > 1]
    assert both >= 5
    assert only_personal >= 5
    assert len(cross_source) >= 5


def test_default_non_latin_names(default_scenario: dict[str, Any]) -> None:
    names = [f.get("first_name", "") + " " + f.get("full_name", "") for _, _, f in all_fields(default_scenario)]
    counts = {script: sum(bool(pattern.search(name)) for name in names) for script, pattern in SCRIPTS.items()}
    assert all(count >= 1 for count in counts.values()), counts
    assert sum(counts.values()) >= 5


def test_default_enrichment_shares(default_scenario: dict[str, Any]) -> None:
    outcomes = Counter()
    for entry in default_scenario["expected"]:
        outcomes.update(entry["enrichment_outcomes"])
    total = sum(outcomes.values())
    people = outcomes["person"] + outcomes["person_pending_first"]
    enrichment = default_scenario["enrichment"]
    company_domains = {entry["domain"] for entry in enrichment["companies"]}
    assert 0.6 <= people / total <= 0.8
    assert 0.05 <= outcomes["person_pending_first"] / total <= 0.15
    assert 0.05 <= outcomes["company_only"] / total <= 0.15
    assert company_domains.isdisjoint(FREE_MAIL_DOMAINS)
    person = enrichment["people"][0]["person"]
    assert {"givenName", "familyName", "fullName"} <= set(person["name"])
    assert {"title", "name", "domain"} <= set(person["employment"])
    assert "country" in person["geo"]


def test_default_map_records(default_scenario: dict[str, Any]) -> None:
    incoming = {
        (account["account_id"], f["email"].strip().lower())
        for account, _, f in all_fields(default_scenario)
        if f.get("email")
    }
    marketo_duplicates = hubspot_uppercase = 0
    for account in default_scenario["accounts"]:
        if not account["active"]:
            continue
        config = account["map"]
        records = config.get("leads") or [contact["properties"] for contact in config.get("contacts", [])]
        emails = [record["email"] for record in records]
        overlap = {email.lower() for email in emails if (account["account_id"], email.lower()) in incoming}
        assert 25 <= len(records) <= 35, account["account_id"]
        assert len(overlap) >= 5, account["account_id"]
        if config["type"] == "marketo":
            assert config["score_field"] == "leadScore"
            assert config["mql_date_field"] == "mqlDate__c"
            assert {"leadStatus", "rating", "mqlDate__c"} <= {field["rest"]["name"] for field in config["fields"]}
            marketo_duplicates += any(count > 1 for count in Counter(emails).values())
        else:
            assert config["score_field"] == "hubspotscore"
            assert config["mql_date_field"] == "hs_lifecyclestage_marketingqualifiedlead_date"
            hubspot_uppercase += any(email != email.lower() for email in emails)
    assert marketo_duplicates >= 1
    assert hubspot_uppercase >= 1


def test_default_salesforce_orgs(default_scenario: dict[str, Any]) -> None:
    limit = datetime(2026, 12, 1, tzinfo=UTC)
    expected = {entry["account_id"]: entry for entry in default_scenario["expected"]}
    for account in default_scenario["accounts"]:
        if not account["active"]:
            continue
        crm = account["crm"]
        websites = [a.get("Website") or "" for a in crm["accounts"]]
        outcomes = Counter(o["outcome"] for o in expected[account["account_id"]]["opportunities"])
        assert all(instant(o["CreatedDate"]) <= limit for o in crm["opportunities"])
        assert any("gmail.com" in website for website in websites)
        assert {True, False} <= {role["IsPrimary"] for role in crm["contact_roles"]}
        assert any(lead["IsConverted"] and lead["ConvertedOpportunityId"] for lead in crm["leads"])
        assert any(contact["Email"] != contact["Email"].lower() for contact in crm["contacts"])
        assert outcomes["triggered"] >= 1
        assert outcomes["influenced"] >= 1
        assert outcomes["none"] >= 1


# --------------------------------------------------------------------------- small scenario


def test_small_shape(small_scenario: dict[str, Any]) -> None:
    accounts = small_scenario["accounts"]
    settings = {(a["map"]["type"], a["settings"]["push_before_verification"]) for a in accounts}
    assert small_scenario["windows"] == {"start": "2026-11-30T09:00:00Z", "count": 2, "minutes": 15}
    assert len(accounts) == 2
    assert all(account["active"] for account in accounts)
    assert settings == {("marketo", False), ("hubspot", True)}
    assert all({"linkedin", "meta", "pixel"} <= set(account) for account in accounts)
    assert 35 <= len(lead_records(small_scenario)) <= 50


def test_small_map_and_crm(small_scenario: dict[str, Any]) -> None:
    for account, entry in zip(small_scenario["accounts"], small_scenario["expected"], strict=True):
        config = account["map"]
        records = config.get("leads") or config.get("contacts")
        outcomes = sorted(o["outcome"] for o in entry["opportunities"])
        assert len(records) == 5
        assert outcomes == ["influenced", "none", "triggered"]
        if config["type"] == "marketo":
            emails = Counter(record["email"] for record in records)
            assert max(emails.values()) == 2


def test_small_has_every_hard_case(small_scenario: dict[str, Any]) -> None:
    cases = {note["case"] for note in small_scenario["notes"]}
    assert set(HARD_CASES) - cases == set()


def test_small_expected_matches_data(small_scenario: dict[str, Any]) -> None:
    records = lead_records(small_scenario)
    for account, entry in zip(small_scenario["accounts"], small_scenario["expected"], strict=True):
        refs = {record_ref(source, record) for a, source, record in records if a is account}
        quarantined = {item["ref"] for item in entry["quarantined"]}
        assert entry["account_id"] == account["account_id"]
        assert entry["leads_total"] == len(refs)
        assert quarantined <= refs
        assert entry["valid_leads"] + entry["quarantined_leads"] == entry["leads_total"]
        assert sum(entry["quarantine_reasons"].values()) == entry["quarantined_leads"]
        assert entry["distinct_people"] < entry["valid_leads"]
        assert entry["pushable_leads"] == entry["valid_leads"] - entry["spam_leads"] - (
            0 if account["settings"]["include_test_leads"] else entry["test_leads"]
        )


# --------------------------------------------------------------------------- validate() rejections


def test_validate_rejects_duplicate_account_id(small_scenario: dict[str, Any]) -> None:
    scenario = copy.deepcopy(small_scenario)
    duplicate = copy.deepcopy(scenario["accounts"][0])
    duplicate.pop("pixel")
    scenario["accounts"].append(duplicate)
    with pytest.raises(ScenarioError) as raised:
        validate(scenario)
    assert "$.accounts[2].account_id" in str(raised.value)
    assert "duplicate account_id" in str(raised.value)


def test_validate_rejects_missing_form_version(small_scenario: dict[str, Any]) -> None:
    scenario = copy.deepcopy(small_scenario)
    lead = scenario["accounts"][0]["linkedin"]["leads"][0]
    lead["versionedLeadGenFormUrn"] = re.sub(r",\d+\)$", ",9)", lead["versionedLeadGenFormUrn"])
    with pytest.raises(ScenarioError) as raised:
        validate(scenario)
    assert "$.accounts[0].linkedin.leads[0].versionedLeadGenFormUrn" in str(raised.value)
    assert "version 9" in str(raised.value)


def break_meta_form(scenario: dict[str, Any]) -> None:
    scenario["accounts"][0]["meta"]["leads"][1]["form_id"] = "999"


def share_site_key(scenario: dict[str, Any]) -> None:
    scenario["accounts"][1]["pixel"]["site_key"] = scenario["accounts"][0]["pixel"]["site_key"]


def break_contact_role(scenario: dict[str, Any]) -> None:
    scenario["accounts"][1]["crm"]["contact_roles"][0]["ContactId"] = "003ZZ0000000099AAA"


def break_opportunity_account(scenario: dict[str, Any]) -> None:
    scenario["accounts"][0]["crm"]["opportunities"][2]["AccountId"] = "001ZZ0000000099AAA"


def duplicate_linkedin_lead(scenario: dict[str, Any]) -> None:
    leads = scenario["accounts"][0]["linkedin"]["leads"]
    leads[3]["id"] = leads[0]["id"]


def bad_account_id(scenario: dict[str, Any]) -> None:
    scenario["accounts"][1]["account_id"] = "Birch-Payroll"


def bad_policy(scenario: dict[str, Any]) -> None:
    scenario["accounts"][0]["settings"]["review_deadline_policy"] = "drop"


def bad_map_type(scenario: dict[str, Any]) -> None:
    scenario["accounts"][0]["map"]["type"] = "pardot"


def missing_marketo_secret(scenario: dict[str, Any]) -> None:
    del scenario["accounts"][0]["map"]["client_secret"]


def hubspot_key_on_marketo(scenario: dict[str, Any]) -> None:
    scenario["accounts"][0]["map"]["access_token"] = "pat-na1-0000"


def unknown_top_level_key(scenario: dict[str, Any]) -> None:
    scenario["vendors"] = {}


def unknown_setting(scenario: dict[str, Any]) -> None:
    scenario["accounts"][1]["settings"]["push_after_review"] = True


def bad_frozen_at(scenario: dict[str, Any]) -> None:
    scenario["clock"]["frozen_at"] = "2026-13-30T09:30:00Z"


def undescribed_marketo_field(scenario: dict[str, Any]) -> None:
    scenario["accounts"][0]["map"]["field_map"]["job_title"] = "jobTitle"


@pytest.mark.parametrize(
    ("mutate", "path", "words"),
    [
        (break_meta_form, "$.accounts[0].meta.leads[1].form_id", "is not in"),
        (share_site_key, "$.accounts[1].pixel.site_key", "duplicate pixel site_key"),
        (break_contact_role, "$.accounts[1].crm.contact_roles[0].ContactId", "is not an Id"),
        (break_opportunity_account, "$.accounts[0].crm.opportunities[2].AccountId", "is not an Id"),
        (duplicate_linkedin_lead, "$.accounts[0].linkedin.leads[3].id", "duplicate LinkedIn lead id"),
        (bad_account_id, "$.accounts[1].account_id", "does not match"),
        (bad_policy, "$.accounts[0].settings.review_deadline_policy", "is not one of"),
        (bad_map_type, "$.accounts[0].map.type", "is not one of"),
        (missing_marketo_secret, "$.accounts[0].map", "'client_secret' is a required property"),
        (hubspot_key_on_marketo, "$.accounts[0].map", "access_token"),
        (unknown_top_level_key, "$", "'vendors' was unexpected"),
        (unknown_setting, "$.accounts[1].settings", "'push_after_review' was unexpected"),
        (bad_frozen_at, "$.clock.frozen_at", "is not a 'date-time'"),
        (undescribed_marketo_field, "$.accounts[0].map.field_map.job_title", "is not in"),
    ],
    ids=lambda value: value.__name__ if callable(value) else None,
)
def test_validate_rejects(small_scenario: dict[str, Any], mutate: Any, path: str, words: str) -> None:
    scenario = copy.deepcopy(small_scenario)
    mutate(scenario)
    with pytest.raises(ScenarioError) as raised:
        validate(scenario)
    message = str(raised.value)
    assert message.startswith(f"{path}: "), message
    assert words in message


# --------------------------------------------------------------------------- load()


MINIMAL_YAML = """\
format: 1
name: minimal
clock:
  frozen_at: 2026-11-30T09:30:00Z
windows: {start: 2026-11-30T09:00:00Z, count: 2, minutes: 15}
accounts:
  - account_id: solo
    name: Solo Account
    active: true
"""


def test_load_yaml_keeps_instants_as_strings(tmp_path: Path) -> None:
    path = tmp_path / "minimal.yaml"
    path.write_text(MINIMAL_YAML, encoding="utf-8")
    scenario = load(path)
    assert scenario["clock"]["frozen_at"] == "2026-11-30T09:30:00Z"
    assert scenario["windows"]["start"] == "2026-11-30T09:00:00Z"


def test_load_rejects_duplicate_json_key(tmp_path: Path) -> None:
    path = tmp_path / "twice.json"
    path.write_text('{"format": 1, "name": "a", "name": "b", "accounts": []}', encoding="utf-8")
    with pytest.raises(ScenarioError, match="duplicate key 'name'"):
        load(path)


def test_load_rejects_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "scenario.toml"
    path.write_text("format = 1\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="unsupported scenario file extension"):
        load(path)


def test_load_rejects_non_object(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ScenarioError, match="must contain an object"):
        load(path)
