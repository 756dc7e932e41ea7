"""Per-account isolation for steps that process every account in one task.

A step runs its function once per account, each in its own transaction. An
account whose function raises is recorded as failed, and the others go on.
The task then fails at the end and names the failed accounts, so the UI shows
red. A retry or a clear reprocesses them, which is safe because the functions
are idempotent. An account whose upstream step or data-quality check did not
succeed in this run is recorded as blocked and not processed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from leadflow import warehouse
from leadflow.accounts import Account, load_accounts
from leadflow.clients.base import QuotaExhausted
from leadflow.runtime import RunContext

log = logging.getLogger(__name__)


class AccountsFailed(RuntimeError):
    """Some accounts failed a step; the others completed."""

    def __init__(self, step: str, failures: dict[str, str]):
        self.step = step
        self.failures = failures
        listed = "; ".join(f"{account}: {error}" for account, error in sorted(failures.items()))
        super().__init__(f"{step} failed for {len(failures)} account(s): {listed}")


@dataclass
class StepResult:
    """Counts an account's step reports: rows read, written and rejected."""

    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    detail: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def record_step(cur, ctx: RunContext, step: str, account_id: str, status: str, result: StepResult | None = None, detail: str | None = None) -> None:
    result = result or StepResult()
    cur.execute(
        """
        INSERT INTO leadflow.step_runs (run_id, step, account_id, status, rows_in, rows_out, rows_rejected, detail,
                                        window_start, window_end, event_at, finished_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, clock_timestamp())
        ON CONFLICT (run_id, step, account_id) DO UPDATE SET
            status = EXCLUDED.status, rows_in = EXCLUDED.rows_in, rows_out = EXCLUDED.rows_out,
            rows_rejected = EXCLUDED.rows_rejected, detail = EXCLUDED.detail, event_at = EXCLUDED.event_at,
            finished_at = EXCLUDED.finished_at
        """,
        (
            ctx.run_id, step, account_id, status, result.rows_in, result.rows_out, result.rows_rejected,
            (detail or result.detail or "")[:2000] or None, ctx.window_start, ctx.window_end, ctx.now,
        ),
    )


def blocking_steps(cur, ctx: RunContext, account_id: str, requires: list[str]) -> list[str]:
    """Return the required steps that did not succeed for the account in this run."""
    if not requires:
        return []
    cur.execute(
        "SELECT step, status FROM leadflow.step_runs WHERE run_id = %s AND account_id = %s AND step = ANY(%s)",
        (ctx.run_id, account_id, requires),
    )
    status = {row["step"]: row["status"] for row in cur.fetchall()}
    return [step for step in requires if status.get(step) != "success"]


def run_per_account(
    ctx: RunContext,
    step: str,
    work: Callable[[Any, Account], StepResult],
    *,
    requires: list[str] | None = None,
    applies: Callable[[Account], bool] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run ``work(cursor, account)`` for each selected account; return per-account outcomes."""
    with warehouse.transaction() as cur:
        accounts = load_accounts(cur, ctx.account_ids or None)
    outcomes: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    for account in accounts:
        if applies is not None and not applies(account):
            continue
        with warehouse.transaction() as cur:
            blockers = blocking_steps(cur, ctx, account.account_id, requires or [])
            if blockers:
                detail = "blocked by " + ", ".join(blockers)
                record_step(cur, ctx, step, account.account_id, "blocked", detail=detail)
                log.warning("%s: account %s %s", step, account.account_id, detail)
                outcomes[account.account_id] = {"status": "blocked", "detail": detail}
                continue
        try:
            with warehouse.transaction() as cur:
                result = work(cur, account)
                record_step(cur, ctx, step, account.account_id, "success", result)
        except QuotaExhausted as error:
            # A used-up daily quota stops this account cleanly; the next run resumes.
            with warehouse.transaction() as cur:
                record_step(cur, ctx, step, account.account_id, "skipped", detail=str(error))
            log.warning("%s: account %s stopped on quota: %s", step, account.account_id, error)
            outcomes[account.account_id] = {"status": "skipped", "detail": str(error)}
            continue
        except Exception as error:  # one account's failure must not stop the others
            log.exception("%s failed for account %s", step, account.account_id)
            message = f"{type(error).__name__}: {error}"
            with warehouse.transaction() as cur:
                record_step(cur, ctx, step, account.account_id, "failed", detail=message)
            failures[account.account_id] = message
            outcomes[account.account_id] = {"status": "failed", "detail": message}
            continue
        log.info(
            "%s: account %s in=%d out=%d rejected=%d", step, account.account_id, result.rows_in, result.rows_out, result.rows_rejected
        )
        outcomes[account.account_id] = {"status": "success", "rows_in": result.rows_in, "rows_out": result.rows_out, "rows_rejected": result.rows_rejected, **result.extra}
    if failures:
        raise AccountsFailed(step, failures)
    return outcomes
