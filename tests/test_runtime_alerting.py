from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pendulum

from leadflow import alerting
from leadflow.runtime import RunContext


def airflow_context(params):
    return {
        "params": params,
        "run_id": "manual__2026-11-30",
        "dag": SimpleNamespace(dag_id="lead_flow_15min"),
        "data_interval_start": pendulum.datetime(2026, 11, 30, 9, 0, tz="UTC"),
        "data_interval_end": pendulum.datetime(2026, 11, 30, 9, 15, tz="UTC"),
    }


def test_context_window_is_plain_utc(monkeypatch):
    monkeypatch.delenv("LEADFLOW_REPLAY", raising=False)
    ctx = RunContext.from_airflow(airflow_context({}))
    assert ctx.window_start == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert type(ctx.window_start) is datetime
    assert ctx.fetch_start == datetime(2026, 11, 30, 8, 50, tzinfo=UTC)


def test_account_param_narrows_accounts():
    assert RunContext.from_airflow(airflow_context({"account_ids": ["northwind"]})).account_ids == ["northwind"]
    assert RunContext.from_airflow(airflow_context({"account_ids": "northwind, helios"})).account_ids == ["northwind", "helios"]
    assert RunContext.from_airflow(airflow_context({"account_ids": []})).account_ids == []


def test_overlap_param_moves_fetch_start():
    ctx = RunContext.from_airflow(airflow_context({"overlap_minutes": 30}))
    assert ctx.fetch_start == datetime(2026, 11, 30, 8, 30, tzinfo=UTC)


def test_replay_clock_uses_interval_end(monkeypatch):
    monkeypatch.setenv("LEADFLOW_REPLAY", "1")
    ctx = RunContext.from_airflow(airflow_context({}), replay_delay=timedelta(hours=24))
    assert ctx.now == datetime(2026, 12, 1, 9, 15, tzinfo=UTC)


def test_wall_clock_outside_replay(monkeypatch):
    monkeypatch.delenv("LEADFLOW_REPLAY", raising=False)
    before = datetime.now(UTC)
    ctx = RunContext.from_airflow(airflow_context({}))
    assert before <= ctx.now <= datetime.now(UTC)


def test_alert_message_carries_ids_and_next_step():
    message = alerting.format_message(
        "review_overdue",
        "3 leads passed the 24 h review deadline (policy hold); lead ids 4, 9, 12",
        {"dag_id": "lead_flow_daily", "task_id": "apply_review_deadlines", "run_id": "r1", "account_id": "northwind", "try_number": 1},
    )
    lines = message.splitlines()
    assert lines[0] == "[lead flow] review overdue: 3 leads passed the 24 h review deadline (policy hold); lead ids 4, 9, 12"
    assert "dag_id: lead_flow_daily" in lines
    assert "account_id: northwind" in lines
    assert lines[-1].startswith("next step: Ask the review desk")


def test_window_start_param_overrides_interval():
    ctx = RunContext.from_airflow(airflow_context({"window_start": "2026-11-30T10:30:00Z"}))
    assert ctx.window_start == datetime(2026, 11, 30, 10, 30, tzinfo=UTC)
    assert ctx.window_end == datetime(2026, 11, 30, 10, 45, tzinfo=UTC)


def test_daily_window_start_param_spans_a_day():
    ctx = RunContext.from_airflow(airflow_context({"window_start": "2026-11-29T00:00:00+00:00"}), window=timedelta(days=1))
    assert ctx.window_start == datetime(2026, 11, 29, tzinfo=UTC)
    assert ctx.window_end == datetime(2026, 11, 30, tzinfo=UTC)


def test_missing_interval_takes_last_complete_window():
    context = airflow_context({})
    del context["data_interval_start"]
    del context["data_interval_end"]
    context["dag_run"] = SimpleNamespace(run_after=pendulum.datetime(2026, 11, 30, 9, 22, 41, tz="UTC"))
    ctx = RunContext.from_airflow(context)
    assert ctx.window_start == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert ctx.window_end == datetime(2026, 11, 30, 9, 15, tzinfo=UTC)
