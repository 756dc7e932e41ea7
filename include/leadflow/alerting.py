"""One alerting module: task failures, failed checks, review deadlines, service-level breaches.

Alerts go to a Slack-style incoming webhook (connection ``alerts_webhook``:
its host, port and schema form the base URL, ``extra.path`` the hook path)
and by email (connection ``alerts_smtp``: host, port, optional login and
password, ``extra.from`` and ``extra.to``). A channel without a connection is
skipped. Messages carry ids, counts and next steps, never personal data, and
each alert is recorded in ``leadflow.alerts``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

WEBHOOK_CONN_ID = "alerts_webhook"
SMTP_CONN_ID = "alerts_smtp"

NEXT_STEPS = {
    "task_failed": "Open the log, fix the cause, then clear the task (downstream included) to rerun; reruns are idempotent.",
    "dq_failed": "Inspect leadflow.dq_results for this run and account; fix the data or the rule, then clear the check task.",
    "review_overdue": "Ask the review desk to decide these leads; the account's deadline policy has been applied.",
    "sla_breach": "See leadflow.service_levels for the listed leads and the step that was late.",
    "quota": "The vendor's daily quota is used up; the next run resumes where this one stopped.",
}


def _get_connection(conn_id: str):
    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except Exception:  # an unset connection only disables that channel
        return None


def _webhook_url(conn) -> str:
    host = conn.host or ""
    if "://" not in host:
        host = f"{conn.schema or 'https'}://{host}"
    if conn.port:
        host = f"{host.rstrip('/')}:{conn.port}"
    path = (conn.extra_dejson or {}).get("path", "")
    return host.rstrip("/") + path


def format_message(kind: str, summary: str, fields: dict[str, Any]) -> str:
    lines = [f"[lead flow] {kind.replace('_', ' ')}: {summary}"]
    for name in ("dag_id", "task_id", "run_id", "try_number", "account_id", "log_url"):
        if fields.get(name) not in (None, ""):
            lines.append(f"{name}: {fields[name]}")
    lines.append(f"next step: {NEXT_STEPS.get(kind, 'See the run log.')}")
    return "\n".join(lines)


def send_alert(kind: str, summary: str, **fields: Any) -> list[str]:
    """Send one alert to every configured channel; return the channels that accepted it."""
    from leadflow import alerts_transport

    message = format_message(kind, summary, fields)
    channels: list[str] = []
    webhook = _get_connection(WEBHOOK_CONN_ID)
    if webhook is not None:
        try:
            alerts_transport.post_webhook(_webhook_url(webhook), message)
            channels.append("webhook")
        except Exception as error:  # an alert channel failure is logged, never raised
            log.error("alert webhook failed: %s", error)
    smtp = _get_connection(SMTP_CONN_ID)
    if smtp is not None:
        extra = smtp.extra_dejson or {}
        recipients = extra.get("to") or []
        if isinstance(recipients, str):
            recipients = [r.strip() for r in recipients.split(",") if r.strip()]
        try:
            alerts_transport.send_email(
                smtp.host,
                int(smtp.port or 25),
                extra.get("from", "leadflow@localhost"),
                recipients,
                message.splitlines()[0],
                message,
                login=smtp.login or None,
                password=smtp.password or None,
                use_tls=bool(extra.get("use_tls", False)),
            )
            channels.append("email")
        except Exception as error:  # an alert channel failure is logged, never raised
            log.error("alert email failed: %s", error)
    _record(kind, message.splitlines()[0], fields, channels)
    log.warning("alert %s sent to %s: %s", kind, channels or "no channel", summary)
    return channels


def _record(kind: str, summary: str, fields: dict[str, Any], channels: list[str]) -> None:
    from leadflow import warehouse

    try:
        with warehouse.transaction() as cur:
            cur.execute(
                """
                INSERT INTO leadflow.alerts (kind, account_id, dag_id, run_id, task_id, summary, channels, sent_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                """,
                (kind, fields.get("account_id"), fields.get("dag_id"), fields.get("run_id"), fields.get("task_id"), summary[:1000], channels, datetime.now(UTC)),
            )
    except Exception as error:  # the warehouse may be the thing that is down
        log.error("could not record alert in the warehouse: %s", error)


def context_fields(context: dict[str, Any]) -> dict[str, Any]:
    ti = context.get("ti") or context.get("task_instance")
    return {
        "dag_id": getattr(context.get("dag"), "dag_id", None) or getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": context.get("run_id") or getattr(ti, "run_id", None),
        "try_number": getattr(ti, "try_number", None),
        "log_url": getattr(ti, "log_url", None),
    }


def on_task_failure(context: dict[str, Any]) -> None:
    """Failure callback for every task: alert with ids and the error type, not its payload."""
    error = context.get("exception")
    failed_accounts = getattr(error, "failures", None)
    if failed_accounts:
        summary = f"{type(error).__name__} for accounts {', '.join(sorted(failed_accounts))}"
    else:
        summary = f"{type(error).__name__ if error else 'task failed'}: {str(error)[:300] if error else ''}"
    send_alert("task_failed", summary, **context_fields(context))
