"""Expected outcomes of a replayed scenario, from the generator's own bookkeeping.

The scenario generator records, per account, the intended outcome of each
lead and opportunity. These helpers turn that record into the warehouse's
terms, so tests compare exact rows.
"""

from __future__ import annotations

# Reason codes of the generator -> the product's quarantine reason codes.
REASON_CODES = {
    "email_missing": "missing_email",
    "email_invalid": "invalid_email",
    "email_non_ascii": "non_ascii_email",
    "email_empty": "empty_answer",
    "company_too_long": "too_long",
    "first_name_too_long": "too_long",
    "phone_invalid": "invalid_phone",
}

# A lead's reference as the generator writes it: source and the vendor's lead
# id, or for pixel submissions the submitted time (they carry no id).
LEAD_REF_SQL = """
    l.source || ':' || CASE WHEN l.source = 'pixel' THEN r.payload->'submission'->>'submitted_at'
                            ELSE l.source_lead_id END
"""


def by_account(scenario: dict) -> dict[str, dict]:
    return {item["account_id"]: item for item in scenario["expected"] if item.get("active", True)}


def quarantine_counts(item: dict) -> dict[str, int]:
    counts: dict[str, int] = {}
    for code, count in item["quarantine_reasons"].items():
        counts[REASON_CODES[code]] = counts.get(REASON_CODES[code], 0) + count
    return counts


def attribution_rows(scenario: dict) -> set[tuple[str, str, str, str]]:
    """Return (account, opportunity, kind, lead ref) for every intended attribution."""
    rows = set()
    for account_id, item in by_account(scenario).items():
        for opportunity in item["opportunities"]:
            for kind in ("triggered", "influenced"):
                for ref in opportunity[kind]:
                    rows.add((account_id, opportunity["opportunity_id"], kind, ref))
    return rows
