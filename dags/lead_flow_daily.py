"""
### Lead flow: daily lifecycle

**Owner:** data-platform. **Schedule:** daily at 00:00 UTC, data interval =
the previous day `[data_interval_start, data_interval_end)`; catchup off.

**What it does, per active account:**
1. `pull_map_values` reads score, MQL date and the account's custom pull
   fields for every person pushed so far. It does not wait for the review
   desk, so values stay under 24 h old. History goes to `leadflow.map_pulls`,
   the latest values with first and latest MQL dates to `leadflow.map_values`.
2. `wait_for_review_desk` waits (reschedule mode, no worker held) until every
   lead converted in the interval is decided or past its 24 h deadline.
3. `apply_review_deadlines` expires overdue leads, applies the account's
   policy (`hold` or `push_unverified`) and alerts with the lead ids.
4. `repair_map_ids` drops stored MAP ids the MAP no longer has (merged or
   deleted), `push_ready_leads` re-pushes them and retries failed pushes, and
   `pull_new_map_values` pulls the records this push created or re-linked.
5. `pull_crm_records` replaces the account's CRM snapshot (Salesforce
   accounts, contacts, opportunities, contact roles, converted leads) and
   `compute_attribution` recomputes triggered and influenced attribution
   from scratch in one transaction.
6. `report_service_levels` writes `leadflow.service_levels` for the day and
   alerts on each breached promise, naming the account and lead ids;
   `check_report` validates the report and the review queue states.

**Rerun safely:** all steps replace or upsert by business key; clearing any
task converges. One account: trigger with `account_ids`. One day: trigger with
`window_start` set to that day's UTC midnight, with an explicit data interval
through the REST API, or with `airflow backfill create --dag-id lead_flow_daily`.
Changing an account's attribution settings bumps its rule version; the next
run recomputes that account from scratch.

**Known errors:**
- `wait_for_review_desk` timed out - the review desk did not decide leads
  and their deadlines have not passed; check the review queue export.
- `QuotaExhausted` (step_runs status skipped) - vendor daily quota; resumes
  on the next run.
- `check_crm` / `check_attribution` failed - see `leadflow.dq_results`; the
  account's attribution was not replaced, so readers still see the last good one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from leadflow import tasks
from leadflow.alerting import on_task_failure

DEFAULT_ARGS = {
    "owner": "data-platform",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(minutes=45),
    "on_failure_callback": on_task_failure,
}
CHECK_ARGS = {"retries": 0, "trigger_rule": "all_done"}


@dag(
    dag_id="lead_flow_daily",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=30),
    default_args=DEFAULT_ARGS,
    tags=["leadflow", "lifecycle", "attribution"],
    doc_md=__doc__,
    params={
        "account_ids": Param([], type="array", items={"type": "string"}, description="Only these accounts; empty means every active account."),
        "window_start": Param(
            None,
            type=["null", "string"],
            format="date-time",
            description="Rerun this day (UTC midnight, e.g. 2026-11-30T00:00:00Z) instead of the run's data interval.",
        ),
    },
)
def lead_flow_daily():
    @task
    def prepare_run(**context):
        return tasks.prepare_run(context, daily=True)

    @task.sensor(mode="reschedule", poke_interval=300, timeout=timedelta(hours=26).total_seconds())
    def wait_for_review_desk(**context):
        return tasks.review_desk_done(context)

    @task
    def apply_review_deadlines(**context):
        return tasks.apply_review_deadlines(context)

    @task
    def repair_map_ids(**context):
        return tasks.repair_map_ids(context)

    @task(trigger_rule="all_done")
    def push_ready_leads(**context):
        return tasks.push_ready_leads(context, daily=True)

    @task(**CHECK_ARGS)
    def check_push(**context):
        return tasks.run_check(context, "check_push", daily=True)

    @task(trigger_rule="all_done")
    def pull_map_values(**context):
        return tasks.pull_map_values(context)

    @task(trigger_rule="all_done")
    def pull_new_map_values(**context):
        return tasks.pull_new_map_values(context)

    @task(**CHECK_ARGS)
    def check_map_pull(**context):
        return tasks.run_check(context, "check_map_pull", daily=True)

    @task
    def pull_crm_records(**context):
        return tasks.pull_crm_records(context)

    @task(**CHECK_ARGS)
    def check_crm(**context):
        return tasks.run_check(context, "check_crm", daily=True)

    @task(trigger_rule="all_done")
    def compute_attribution(**context):
        return tasks.compute_attribution(context)

    @task(**CHECK_ARGS)
    def check_attribution(**context):
        return tasks.run_check(context, "check_attribution", daily=True)

    @task(trigger_rule="all_done")
    def report_service_levels(**context):
        return tasks.report_service_levels(context)

    @task(**CHECK_ARGS)
    def check_report(**context):
        return tasks.run_check(context, "check_report", daily=True)

    prepared = prepare_run()
    deadlines = apply_review_deadlines()
    push_checked = check_push()
    prepared >> wait_for_review_desk() >> deadlines >> repair_map_ids() >> push_ready_leads() >> push_checked

    map_checked = check_map_pull()
    prepared >> pull_map_values() >> (new_pulled := pull_new_map_values()) >> map_checked
    push_checked >> new_pulled

    crm_checked = check_crm()
    attribution_checked = check_attribution()
    prepared >> pull_crm_records() >> crm_checked
    [crm_checked, deadlines] >> compute_attribution() >> attribution_checked

    [push_checked, map_checked, attribution_checked] >> report_service_levels() >> check_report()


lead_flow_daily()
