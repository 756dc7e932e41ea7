"""Daily lifecycle steps: review deadlines, MAP pull-back, CRM pull, attribution.

Window semantics: the daily run for the interval [S, E) looks at leads
converted in [S, E). Its review gate waits until each of them is decided or
past its 24 h deadline, measured on the run's event clock.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from psycopg2.extras import Json

from leadflow import rules, warehouse
from leadflow.accounts import Account, load_accounts
from leadflow.clients.base import ClientConfig
from leadflow.runtime import RunContext
from leadflow.steps.common import StepResult

log = logging.getLogger(__name__)


def review_backlog(ctx: RunContext, now: datetime) -> dict[str, int]:
    """Return, per account, how many leads of the window are undecided and not yet overdue."""
    with warehouse.transaction() as cur:
        accounts = [a.account_id for a in load_accounts(cur, ctx.account_ids or None)]
        cur.execute(
            """
            SELECT r.account_id, count(*) AS waiting
            FROM leadflow.review_queue r JOIN leadflow.leads l ON l.lead_id = r.lead_id
            WHERE r.account_id = ANY(%s) AND r.status = 'pending'
              AND l.converted_at >= %s AND l.converted_at < %s AND r.deadline_at > %s
            GROUP BY r.account_id ORDER BY r.account_id
            """,
            (accounts, ctx.window_start, ctx.window_end, now),
        )
        return {row["account_id"]: row["waiting"] for row in cur.fetchall()}


def apply_review_deadlines(cur, ctx: RunContext, account: Account) -> StepResult:
    """Expire every undecided lead past its deadline and apply the account's policy.

    The policy ``push_unverified`` makes the lead pushable with its automated
    values; ``hold`` keeps it out of the MAP until a reviewer decides.
    """
    policy = account.setting("review_deadline_policy")
    cur.execute(
        """
        UPDATE leadflow.review_queue SET status = 'expired', deadline_action = %s
        WHERE account_id = %s AND status = 'pending' AND deadline_at <= %s
        RETURNING lead_id
        """,
        (policy, account.account_id, ctx.now),
    )
    expired = sorted(row["lead_id"] for row in cur.fetchall())
    result = StepResult(rows_out=len(expired))
    result.extra["expired_lead_ids"] = expired
    result.extra["policy"] = policy
    if expired:
        result.detail = f"{len(expired)} leads passed the 24 h review deadline; policy {policy}"
    return result


def _map_client(account: Account):
    from leadflow.clients.maps import make_map_client

    return make_map_client(account.map_type, ClientConfig.from_connection(account.map_conn_id))


def repair_map_ids(cur, ctx: RunContext, account: Account, client=None) -> StepResult:
    """Drop stored MAP ids that the MAP no longer has, so the next push looks them up again."""
    cur.execute("SELECT person_id, map_record_id FROM leadflow.map_records WHERE account_id = %s ORDER BY person_id", (account.account_id,))
    rows = cur.fetchall()
    if not rows:
        return StepResult()
    client = client or _map_client(account)
    existing = client.existing_ids([row["map_record_id"] for row in rows])
    stale = [row for row in rows if row["map_record_id"] not in existing]
    for row in stale:
        # Without a stored id the next push resends the person and looks the email up again.
        cur.execute(
            "DELETE FROM leadflow.map_records WHERE account_id = %s AND person_id = %s",
            (account.account_id, row["person_id"]),
        )
    return StepResult(rows_in=len(rows), rows_out=len(stale), extra={"stale_ids": len(stale)})


def _as_date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000).date()
    return date.fromisoformat(text[:10])


def _as_int(value: Any) -> int | None:
    if value in (None, ""):
        return None
    return int(float(value))


def pull_map_values(cur, ctx: RunContext, account: Account, client=None, only_new: bool = False) -> StepResult:
    """Read score, MQL date and custom fields of pushed people; keep history.

    ``only_new`` limits the pull to MAP records with no pulled values yet, for
    the people that this run's push created or re-linked.
    """
    cur.execute(
        """
        SELECT m.person_id, m.map_record_id FROM leadflow.map_records m
        WHERE m.account_id = %s AND (NOT %s OR NOT EXISTS (
            SELECT 1 FROM leadflow.map_values v
            WHERE v.account_id = m.account_id AND v.person_id = m.person_id AND v.map_record_id = m.map_record_id))
        ORDER BY m.person_id
        """,
        (account.account_id, only_new),
    )
    rows = cur.fetchall()
    if not rows:
        return StepResult()
    client = client or _map_client(account)
    custom = list(account.setting("custom_pull_fields") or [])
    fields = [account.score_field] + ([account.mql_date_field] if account.mql_date_field else []) + custom
    values = client.read([row["map_record_id"] for row in rows], fields)
    result = StepResult(rows_in=len(rows))
    for row in rows:
        record = values.get(row["map_record_id"])
        if record is None:
            continue
        score = _as_int(record.get(account.score_field))
        mql = _as_date(record.get(account.mql_date_field)) if account.mql_date_field else None
        custom_values = {name: record.get(name) for name in custom}
        cur.execute(
            """
            INSERT INTO leadflow.map_pulls (account_id, person_id, map_record_id, pulled_at, run_id, score, mql_date, custom_fields)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (account_id, person_id, run_id) DO UPDATE SET score = EXCLUDED.score,
                mql_date = EXCLUDED.mql_date, custom_fields = EXCLUDED.custom_fields, pulled_at = EXCLUDED.pulled_at
            """,
            (account.account_id, row["person_id"], row["map_record_id"], ctx.now, ctx.run_id, score, mql, Json(custom_values)),
        )
        cur.execute(
            """
            INSERT INTO leadflow.map_values AS v (account_id, person_id, map_record_id, score, first_mql_date,
                latest_mql_date, custom_fields, pulled_at)
            VALUES (%(account)s, %(person)s, %(map_id)s, %(score)s, %(mql)s, %(mql)s, %(custom)s, %(now)s)
            ON CONFLICT (account_id, person_id) DO UPDATE SET map_record_id = EXCLUDED.map_record_id,
                score = EXCLUDED.score,
                first_mql_date = CASE WHEN v.first_mql_date IS NULL THEN EXCLUDED.first_mql_date
                                      WHEN EXCLUDED.first_mql_date IS NULL THEN v.first_mql_date
                                      ELSE least(v.first_mql_date, EXCLUDED.first_mql_date) END,
                latest_mql_date = coalesce(EXCLUDED.latest_mql_date, v.latest_mql_date),
                custom_fields = EXCLUDED.custom_fields, pulled_at = EXCLUDED.pulled_at
            """,
            {"account": account.account_id, "person": row["person_id"], "map_id": row["map_record_id"], "score": score,
             "mql": mql, "custom": Json(custom_values), "now": ctx.now},
        )
        result.rows_out += 1
    return result


def _domain(website: str | None) -> str | None:
    if not website:
        return None
    text = website.strip().lower()
    for prefix in ("https://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    text = text.split("/")[0]
    if text.startswith("www."):
        text = text[4:]
    return text or None


def pull_crm(cur, ctx: RunContext, account: Account, crm=None) -> StepResult:
    """Replace the account's CRM snapshot with a full pull, in this transaction."""
    from leadflow.clients.salesforce import SalesforceClient, SalesforceCrm

    if account.crm_type != "salesforce":
        raise ValueError(f"account {account.account_id}: CRM type {account.crm_type!r} is not supported yet")
    crm = crm or SalesforceCrm(SalesforceClient(ClientConfig.from_connection(account.crm_conn_id)))
    data = crm.pull(None)
    account_id = account.account_id
    for table in ("crm_accounts", "crm_contacts", "crm_opportunities", "crm_contact_roles", "crm_converted_leads"):
        cur.execute(f"DELETE FROM leadflow.{table} WHERE account_id = %s", (account_id,))
    for row in data["accounts"]:
        cur.execute(
            "INSERT INTO leadflow.crm_accounts VALUES (%s, %s, %s, %s, %s)",
            (account_id, row["Id"], row.get("Name"), _domain(row.get("Website")), ctx.now),
        )
    for row in data["contacts"]:
        cur.execute(
            "INSERT INTO leadflow.crm_contacts VALUES (%s, %s, %s, %s, %s, %s)",
            (account_id, row["Id"], row.get("AccountId"), rules.email_key(row["Email"]) if row.get("Email") else None, row.get("CreatedDate"), ctx.now),
        )
    for row in data["opportunities"]:
        cur.execute(
            "INSERT INTO leadflow.crm_opportunities VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (account_id, row["Id"], row.get("AccountId"), row.get("Name"), row.get("StageName"), row.get("Amount"),
             bool(row.get("IsClosed")), bool(row.get("IsWon")), row["CreatedDate"], row.get("CloseDate"), ctx.now),
        )
    for row in data["contact_roles"]:
        cur.execute(
            "INSERT INTO leadflow.crm_contact_roles VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (account_id, row["Id"], row["OpportunityId"], row["ContactId"], row.get("Role"), bool(row.get("IsPrimary")), ctx.now),
        )
    for row in data["converted_leads"]:
        cur.execute(
            "INSERT INTO leadflow.crm_converted_leads VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (account_id, row["Id"], rules.email_key(row["Email"]) if row.get("Email") else None, row.get("ConvertedDate"),
             row.get("ConvertedContactId"), row.get("ConvertedAccountId"), row.get("ConvertedOpportunityId"), ctx.now),
        )
    total = sum(len(v) for v in data.values())
    return StepResult(rows_in=total, rows_out=total, extra={k: len(v) for k, v in data.items()})


def compute_attribution(cur, ctx: RunContext, account: Account) -> StepResult:
    """Recompute the account's attribution from scratch in this transaction.

    Readers see either the old rows or the new ones, never a mix, because the
    delete and the insert commit together.
    """
    windows = account.setting("attribution")
    params = {
        "account": account.account_id,
        "triggered_days": int(windows.get("triggered_window_days", 90)),
        "influenced_days": int(windows.get("influenced_window_days", 365)),
        "rule_version": account.attribution_rule_version,
        "now": ctx.now,
        "run": ctx.run_id,
        "include_tests": bool(account.setting("include_test_leads")),
        "include_spam": bool(account.setting("include_spam_leads")),
        "free_mail": sorted(rules.FREE_MAIL_DOMAINS),
    }
    cur.execute("DELETE FROM leadflow.attribution WHERE account_id = %(account)s", params)
    warehouse.run_transform(cur, "attribution", params)
    cur.execute(
        "SELECT kind, count(*) AS n FROM leadflow.attribution WHERE account_id = %s GROUP BY kind",
        (account.account_id,),
    )
    counts = {row["kind"]: row["n"] for row in cur.fetchall()}
    return StepResult(rows_out=sum(counts.values()), extra={"triggered": counts.get("triggered", 0), "influenced": counts.get("influenced", 0)})


def report_service_levels(cur, ctx: RunContext, account: Account) -> StepResult:
    """Write the account's service-level rows for the run's day; return breaches."""
    params = {
        "account": account.account_id,
        "day_start": ctx.window_start,
        "day_end": ctx.window_end,
        "report_date": ctx.window_start.date(),
        "now": ctx.now,
        "run": ctx.run_id,
    }
    cur.execute("DELETE FROM leadflow.service_levels WHERE report_date = %(report_date)s AND account_id = %(account)s", params)
    warehouse.run_transform(cur, "service_levels", params)
    cur.execute(
        "SELECT promise, measured, met, breached, breached_refs FROM leadflow.service_levels"
        " WHERE report_date = %(report_date)s AND account_id = %(account)s ORDER BY promise",
        params,
    )
    rows = cur.fetchall()
    breaches = {row["promise"]: {"breached": row["breached"], "lead_ids": list(row["breached_refs"])} for row in rows if row["breached"]}
    return StepResult(rows_out=len(rows), extra={"breaches": breaches})
