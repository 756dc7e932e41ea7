"""
### Lead flow: 15-minute ingestion

**Owner:** data-platform. **Schedule:** every 15 minutes, data interval = the
window `[data_interval_start, data_interval_end)` in UTC; catchup off (a missed
window is picked up by the next run's overlap or by a backfill).

**What it does, per active account and connected source:** fetches the
window's converted leads, plus `overlap_minutes` before it, from LinkedIn Lead
Sync, Meta Lead Ads and the pixel collector table, and lands the raw payloads.
It normalises them into `leadflow.leads`, or into `leadflow.quarantine` with a
readable reason. It merges the same person across sources, flags test and
spam leads, queues every new lead for review, enriches people, and pushes
ready leads to the account's MAP.
Checks (`check_*`) run Great Expectations after each write; an account that
fails a check is blocked for the rest of the run while others go on.

**Inputs / outputs:** connections `linkedin_<account>`, `meta_<account>`,
`enrichment`, `marketo_<account>` or `hubspot_<account>`, `warehouse`;
writes schema `leadflow`. Per-account outcomes: `leadflow.step_runs`.

**Rerun safely:** every write is keyed by business ids, so clearing any task
or the whole run converges to the same warehouse and MAP state. One account:
trigger with `account_ids=["northwind"]`. One window: trigger with
`window_start` set to the window's UTC start (the trigger form's param), with
an explicit data interval through the REST API, or with
`airflow backfill create --dag-id lead_flow_15min --from-date ... --to-date ...`.

**Known errors:**
- `AccountsFailed: fetch_* failed for ... PermanentError ... token` - the
  account's vendor token was revoked or expired; renew the connection, clear.
- `... QuotaExhausted` in `leadflow.step_runs` (status skipped) - daily vendor
  quota used up; nothing to do, the next run resumes.
- `check_* failed` - see `leadflow.dq_results` for the run; fix and clear the
  check task with downstream.
- `blocked by check_leads` in step_runs - upstream check failed for that
  account; clear the check after fixing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from leadflow import tasks
from leadflow.alerting import on_task_failure

DEFAULT_ARGS = {
    "owner": "data-platform",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=3),
    "execution_timeout": timedelta(minutes=10),
    "on_failure_callback": on_task_failure,
}
# Checks validate data that a retry would not change.
CHECK_ARGS = {"retries": 0, "trigger_rule": "all_done"}


@dag(
    dag_id="lead_flow_15min",
    schedule=CronDataIntervalTimetable("*/15 * * * *", timezone="UTC"),
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=14),
    default_args=DEFAULT_ARGS,
    tags=["leadflow", "ingestion"],
    doc_md=__doc__,
    params={
        "account_ids": Param([], type="array", items={"type": "string"}, description="Only these accounts; empty means every active account."),
        "overlap_minutes": Param(10, type="integer", minimum=0, maximum=180, description="Minutes fetched before the window start, for late-arriving leads."),
        "window_start": Param(
            None,
            type=["null", "string"],
            format="date-time",
            description="Rerun this 15-minute window (UTC start, e.g. 2026-11-30T09:00:00Z) instead of the run's data interval.",
        ),
    },
)
def lead_flow_15min():
    @task
    def prepare_run(**context):
        return tasks.prepare_run(context)

    @task
    def fetch_linkedin_leads(**context):
        return tasks.fetch_linkedin_leads(context)

    @task
    def fetch_meta_leads(**context):
        return tasks.fetch_meta_leads(context)

    @task
    def collect_pixel_leads(**context):
        return tasks.collect_pixel_leads(context)

    @task(trigger_rule="all_done")
    def normalise_leads(**context):
        return tasks.normalise_leads(context)

    @task(**CHECK_ARGS)
    def check_leads(**context):
        return tasks.run_check(context, "check_leads")

    @task(trigger_rule="all_done")
    def enrich_leads(**context):
        return tasks.enrich_leads(context)

    @task(**CHECK_ARGS)
    def check_enrichment(**context):
        return tasks.run_check(context, "check_enrichment")

    @task(trigger_rule="all_done")
    def push_ready_leads(**context):
        return tasks.push_ready_leads(context)

    @task(**CHECK_ARGS)
    def check_push(**context):
        return tasks.run_check(context, "check_push")

    prepared = prepare_run()
    fetched = [fetch_linkedin_leads(), fetch_meta_leads(), collect_pixel_leads()]
    normalised = normalise_leads()
    prepared >> fetched >> normalised
    normalised >> check_leads() >> enrich_leads() >> check_enrichment() >> push_ready_leads() >> check_push()


lead_flow_15min()
