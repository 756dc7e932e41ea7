from datetime import UTC, datetime

import pytest

from leadflow import rules


def record(**fields):
    return {
        "source": "linkedin",
        "source_lead_id": "lead-1",
        "submitted_at": datetime(2026, 11, 30, 9, 1, tzinfo=UTC),
        "fields": fields,
        "answers": {},
        "is_test": False,
    }


def test_personal_email_wins_email_business_wins_business_email():
    lead = rules.normalise(record(email=" Ana.Ruiz@GMAIL.com ", work_email="ana@northwind.example"))
    assert lead.email == "Ana.Ruiz@GMAIL.com"
    assert lead.business_email == "ana@northwind.example"
    assert lead.personal_email == "Ana.Ruiz@GMAIL.com"
    assert lead.email_key == "ana.ruiz@gmail.com"


def test_optin_email_kept_exactly_as_submitted():
    lead = rules.normalise(record(email=" Ana.Ruiz@GMAIL.com "))
    assert lead.optin_email == " Ana.Ruiz@GMAIL.com "


def test_business_only_fills_both_roles():
    lead = rules.normalise(record(email="li.wei@helios.example"))
    assert lead.email == "li.wei@helios.example"
    assert lead.business_email == "li.wei@helios.example"
    assert lead.personal_email is None


def test_personal_only_fills_business_email_with_personal():
    lead = rules.normalise(record(email="someone@yahoo.com"))
    assert lead.email == "someone@yahoo.com"
    assert lead.business_email == "someone@yahoo.com"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"first_name": "Ana"}, "missing_email"),
        ({"email": "ana.example.com"}, "invalid_email"),
        ({"email": "ana@exämple.com"}, "non_ascii_email"),
        ({"email": ""}, "empty_answer"),
        ({"email": "ana@northwind.example", "company": "x" * 256}, "too_long"),
        ({"email": "ana@northwind.example", "first_name": "A" * 101}, "too_long"),
        ({"email": "ana@northwind.example", "phone": "call me maybe"}, "invalid_phone"),
        ({"email": "ana@northwind.example", "last_name": "   "}, "empty_answer"),
    ],
)
def test_malformed_records_rejected_with_code(fields, code):
    problems = rules.validate(record(**fields))
    assert [p.code for p in problems] == [code]
    assert problems[0].reason


def test_non_latin_names_are_valid():
    lead = rules.normalise(record(email="wang.fang@orbit.example", first_name="芳", last_name="王"))
    assert lead.first_name == "芳"
    assert lead.last_name == "王"
    assert lead.is_spam is False


def test_full_name_split_when_no_parts():
    lead = rules.normalise(record(email="j@orbit.example", full_name="Jean Luc Picard"))
    assert (lead.first_name, lead.last_name) == ("Jean Luc", "Picard")


@pytest.mark.parametrize(
    ("fields", "answers", "reason"),
    [
        ({"email": "x@mailinator.com"}, {}, "disposable email domain"),
        ({"email": "x@orbit.example", "first_name": "Xkcdfgh"}, {}, "first name looks random"),
        ({"email": "x@orbit.example"}, {"website": "http://spam.example"}, "honeypot field filled"),
    ],
)
def test_spam_flags(fields, answers, reason):
    rec = record(**fields)
    rec["answers"] = answers
    lead = rules.normalise(rec)
    assert lead.is_spam is True
    assert lead.spam_reason == reason


def test_merge_precedence_verified_enriched_form():
    merged = rules.merge_values(
        {"company": "NW", "job_title": "ops", "phone": "+1 555 0100"},
        {"company": "Northwind Analytics", "job_title": ""},
        {"job_title": "Head of Operations"},
    )
    assert merged == {"company": "Northwind Analytics", "job_title": "Head of Operations", "phone": "+1 555 0100"}


def test_merge_never_takes_blank():
    merged = rules.merge_values({"company": "Acme"}, {"company": None}, {"company": "  "})
    assert merged == {"company": "Acme"}
