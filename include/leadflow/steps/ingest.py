"""Convert phase: fetch leads per source, land raw payloads, normalise, queue for review.

Landing is keyed by (account, source, source lead id), so an overlapping
window or a rerun lands nothing twice. Normalising reads the raw rows of the
window that are neither leads nor quarantined yet, so a rerun after a fix
picks up exactly what is missing.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg2.extras import Json

from leadflow import rules
from leadflow.accounts import Account
from leadflow.clients.base import ClientConfig
from leadflow.runtime import RunContext
from leadflow.steps.common import StepResult

log = logging.getLogger(__name__)

REVIEW_DEADLINE = timedelta(hours=24)


def land(cur, ctx: RunContext, account_id: str, source: str, rows: list[tuple[str, dict, datetime]]) -> int:
    """Insert raw payloads not landed before; return how many were new."""
    new = 0
    for source_lead_id, payload, available_at in rows:
        cur.execute(
            """
            INSERT INTO leadflow.raw_leads (account_id, source, source_lead_id, payload, available_at, landed_at, landed_run_id)
            VALUES (%s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (account_id, source, source_lead_id) DO NOTHING
            """,
            (account_id, source, str(source_lead_id), Json(payload), available_at, ctx.now, ctx.run_id),
        )
        new += cur.rowcount
    return new


def fetch_linkedin(cur, ctx: RunContext, account: Account) -> StepResult:
    from leadflow.clients.linkedin import LinkedInClient

    source = account.sources["linkedin"]
    client = LinkedInClient(ClientConfig.from_connection(source["conn_id"]))
    rows = []
    for element in client.iter_leads(source["sponsored_account_id"], ctx.fetch_start, ctx.window_end, include_test=True):
        form = client.get_form(element["versionedLeadGenFormUrn"])
        available_at = datetime.fromtimestamp(element["submittedAt"] / 1000, UTC)
        rows.append((element["id"], {"lead": element, "form": form}, available_at))
    new = land(cur, ctx, account.account_id, "linkedin", rows)
    if not rows:
        log.info("linkedin: account %s has no leads in %s..%s", account.account_id, ctx.fetch_start, ctx.window_end)
    return StepResult(rows_in=len(rows), rows_out=new)


def fetch_meta(cur, ctx: RunContext, account: Account) -> StepResult:
    from leadflow.clients.meta import MetaLeadsClient

    source = account.sources["meta"]
    client = MetaLeadsClient(ClientConfig.from_connection(source["conn_id"]))
    rows = []
    for form_id in source.get("form_ids", []):
        questions = client.get_form_questions(form_id)
        for lead in client.iter_leads(form_id, ctx.fetch_start, ctx.window_end):
            rows.append((lead["id"], {"lead": lead, "questions": questions}, parse_created_time(lead["created_time"])))
    new = land(cur, ctx, account.account_id, "meta", rows)
    return StepResult(rows_in=len(rows), rows_out=new)


def parse_created_time(value: str) -> datetime:
    """Parse Meta's ``2026-01-01T00:05:12+0000`` timestamps."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)


def collect_pixel(cur, ctx: RunContext, account: Account) -> StepResult:
    """Land collector submissions received in the window."""
    cur.execute(
        """
        SELECT submission_id::text AS id, payload, received_at, origin
        FROM leadflow.pixel_submissions
        WHERE account_id = %s AND received_at >= %s AND received_at < %s
        ORDER BY received_at, submission_id
        """,
        (account.account_id, ctx.fetch_start, ctx.window_end),
    )
    rows = [
        (row["id"], {"submission": row["payload"], "received_at": row["received_at"].isoformat(), "origin": row["origin"]}, row["received_at"])
        for row in cur.fetchall()
    ]
    new = land(cur, ctx, account.account_id, "pixel", rows)
    return StepResult(rows_in=len(rows), rows_out=new)


PIXEL_FIELDS = ("first_name", "last_name", "full_name", "email", "work_email", "phone", "company", "job_title", "country")


def pixel_to_common(source_lead_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Turn a stored collector submission into the common lead record."""
    submission = payload["submission"]
    raw_fields = submission.get("fields") or {}
    answers = {k: v for k, v in raw_fields.items()}
    if submission.get("utm"):
        answers["utm"] = submission["utm"]
    received = datetime.fromisoformat(payload["received_at"])
    return {
        "source": "pixel",
        "source_lead_id": source_lead_id,
        "submitted_at": received.astimezone(UTC),
        "form_id": submission.get("form_id"),
        "campaign_ref": (submission.get("utm") or {}).get("utm_campaign") or (submission.get("utm") or {}).get("campaign"),
        "is_test": False,
        "fields": {k: raw_fields[k] for k in PIXEL_FIELDS if k in raw_fields},
        "answers": answers,
        "consent": submission.get("consent"),
    }


def to_common(source: str, source_lead_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    if source == "linkedin":
        from leadflow.clients.linkedin import to_common as linkedin_to_common

        return linkedin_to_common(payload["lead"], payload["form"])
    if source == "meta":
        from leadflow.clients.meta import to_common as meta_to_common

        return meta_to_common(payload["lead"], payload["questions"])
    if source == "pixel":
        return pixel_to_common(source_lead_id, payload)
    raise ValueError(f"unknown lead source {source!r}")


def quarantine(cur, ctx: RunContext, account_id: str, source: str, source_lead_id: str, problems: list[rules.Rejection], payload: dict) -> None:
    cur.execute(
        """
        INSERT INTO leadflow.quarantine (account_id, source, source_lead_id, reason_code, reason, payload, quarantined_at, run_id)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (account_id, source, source_lead_id) DO NOTHING
        """,
        (
            account_id, source, source_lead_id, problems[0].code,
            "; ".join(p.reason for p in problems), Json(payload), ctx.now, ctx.run_id,
        ),
    )


def person_id(cur, account_id: str, key: str, now: datetime) -> int:
    cur.execute(
        """
        INSERT INTO leadflow.people (account_id, email_key, created_at) VALUES (%s, %s, %s)
        ON CONFLICT (account_id, email_key) DO UPDATE SET email_key = EXCLUDED.email_key
        RETURNING person_id
        """,
        (account_id, key, now),
    )
    return cur.fetchone()["person_id"]


def normalise(cur, ctx: RunContext, account: Account) -> StepResult:
    """Normalise the window's new raw leads into leads or quarantine; queue each new lead for review."""
    cur.execute(
        """
        SELECT r.source, r.source_lead_id, r.payload, r.available_at
        FROM leadflow.raw_leads r
        WHERE r.account_id = %(account)s AND r.available_at >= %(start)s AND r.available_at < %(end)s
          AND NOT EXISTS (SELECT 1 FROM leadflow.leads l WHERE l.account_id = r.account_id
                          AND l.source = r.source AND l.source_lead_id = r.source_lead_id)
          AND NOT EXISTS (SELECT 1 FROM leadflow.quarantine q WHERE q.account_id = r.account_id
                          AND q.source = r.source AND q.source_lead_id = r.source_lead_id)
        ORDER BY r.available_at, r.source, r.source_lead_id
        """,
        {"account": account.account_id, "start": ctx.fetch_start, "end": ctx.window_end},
    )
    raw_rows = cur.fetchall()
    result = StepResult(rows_in=len(raw_rows))
    for row in raw_rows:
        try:
            record = to_common(row["source"], row["source_lead_id"], row["payload"])
        except (KeyError, TypeError, ValueError) as error:
            problem = rules.Rejection("unparseable", f"the {row['source']} payload could not be read: {type(error).__name__} {error}")
            quarantine(cur, ctx, account.account_id, row["source"], row["source_lead_id"], [problem], row["payload"])
            result.rows_rejected += 1
            continue
        outcome = rules.normalise(record)
        if isinstance(outcome, list):
            quarantine(cur, ctx, account.account_id, row["source"], row["source_lead_id"], outcome, row["payload"])
            result.rows_rejected += 1
            continue
        pid = person_id(cur, account.account_id, outcome.email_key, ctx.now)
        cur.execute(
            """
            INSERT INTO leadflow.leads (account_id, source, source_lead_id, person_id, form_id, campaign_ref,
                converted_at, available_at, ingested_at, ingested_run_id, email, business_email, personal_email,
                optin_email, first_name, last_name, phone, company, job_title, country, answers, consent,
                is_test, is_spam, spam_reason)
            VALUES (%(account)s, %(source)s, %(source_lead_id)s, %(person)s, %(form_id)s, %(campaign)s,
                %(converted)s, %(available)s, %(now)s, %(run)s, %(email)s, %(business)s, %(personal)s,
                %(optin)s, %(first)s, %(last)s, %(phone)s, %(company)s, %(title)s, %(country)s, %(answers)s,
                %(consent)s, %(test)s, %(spam)s, %(spam_reason)s)
            ON CONFLICT (account_id, source, source_lead_id) DO NOTHING
            RETURNING lead_id, converted_at
            """,
            {
                "account": account.account_id,
                "source": row["source"],
                "source_lead_id": row["source_lead_id"],
                "person": pid,
                "form_id": record.get("form_id"),
                "campaign": record.get("campaign_ref"),
                "converted": record["submitted_at"],
                "available": row["available_at"],
                "now": ctx.now,
                "run": ctx.run_id,
                "email": outcome.email,
                "business": outcome.business_email,
                "personal": outcome.personal_email,
                "optin": outcome.optin_email,
                "first": outcome.first_name,
                "last": outcome.last_name,
                "phone": outcome.phone,
                "company": outcome.company,
                "title": outcome.job_title,
                "country": outcome.country,
                "answers": Json(json.loads(json.dumps(outcome.answers, default=str))),
                "consent": record.get("consent"),
                "test": bool(record.get("is_test")),
                "spam": outcome.is_spam,
                "spam_reason": outcome.spam_reason,
            },
        )
        inserted = cur.fetchone()
        if inserted is None:
            continue
        cur.execute(
            """
            INSERT INTO leadflow.review_queue (lead_id, account_id, queued_at, deadline_at)
            VALUES (%s, %s, %s, %s) ON CONFLICT (lead_id) DO NOTHING
            """,
            (inserted["lead_id"], account.account_id, ctx.now, inserted["converted_at"] + REVIEW_DEADLINE),
        )
        result.rows_out += 1
    return result
