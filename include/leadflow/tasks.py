"""Task bodies of both DAGs. Each takes the Airflow task context and returns a small summary.

The DAG files only wire these together. A body raises ``AccountsFailed`` when
some accounts failed, after the others completed.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from leadflow import alerting, warehouse
from leadflow.runtime import RunContext
from leadflow.steps import enrich as enrich_step
from leadflow.steps import ingest, lifecycle
from leadflow.steps import push as push_step
from leadflow.steps.common import AccountsFailed, run_per_account

log = logging.getLogger(__name__)

# A daily run's review gate waits at most this long after its interval ends;
# replays stamp daily events at that moment.
DAILY_REPLAY_DELAY = timedelta(hours=24)


def _ctx(context: dict[str, Any], daily: bool = False) -> RunContext:
    if daily:
        return RunContext.from_airflow(context, replay_delay=DAILY_REPLAY_DELAY, window=timedelta(days=1))
    return RunContext.from_airflow(context)


def _summary(outcomes: dict[str, dict[str, Any]], context: dict[str, Any] | None = None) -> dict[str, str]:
    """Return account -> status for XCom, alerting once per account stopped by a vendor quota."""
    if context is not None:
        for account, outcome in sorted(outcomes.items()):
            if outcome["status"] == "skipped":
                alerting.send_alert("quota", outcome.get("detail", "vendor quota used up"), account_id=account, **alerting.context_fields(context))
    return {account: outcome["status"] for account, outcome in outcomes.items()}


def prepare_run(context: dict[str, Any], daily: bool = False) -> list[str]:
    """Apply pending warehouse migrations and check the account_ids param."""
    warehouse.migrate()
    ctx = _ctx(context, daily)
    with warehouse.transaction() as cur:
        cur.execute("SELECT account_id FROM leadflow.accounts WHERE active ORDER BY account_id")
        active = [row["account_id"] for row in cur.fetchall()]
    unknown = sorted(set(ctx.account_ids) - set(active))
    if unknown:
        raise ValueError(f"account_ids param names unknown or inactive accounts: {', '.join(unknown)}; active: {', '.join(active)}")
    selected = ctx.account_ids or active
    log.info("run %s window %s..%s accounts %s", ctx.run_id, ctx.window_start, ctx.window_end, selected)
    return selected


# -- 15-minute DAG -----------------------------------------------------------

def fetch_linkedin_leads(context: dict[str, Any]) -> dict[str, str]:
    ctx = _ctx(context)
    outcomes = run_per_account(ctx, "fetch_linkedin_leads", lambda cur, a: ingest.fetch_linkedin(cur, ctx, a), applies=lambda a: "linkedin" in a.sources)
    return _summary(outcomes, context)


def fetch_meta_leads(context: dict[str, Any]) -> dict[str, str]:
    ctx = _ctx(context)
    outcomes = run_per_account(ctx, "fetch_meta_leads", lambda cur, a: ingest.fetch_meta(cur, ctx, a), applies=lambda a: "meta" in a.sources)
    return _summary(outcomes, context)


def collect_pixel_leads(context: dict[str, Any]) -> dict[str, str]:
    ctx = _ctx(context)
    outcomes = run_per_account(ctx, "collect_pixel_leads", lambda cur, a: ingest.collect_pixel(cur, ctx, a), applies=lambda a: "pixel" in a.sources)
    return _summary(outcomes, context)


def normalise_leads(context: dict[str, Any]) -> dict[str, str]:
    ctx = _ctx(context)
    return _summary(run_per_account(ctx, "normalise_leads", lambda cur, a: ingest.normalise(cur, ctx, a)))


def enrich_leads(context: dict[str, Any]) -> dict[str, str]:
    ctx = _ctx(context)
    outcomes = run_per_account(ctx, "enrich_leads", lambda cur, a: enrich_step.enrich(cur, ctx, a), requires=["normalise_leads", "check_leads"])
    return _summary(outcomes, context)


def push_ready_leads(context: dict[str, Any], daily: bool = False) -> dict[str, str]:
    ctx = _ctx(context, daily)
    requires = ["repair_map_ids"] if daily else ["enrich_leads", "check_enrichment"]
    outcomes = run_per_account(ctx, "push_ready_leads", lambda cur, a: push_step.push(cur, ctx, a), requires=requires, applies=lambda a: a.map_type is not None)
    return _summary(outcomes, context)


def run_check(context: dict[str, Any], check: str, daily: bool = False) -> dict[str, bool]:
    """Run a data-quality check; alert and fail the task when an account fails it."""
    from leadflow.dq.checks import run_check as validate

    ctx = _ctx(context, daily)
    passed = validate(ctx, check)
    failed = sorted(account for account, ok in passed.items() if not ok)
    if failed:
        raise AccountsFailed(check, {account: "data-quality expectations failed; see leadflow.dq_results" for account in failed})
    return passed


# -- daily DAG ---------------------------------------------------------------

def review_desk_done(context: dict[str, Any]) -> bool:
    """Sensor condition: every lead converted in the interval is decided or past its deadline."""
    ctx = _ctx(context, daily=True)
    waiting = lifecycle.review_backlog(ctx, ctx.now)
    if waiting:
        log.info("waiting for the review desk: %s", ", ".join(f"{a}={n}" for a, n in waiting.items()))
    return not waiting


def apply_review_deadlines(context: dict[str, Any]) -> dict[str, Any]:
    ctx = _ctx(context, daily=True)
    outcomes = run_per_account(ctx, "apply_review_deadlines", lambda cur, a: lifecycle.apply_review_deadlines(cur, ctx, a))
    for account, outcome in outcomes.items():
        expired = outcome.get("expired_lead_ids") or []
        if expired:
            shown = ", ".join(str(i) for i in expired[:30]) + (" ..." if len(expired) > 30 else "")
            alerting.send_alert(
                "review_overdue",
                f"{len(expired)} leads passed the 24 h review deadline (policy {outcome.get('policy')}); lead ids {shown}",
                account_id=account,
                **alerting.context_fields(context),
            )
    return {account: outcome.get("rows_out", 0) for account, outcome in outcomes.items()}


def repair_map_ids(context: dict[str, Any]) -> dict[str, str]:
    ctx = _ctx(context, daily=True)
    outcomes = run_per_account(ctx, "repair_map_ids", lambda cur, a: lifecycle.repair_map_ids(cur, ctx, a), requires=["apply_review_deadlines"], applies=lambda a: a.map_type is not None)
    return _summary(outcomes, context)


def pull_map_values(context: dict[str, Any]) -> dict[str, str]:
    ctx = _ctx(context, daily=True)
    outcomes = run_per_account(ctx, "pull_map_values", lambda cur, a: lifecycle.pull_map_values(cur, ctx, a), applies=lambda a: a.map_type is not None)
    return _summary(outcomes, context)


def pull_new_map_values(context: dict[str, Any]) -> dict[str, str]:
    """Pull values of the MAP records that this run's push created or re-linked."""
    ctx = _ctx(context, daily=True)
    outcomes = run_per_account(
        ctx,
        "pull_new_map_values",
        lambda cur, a: lifecycle.pull_map_values(cur, ctx, a, only_new=True),
        requires=["check_push"],
        applies=lambda a: a.map_type is not None,
    )
    return _summary(outcomes, context)


def pull_crm_records(context: dict[str, Any]) -> dict[str, str]:
    ctx = _ctx(context, daily=True)
    outcomes = run_per_account(ctx, "pull_crm_records", lambda cur, a: lifecycle.pull_crm(cur, ctx, a), applies=lambda a: a.crm_type is not None)
    return _summary(outcomes, context)


def compute_attribution(context: dict[str, Any]) -> dict[str, str]:
    ctx = _ctx(context, daily=True)
    outcomes = run_per_account(
        ctx,
        "compute_attribution",
        lambda cur, a: lifecycle.compute_attribution(cur, ctx, a),
        requires=["check_crm", "apply_review_deadlines"],
        applies=lambda a: a.crm_type is not None,
    )
    return _summary(outcomes, context)


def report_service_levels(context: dict[str, Any]) -> dict[str, Any]:
    """Write the day's service-level report and alert on every breached promise."""
    ctx = _ctx(context, daily=True)
    outcomes = run_per_account(ctx, "report_service_levels", lambda cur, a: lifecycle.report_service_levels(cur, ctx, a))
    for account, outcome in outcomes.items():
        for promise, breach in sorted((outcome.get("breaches") or {}).items()):
            refs = breach["lead_ids"]
            shown = ", ".join(refs[:20]) + (" ..." if len(refs) > 20 else "")
            alerting.send_alert(
                "sla_breach",
                f"{promise}: {breach['breached']} breached on {ctx.window_start.date()}; refs {shown}",
                account_id=account,
                **alerting.context_fields(context),
            )
    return {account: len(outcome.get("breaches") or {}) for account, outcome in outcomes.items()}
