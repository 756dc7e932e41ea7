"""Push to the MAP: one MAP record per person, written only with mapped, non-blank values.

Which leads are ready:
- leads verified or corrected by a reviewer (stage ``verified``);
- for accounts that push before verification, every new lead (stage
  ``unverified``); the verified values are layered on top once reviewed;
- leads past their 24 h review deadline when the account's policy is
  ``push_unverified``.
A rejected lead is not pushed after its rejection. An account that pushes
before verification may already have sent it, and it stays in the MAP. Test
and spam leads are pushed only when the account opts in.

How a person's MAP record is chosen: the stored MAP id when there is one,
otherwise a lookup by the primary email. No match creates a record and one
match updates it. Several matches update the most recently updated record,
and a tie goes to the smallest id. A stored id that the MAP no longer has is
looked up again and replaced. A person whose values and stage did not change since the last push
is not sent again.

The push works on the current state of every lead, not on the run's window:
a rerun of an old window sends today's values (usually nothing, because they
are unchanged) instead of rolling the MAP back to that window's values.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadflow import rules
from leadflow.accounts import Account
from leadflow.clients.base import ClientConfig
from leadflow.clients.maps import REASON_CONFLICT, REASON_EXISTS, REASON_NOT_FOUND
from leadflow.runtime import RunContext
from leadflow.steps.common import StepResult

log = logging.getLogger(__name__)

FORM_FIELDS = ("first_name", "last_name", "company", "job_title", "phone", "country")
ENRICHED_FIELDS = ("company", "job_title", "industry", "country")
CORRECTABLE_FIELDS = ("first_name", "last_name", "email", "company", "job_title", "phone", "country")


@dataclass
class PersonPush:
    person_id: int
    email_key: str
    stage: str
    values: dict[str, Any]
    optin_email: str | None
    lead_ready: dict[int, datetime] = field(default_factory=dict)
    map_id: str | None = None
    last_hash: str | None = None

    def payload(self, account: Account) -> dict[str, Any]:
        mapping = account.field_map
        return {mapping[name]: value for name, value in sorted(self.values.items()) if name in mapping}

    def digest(self, account: Account) -> str:
        body = json.dumps({"stage": self.stage, "fields": self.payload(account)}, sort_keys=True, default=str)
        return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _pushable_leads(cur, ctx: RunContext, account: Account) -> list[dict[str, Any]]:
    cur.execute(
        """
        SELECT l.lead_id, l.person_id, p.email_key, l.source, l.converted_at, l.ingested_at, l.email, l.optin_email,
               l.first_name, l.last_name, l.company, l.job_title, l.phone, l.country, l.is_test, l.is_spam,
               r.status AS review_status, r.decided_at, r.corrections, r.deadline_action
        FROM leadflow.leads l
        JOIN leadflow.people p ON p.person_id = l.person_id
        JOIN leadflow.review_queue r ON r.lead_id = l.lead_id
        WHERE l.account_id = %(account)s
          AND (NOT l.is_test OR %(tests)s) AND (NOT l.is_spam OR %(spam)s)
          AND r.status <> 'rejected'
        ORDER BY l.person_id, l.converted_at, l.lead_id
        """,
        {
            "account": account.account_id,
            "end": ctx.window_end,
            "tests": bool(account.setting("include_test_leads")),
            "spam": bool(account.setting("include_spam_leads")),
        },
    )
    return cur.fetchall()


def lead_stage(account: Account, lead: dict[str, Any]) -> str | None:
    """Return the stage a lead is ready for, or None while it waits for review."""
    status = lead["review_status"]
    if status in ("verified", "corrected"):
        return "verified"
    if status == "expired" and lead["deadline_action"] == "push_unverified":
        return "unverified"
    if status == "pending" and account.setting("push_before_verification"):
        return "unverified"
    return None


def plan_people(cur, ctx: RunContext, account: Account) -> list[PersonPush]:
    """Work out, per person, the values to send and which leads they cover."""
    leads = _pushable_leads(cur, ctx, account)
    person_ids = sorted({lead["person_id"] for lead in leads})
    enrichment: dict[int, dict[str, Any]] = {}
    records: dict[int, dict[str, Any]] = {}
    if person_ids:
        cur.execute(
            "SELECT * FROM leadflow.enrichment WHERE person_id = ANY(%s) AND status IN ('matched', 'company_only')",
            (person_ids,),
        )
        enrichment = {row["person_id"]: row for row in cur.fetchall()}
        cur.execute("SELECT * FROM leadflow.map_records WHERE account_id = %s AND person_id = ANY(%s)", (account.account_id, person_ids))
        records = {row["person_id"]: row for row in cur.fetchall()}
    by_person: dict[int, list[dict[str, Any]]] = {}
    for lead in leads:
        by_person.setdefault(lead["person_id"], []).append(lead)
    plans = []
    for pid in person_ids:
        person_leads = by_person[pid]
        ready = [(lead, lead_stage(account, lead)) for lead in person_leads]
        ready = [(lead, stage) for lead, stage in ready if stage]
        if not ready:
            continue
        stage = "verified" if any(s == "verified" for _, s in ready) else "unverified"
        form: dict[str, Any] = {}
        for lead in person_leads:  # oldest first, so the newest answer wins
            form.update({name: lead[name] for name in FORM_FIELDS if lead[name]})
        form["email"] = person_leads[0]["email"]
        form["lead_source"] = person_leads[0]["source"]
        enriched = {name: enrichment[pid][name] for name in ENRICHED_FIELDS if pid in enrichment and enrichment[pid][name]}
        verified: dict[str, Any] = {}
        for lead, lead_stage_name in sorted(ready, key=lambda item: (item[0]["decided_at"] or item[0]["ingested_at"], item[0]["lead_id"])):
            if lead_stage_name == "verified":
                verified.update({k: v for k, v in (lead["corrections"] or {}).items() if k in CORRECTABLE_FIELDS})
        values = rules.merge_values(form, enriched, verified)
        lead_ready = {}
        for lead, lead_stage_name in ready:
            if lead_stage_name == "verified" and lead["decided_at"] is not None:
                lead_ready[lead["lead_id"]] = lead["decided_at"]
            else:
                lead_ready[lead["lead_id"]] = lead["ingested_at"]
        record = records.get(pid)
        plans.append(
            PersonPush(
                person_id=pid,
                email_key=person_leads[0]["email_key"],
                stage=stage,
                values=values,
                optin_email=person_leads[0]["optin_email"],
                lead_ready=lead_ready,
                map_id=record["map_record_id"] if record else None,
                last_hash=record["last_pushed_hash"] if record else None,
            )
        )
    return plans


def choose_record(candidates: list) -> Any:
    """Pick the most recently updated MAP record; ties go to the smallest id."""

    def sort_key(record):
        updated = record.updated_at.timestamp() if record.updated_at else float("-inf")
        numeric = int(record.id) if str(record.id).isdigit() else None
        return (-updated, numeric if numeric is not None else float("inf"), str(record.id))

    return sorted(candidates, key=sort_key)[0]


def _is_missing(result) -> bool:
    return not result.ok and result.reason == REASON_NOT_FOUND


def _is_exists(result) -> bool:
    return not result.ok and result.reason in (REASON_EXISTS, REASON_CONFLICT)


def _failure_text(result) -> str:
    return " - ".join(part for part in (result.reason or result.status, getattr(result, "detail", None)) if part)


def write_people(client, account: Account, plans: list[PersonPush]) -> dict[int, tuple[str, str | None, str | None]]:
    """Send the plans; return person id -> (action, map id, reason)."""
    outcomes: dict[int, tuple[str, str | None, str | None]] = {}
    email_field = account.field_map.get("email", "email")

    def lookup(people: list[PersonPush]) -> dict[int, str | None]:
        found = client.find_by_emails([p.email_key for p in people]) if people else {}
        chosen = {}
        for person in people:
            matches = found.get(person.email_key, [])
            chosen[person.person_id] = choose_record(matches).id if matches else None
        return chosen

    def update(people: list[PersonPush], second_try: bool) -> None:
        if not people:
            return
        results = client.update([(p.map_id, p.payload(account)) for p in people])
        stale = []
        for person, result in zip(people, results, strict=True):
            if result.ok:
                outcomes[person.person_id] = ("updated", str(result.id or person.map_id), None)
            elif _is_missing(result) and not second_try:
                stale.append(person)
            else:
                outcomes[person.person_id] = ("failed", None, _failure_text(result))
        if stale:
            log.info("account %s: %d stored MAP ids no longer exist; looking up again", account.account_id, len(stale))
            for person in stale:
                person.map_id = None
            route(stale, second_try=True)

    def create(people: list[PersonPush], second_try: bool) -> None:
        if not people:
            return
        bodies = []
        for person in people:
            body = person.payload(account)
            body[email_field] = person.values.get("email", person.email_key)
            if account.optin_field and person.optin_email:
                body[account.optin_field] = person.optin_email
            bodies.append(body)
        results = client.create(bodies)
        exists = []
        for person, result in zip(people, results, strict=True):
            if result.ok:
                outcomes[person.person_id] = ("created", str(result.id), None)
            elif _is_exists(result) and not second_try:
                exists.append(person)
            else:
                outcomes[person.person_id] = ("failed", None, _failure_text(result))
        if exists:
            route(exists, second_try=True)

    def route(people: list[PersonPush], second_try: bool = False) -> None:
        known = [p for p in people if p.map_id]
        unknown = [p for p in people if not p.map_id]
        ids = lookup(unknown)
        to_create = []
        for person in unknown:
            person.map_id = ids[person.person_id]
            (known if person.map_id else to_create).append(person)
        update(known, second_try)
        create(to_create, second_try)

    route(plans)
    return outcomes


def push(cur, ctx: RunContext, account: Account, client=None) -> StepResult:
    """Push every ready person whose values or stage changed since their last push."""
    from leadflow.clients.maps import make_map_client

    skipped = log_skips(cur, ctx, account)
    plans = plan_people(cur, ctx, account)
    changed = [p for p in plans if p.digest(account) != p.last_hash]
    unchanged = [p for p in plans if p.digest(account) == p.last_hash]
    result = StepResult(rows_in=len(plans))
    outcomes: dict[int, tuple[str, str | None, str | None]] = {}
    if changed:
        if not account.map_type or not account.map_conn_id:
            raise ValueError(f"account {account.account_id} has leads ready to push but no MAP connection configured")
        client = client or make_map_client(account.map_type, ClientConfig.from_connection(account.map_conn_id))
        outcomes = write_people(client, account, changed)
    counts = {"created": 0, "updated": 0, "unchanged": 0, "failed": 0, "skipped_leads": skipped}
    for person in changed:
        action, map_id, reason = outcomes.get(person.person_id, ("failed", None, "no result returned"))
        counts[action] += 1
        if action in ("created", "updated"):
            cur.execute(
                """
                INSERT INTO leadflow.map_records (account_id, person_id, map_type, map_record_id, first_pushed_at,
                    last_pushed_at, last_pushed_hash, last_pushed_stage)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (account_id, person_id) DO UPDATE SET map_record_id = EXCLUDED.map_record_id,
                    last_pushed_at = EXCLUDED.last_pushed_at, last_pushed_hash = EXCLUDED.last_pushed_hash,
                    last_pushed_stage = EXCLUDED.last_pushed_stage
                """,
                (account.account_id, person.person_id, account.map_type, map_id, ctx.now, ctx.now, person.digest(account), person.stage),
            )
        _log_leads(cur, ctx, account, person, action, map_id, reason)
    for person in unchanged:
        _log_leads(cur, ctx, account, person, "unchanged", person.map_id, None)
    result.rows_out = counts["created"] + counts["updated"]
    result.rows_rejected = counts["failed"]
    result.extra.update(counts)
    if counts["failed"]:
        result.detail = f"{counts['failed']} people failed to push; the next run retries them"
    return result


def _log_leads(cur, ctx: RunContext, account: Account, person: PersonPush, action: str, map_id: str | None, reason: str | None) -> None:
    """Log the outcome once per lead and stage; repeated unchanged runs add nothing."""
    for lead_id, ready_at in sorted(person.lead_ready.items()):
        cur.execute(
            "SELECT 1 FROM leadflow.push_log WHERE lead_id = %s AND stage = %s AND action IN ('created', 'updated', 'unchanged')",
            (lead_id, person.stage),
        )
        if cur.fetchone() is not None:
            continue
        cur.execute(
            """
            INSERT INTO leadflow.push_log (account_id, person_id, lead_id, run_id, action, stage, reason, map_record_id,
                ready_at, pushed_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (account.account_id, person.person_id, lead_id, ctx.run_id, action, person.stage, reason, map_id, ready_at, ctx.now),
        )


def log_skips(cur, ctx: RunContext, account: Account) -> int:
    """Record, once per lead, why a lead will not be pushed (test, spam, rejected)."""
    cur.execute(
        """
        INSERT INTO leadflow.push_log (account_id, person_id, lead_id, run_id, action, reason, pushed_at)
        SELECT l.account_id, l.person_id, l.lead_id, %(run)s, 'skipped',
               CASE WHEN r.status = 'rejected' THEN 'rejected by review: ' || coalesce(r.reason, 'no reason given')
                    WHEN l.is_test AND NOT %(tests)s THEN 'test lead'
                    ELSE 'suspected spam: ' || coalesce(l.spam_reason, 'unknown') END,
               %(now)s
        FROM leadflow.leads l JOIN leadflow.review_queue r ON r.lead_id = l.lead_id
        WHERE l.account_id = %(account)s
          AND (r.status = 'rejected' OR (l.is_test AND NOT %(tests)s) OR (l.is_spam AND NOT %(spam)s))
          AND NOT EXISTS (SELECT 1 FROM leadflow.push_log x WHERE x.lead_id = l.lead_id AND x.action = 'skipped')
        """,
        {
            "run": ctx.run_id,
            "now": ctx.now,
            "account": account.account_id,
            "end": ctx.window_end,
            "tests": bool(account.setting("include_test_leads")),
            "spam": bool(account.setting("include_spam_leads")),
        },
    )
    return cur.rowcount
