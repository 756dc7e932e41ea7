"""Policy checks over every DAG in dags/: the habits each DAG must keep."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from airflow.sdk import CronDataIntervalTimetable, DeltaDataIntervalTimetable

from leadflow.alerting import on_task_failure

DAGS_DIR = Path(__file__).resolve().parents[1] / "dags"
EXPECTED_DAGS = {"lead_flow_15min", "lead_flow_daily"}
RUNBOOK_HEADINGS = ("Owner", "What it does", "Rerun safely", "Known errors")


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory, monkeypatch_module):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


@pytest.fixture(scope="module")
def monkeypatch_module(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("airflow-home")
    mp.setenv("AIRFLOW_HOME", str(home))
    mp.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    yield mp
    mp.undo()


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_expected_dags_present(dagbag):
    assert set(dagbag.dag_ids) == EXPECTED_DAGS


def test_dag_id_matches_file_name(dagbag):
    for dag in dagbag.dags.values():
        assert Path(dag.fileloc).stem == dag.dag_id


def test_owner_and_tags(dagbag):
    for dag in dagbag.dags.values():
        assert "leadflow" in dag.tags, dag.dag_id
        for task in dag.tasks:
            assert task.owner == "data-platform", f"{dag.dag_id}.{task.task_id}"


def test_runbook_docs(dagbag):
    for dag in dagbag.dags.values():
        assert dag.doc_md, dag.dag_id
        for heading in RUNBOOK_HEADINGS:
            assert f"**{heading}" in dag.doc_md, f"{dag.dag_id} runbook lacks {heading}"


def test_data_interval_timetables(dagbag):
    for dag in dagbag.dags.values():
        assert isinstance(dag.timetable, (CronDataIntervalTimetable, DeltaDataIntervalTimetable)), dag.dag_id


def test_catchup_set_explicitly(dagbag):
    for dag in dagbag.dags.values():
        source = Path(dag.fileloc).read_text(encoding="utf-8")
        assert re.search(r"\bcatchup\s*=\s*(True|False)", source), f"{dag.dag_id} leaves catchup to the config default"


def test_failure_callback_on_every_task(dagbag):
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert on_task_failure in callbacks, f"{dag.dag_id}.{task.task_id}"


def test_retries_except_checks(dagbag):
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            if task.task_id.startswith("check_"):
                assert task.retries == 0, f"{dag.dag_id}.{task.task_id} retries a deterministic check"
            else:
                assert task.retries >= 1, f"{dag.dag_id}.{task.task_id} has no retries"


def test_timeouts(dagbag):
    for dag in dagbag.dags.values():
        assert dag.dagrun_timeout is not None, dag.dag_id
        for task in dag.tasks:
            assert task.execution_timeout is not None, f"{dag.dag_id}.{task.task_id}"


def test_sensors_reschedule_with_timeout(dagbag):
    sensors = [task for dag in dagbag.dags.values() for task in dag.tasks if hasattr(task, "poke_interval")]
    assert [s.task_id for s in sensors] == ["wait_for_review_desk"]
    for sensor in sensors:
        assert sensor.mode == "reschedule"
        assert 0 < sensor.timeout <= timedelta(hours=30).total_seconds()


def test_account_param_on_both_dags(dagbag):
    for dag in dagbag.dags.values():
        assert "account_ids" in dag.params, dag.dag_id
        assert dag.params["account_ids"] == []


def test_fifteen_minute_window_and_single_active_run(dagbag):
    dag = dagbag.dags["lead_flow_15min"]
    assert dag.timetable.expression == "*/15 * * * *"
    assert dag.max_active_runs == 1
    assert dag.catchup is False


def test_checks_follow_writes(dagbag):
    dag = dagbag.dags["lead_flow_15min"]
    for write, check in (("normalise_leads", "check_leads"), ("enrich_leads", "check_enrichment"), ("push_ready_leads", "check_push")):
        assert check in dag.get_task(write).downstream_task_ids
