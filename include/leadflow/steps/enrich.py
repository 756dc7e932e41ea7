"""Automated enrichment in the ingesting run: person and company by email, then by domain.

People whose lookup came back pending (the provider queued it) or failed are
looked up again by the next run, so enrichment converges without a separate job.
"""

from __future__ import annotations

import logging

from psycopg2.extras import Json

from leadflow.accounts import Account
from leadflow.clients.base import ClientConfig, VendorError
from leadflow.runtime import RunContext
from leadflow.steps.common import StepResult

log = logging.getLogger(__name__)

ENRICHMENT_CONN_ID = "enrichment"
# HTTP statuses with which the provider rejects one lookup's input (not the call).
REJECTED_INPUT_STATUSES = (400, 404, 422)


def enrich(cur, ctx: RunContext, account: Account, client=None) -> StepResult:
    """Enrich people of this run's new leads plus earlier pending or failed ones."""
    from leadflow.clients.enrichment import EnrichmentClient

    cur.execute(
        """
        SELECT DISTINCT p.person_id, l.email_for_lookup
        FROM leadflow.people p
        JOIN LATERAL (
            SELECT coalesce(l.business_email, l.email) AS email_for_lookup
            FROM leadflow.leads l WHERE l.person_id = p.person_id
            ORDER BY l.converted_at DESC, l.lead_id DESC LIMIT 1
        ) l ON true
        LEFT JOIN leadflow.enrichment e ON e.person_id = p.person_id
        WHERE p.account_id = %(account)s
          AND (e.person_id IS NULL OR e.status IN ('pending', 'failed'))
          AND EXISTS (SELECT 1 FROM leadflow.leads x WHERE x.person_id = p.person_id
                      AND x.available_at < %(end)s)
        ORDER BY p.person_id
        """,
        {"account": account.account_id, "end": ctx.window_end},
    )
    people = cur.fetchall()
    if not people:
        return StepResult()
    client = client or EnrichmentClient(ClientConfig.from_connection(ENRICHMENT_CONN_ID))
    result = StepResult(rows_in=len(people))
    statuses: dict[str, int] = {}
    for person in people:
        try:
            found = client.lookup(person["email_for_lookup"])
            status = found.status
            values = {
                "company": found.company,
                "company_domain": found.company_domain,
                "job_title": found.job_title,
                "industry": found.industry,
                "employees": found.employees,
                "country": found.country,
                "raw": Json({"person": found.person, "company": found.company_data}),
            }
        except VendorError as error:
            if not error.retryable and error.status not in REJECTED_INPUT_STATUSES:
                raise
            # A transient failure leaves the person for the next run; an input
            # the provider rejects is final and recorded as no match.
            log.warning("enrichment lookup failed for person %s: %s", person["person_id"], error)
            status = "failed" if error.retryable else "no_match"
            values = {k: None for k in ("company", "company_domain", "job_title", "industry", "employees", "country")}
            values["raw"] = None
        statuses[status] = statuses.get(status, 0) + 1
        cur.execute(
            """
            INSERT INTO leadflow.enrichment (person_id, account_id, status, company, company_domain, job_title,
                industry, employees, country, raw, enriched_at, run_id)
            VALUES (%(person)s, %(account)s, %(status)s, %(company)s, %(company_domain)s, %(job_title)s,
                %(industry)s, %(employees)s, %(country)s, %(raw)s, %(now)s, %(run)s)
            ON CONFLICT (person_id) DO UPDATE SET status = EXCLUDED.status, company = EXCLUDED.company,
                company_domain = EXCLUDED.company_domain, job_title = EXCLUDED.job_title,
                industry = EXCLUDED.industry, employees = EXCLUDED.employees, country = EXCLUDED.country,
                raw = EXCLUDED.raw, enriched_at = EXCLUDED.enriched_at, run_id = EXCLUDED.run_id
            """,
            {"person": person["person_id"], "account": account.account_id, "status": status, "now": ctx.now, "run": ctx.run_id, **values},
        )
        if status in ("matched", "company_only"):
            result.rows_out += 1
    result.extra["statuses"] = statuses
    return result
