"""Great Expectations checks that follow each write, per account and run.

Each check reads what the step wrote for one account in this run into a
DataFrame and validates it with an expectation suite. Results go to
``leadflow.dq_results`` (one row per expectation) and to ``leadflow.step_runs``
under the check's name, where the next step finds them: an account whose
check failed is blocked downstream while the other accounts go on.

Great Expectations takes about 9 s to import on a 2-core machine, so one task
validates every account of a run instead of one task per account.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from leadflow import warehouse
from leadflow.accounts import Account, load_accounts
from leadflow.runtime import RunContext
from leadflow.steps.common import record_step

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dataset:
    """One query whose rows a suite validates; parameters: account, run, now, start, end."""

    name: str
    sql: str
    columns: tuple[str, ...]
    expectations: tuple[tuple[str, dict[str, Any]], ...]


_LEADS = Dataset(
    name="leads",
    sql="""
        SELECT l.lead_id, l.source, l.source_lead_id, p.email_key, l.converted_at,
               p.email_key = lower(btrim(l.email)) AS email_key_matches,
               r.lead_id IS NOT NULL AS queued_for_review
        FROM leadflow.leads l
        JOIN leadflow.people p ON p.person_id = l.person_id
        LEFT JOIN leadflow.review_queue r ON r.lead_id = l.lead_id
        WHERE l.account_id = %(account)s AND l.ingested_run_id = %(run)s
    """,
    columns=("lead_id", "source", "source_lead_id", "email_key", "converted_at", "email_key_matches", "queued_for_review"),
    expectations=(
        ("ExpectColumnValuesToNotBeNull", {"column": "email_key"}),
        ("ExpectColumnValuesToMatchRegex", {"column": "email_key", "regex": r"^[^@\s]+@[^@\s]+\.[^@\s]+$"}),
        ("ExpectColumnValuesToNotBeNull", {"column": "converted_at"}),
        ("ExpectColumnValuesToBeInSet", {"column": "source", "value_set": ["linkedin", "meta", "pixel"]}),
        ("ExpectCompoundColumnsToBeUnique", {"column_list": ["source", "source_lead_id"]}),
        ("ExpectColumnValuesToBeInSet", {"column": "email_key_matches", "value_set": [True]}),
        ("ExpectColumnValuesToBeInSet", {"column": "queued_for_review", "value_set": [True]}),
    ),
)

_QUARANTINE = Dataset(
    name="quarantine",
    sql="""
        SELECT source_lead_id, reason_code, reason FROM leadflow.quarantine
        WHERE account_id = %(account)s AND run_id = %(run)s
    """,
    columns=("source_lead_id", "reason_code", "reason"),
    expectations=(
        ("ExpectColumnValuesToNotBeNull", {"column": "reason"}),
        ("ExpectColumnValueLengthsToBeBetween", {"column": "reason", "min_value": 5}),
    ),
)

_ENRICHMENT = Dataset(
    name="enrichment",
    sql="""
        SELECT person_id, status, company, employees,
               status NOT IN ('matched', 'company_only') OR company IS NOT NULL AS company_when_matched
        FROM leadflow.enrichment WHERE account_id = %(account)s AND run_id = %(run)s
    """,
    columns=("person_id", "status", "company", "employees", "company_when_matched"),
    expectations=(
        ("ExpectColumnValuesToBeInSet", {"column": "status", "value_set": ["matched", "company_only", "no_match", "pending", "failed"]}),
        ("ExpectColumnValuesToBeUnique", {"column": "person_id"}),
        ("ExpectColumnValuesToBeBetween", {"column": "employees", "min_value": 0, "max_value": 5_000_000}),
        ("ExpectColumnValuesToBeInSet", {"column": "company_when_matched", "value_set": [True]}),
    ),
)

_PUSH = Dataset(
    name="push_log",
    sql="""
        SELECT lead_id, action, map_record_id,
               action NOT IN ('created', 'updated') OR map_record_id IS NOT NULL AS id_when_written
        FROM leadflow.push_log WHERE account_id = %(account)s AND run_id = %(run)s
    """,
    columns=("lead_id", "action", "map_record_id", "id_when_written"),
    expectations=(
        ("ExpectColumnValuesToBeInSet", {"column": "action", "value_set": ["created", "updated", "skipped", "failed", "unchanged"]}),
        ("ExpectColumnValuesToBeInSet", {"column": "id_when_written", "value_set": [True]}),
    ),
)

_MAP_RECORDS = Dataset(
    name="map_records",
    sql="SELECT person_id, map_record_id FROM leadflow.map_records WHERE account_id = %(account)s",
    columns=("person_id", "map_record_id"),
    expectations=(
        ("ExpectColumnValuesToNotBeNull", {"column": "map_record_id"}),
        # Two people written to one MAP record would merge two persons' data.
        ("ExpectColumnValuesToBeUnique", {"column": "map_record_id"}),
    ),
)

_PULLS = Dataset(
    name="map_pulls",
    sql="""
        SELECT person_id, score, mql_date, mql_date IS NULL OR mql_date <= %(now)s::date AS mql_not_in_future
        FROM leadflow.map_pulls WHERE account_id = %(account)s AND run_id = %(run)s
    """,
    columns=("person_id", "score", "mql_date", "mql_not_in_future"),
    expectations=(
        ("ExpectColumnValuesToBeUnique", {"column": "person_id"}),
        ("ExpectColumnValuesToBeBetween", {"column": "score", "min_value": -1000, "max_value": 100000}),
        ("ExpectColumnValuesToBeInSet", {"column": "mql_not_in_future", "value_set": [True]}),
    ),
)

_CRM = Dataset(
    name="crm_opportunities",
    sql="""
        SELECT opportunity_id, created_at, NOT is_won OR is_closed AS won_implies_closed
        FROM leadflow.crm_opportunities WHERE account_id = %(account)s
    """,
    columns=("opportunity_id", "created_at", "won_implies_closed"),
    expectations=(
        ("ExpectColumnValuesToBeUnique", {"column": "opportunity_id"}),
        ("ExpectColumnValuesToNotBeNull", {"column": "created_at"}),
        ("ExpectColumnValuesToBeInSet", {"column": "won_implies_closed", "value_set": [True]}),
    ),
)

_ATTRIBUTION = Dataset(
    name="attribution",
    sql="""
        SELECT a.lead_id, a.opportunity_id, a.kind, a.days_before,
               a.rule_version = acc.attribution_rule_version AS current_rules,
               a.kind <> 'triggered' OR a.days_before >= 0 AS triggered_after_conversion
        FROM leadflow.attribution a JOIN leadflow.accounts acc ON acc.account_id = a.account_id
        WHERE a.account_id = %(account)s
    """,
    columns=("lead_id", "opportunity_id", "kind", "days_before", "current_rules", "triggered_after_conversion"),
    expectations=(
        ("ExpectColumnValuesToBeInSet", {"column": "kind", "value_set": ["triggered", "influenced"]}),
        ("ExpectCompoundColumnsToBeUnique", {"column_list": ["lead_id", "opportunity_id", "kind"]}),
        ("ExpectColumnValuesToBeInSet", {"column": "current_rules", "value_set": [True]}),
        ("ExpectColumnValuesToBeInSet", {"column": "triggered_after_conversion", "value_set": [True]}),
    ),
)

_REVIEW = Dataset(
    name="review_queue",
    sql="""
        SELECT lead_id, status,
               status IN ('pending', 'expired') OR decided_at IS NOT NULL AS decided_when_closed,
               status <> 'expired' OR deadline_action IS NOT NULL AS policy_when_expired
        FROM leadflow.review_queue WHERE account_id = %(account)s
    """,
    columns=("lead_id", "status", "decided_when_closed", "policy_when_expired"),
    expectations=(
        ("ExpectColumnValuesToBeInSet", {"column": "status", "value_set": ["pending", "verified", "corrected", "rejected", "expired"]}),
        ("ExpectColumnValuesToBeInSet", {"column": "decided_when_closed", "value_set": [True]}),
        ("ExpectColumnValuesToBeInSet", {"column": "policy_when_expired", "value_set": [True]}),
    ),
)

_SERVICE_LEVELS = Dataset(
    name="service_levels",
    sql="""
        SELECT promise, measured, met, breached, met + breached = measured AS counts_add_up
        FROM leadflow.service_levels WHERE account_id = %(account)s AND run_id = %(run)s
    """,
    columns=("promise", "measured", "met", "breached", "counts_add_up"),
    expectations=(
        ("ExpectColumnValuesToBeUnique", {"column": "promise"}),
        ("ExpectColumnValuesToBeBetween", {"column": "measured", "min_value": 1}),
        ("ExpectColumnValuesToBeInSet", {"column": "counts_add_up", "value_set": [True]}),
    ),
)

CHECKS: dict[str, tuple[Dataset, ...]] = {
    "check_leads": (_LEADS, _QUARANTINE),
    "check_enrichment": (_ENRICHMENT,),
    "check_push": (_PUSH, _MAP_RECORDS),
    "check_map_pull": (_PULLS,),
    "check_crm": (_CRM,),
    "check_attribution": (_ATTRIBUTION,),
    "check_report": (_REVIEW, _SERVICE_LEVELS),
}


class Validator:
    """An ephemeral Great Expectations context with one pandas data source."""

    def __init__(self) -> None:
        import great_expectations as gx

        self._gx = gx
        self.context = gx.get_context(mode="ephemeral")
        source = self.context.data_sources.add_pandas("leadflow")
        self.batch_definition = source.add_dataframe_asset("rows").add_batch_definition_whole_dataframe("all")
        self._suites: dict[str, Any] = {}

    def suite(self, check: str, dataset: Dataset):
        key = f"{check}.{dataset.name}"
        if key not in self._suites:
            suite = self.context.suites.add(self._gx.ExpectationSuite(name=key))
            for name, kwargs in dataset.expectations:
                suite.add_expectation(getattr(self._gx.expectations, name)(**kwargs))
            self._suites[key] = suite
        return self._suites[key]

    def validate(self, check: str, dataset: Dataset, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        import pandas as pd

        frame = pd.DataFrame(rows, columns=list(dataset.columns))
        batch = self.batch_definition.get_batch(batch_parameters={"dataframe": frame})
        outcome = batch.validate(self.suite(check, dataset))
        results = []
        for item in outcome.results:
            config = item.expectation_config
            kwargs = config.kwargs
            column = kwargs.get("column") or ",".join(kwargs.get("column_list") or [])
            observed = {k: v for k, v in (item.result or {}).items() if k in ("element_count", "unexpected_count", "unexpected_percent", "observed_value")}
            results.append(
                {
                    "expectation": f"{dataset.name}.{config.type}",
                    "column": column,
                    "success": bool(item.success),
                    "observed": json.loads(json.dumps(observed, default=str)),
                }
            )
        return results


def run_check(ctx: RunContext, check: str, validator: Validator | None = None) -> dict[str, bool]:
    """Validate every selected account for ``check``; return account -> passed."""
    datasets = CHECKS[check]
    validator = validator or Validator()
    with warehouse.transaction() as cur:
        accounts: list[Account] = load_accounts(cur, ctx.account_ids or None)
    passed: dict[str, bool] = {}
    params_base = {"run": ctx.run_id, "now": ctx.now, "start": ctx.window_start, "end": ctx.window_end}
    for account in accounts:
        with warehouse.transaction() as cur:
            results = []
            for dataset in datasets:
                cur.execute(dataset.sql, {**params_base, "account": account.account_id})
                rows = [dict(row) for row in cur.fetchall()]
                results.extend(validator.validate(check, dataset, rows))
            cur.execute("DELETE FROM leadflow.dq_results WHERE run_id = %s AND check_name = %s AND account_id = %s", (ctx.run_id, check, account.account_id))
            for item in results:
                cur.execute(
                    """
                    INSERT INTO leadflow.dq_results (run_id, check_name, account_id, expectation, column_name, success, observed, checked_at)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                    ON CONFLICT (run_id, check_name, account_id, expectation, column_name)
                    DO UPDATE SET success = EXCLUDED.success, observed = EXCLUDED.observed, checked_at = EXCLUDED.checked_at
                    """,
                    (ctx.run_id, check, account.account_id, item["expectation"], item["column"], item["success"], json.dumps(item["observed"]), ctx.now),
                )
            failed = [f"{item['expectation']}({item['column']})" for item in results if not item["success"]]
            status = "failed" if failed else "success"
            record_step(cur, ctx, check, account.account_id, status, detail=("failed: " + ", ".join(failed)) if failed else None)
        passed[account.account_id] = not failed
        log.info("%s: account %s %s (%d expectations)", check, account.account_id, status, len(results))
    return passed
