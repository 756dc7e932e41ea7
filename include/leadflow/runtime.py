"""Run-level context shared by the steps: window, event clock, account selection."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

# Set to 1 to stamp events with the run's data interval end instead of the wall
# clock. Replays of recorded traffic (the demo, whole-DAG tests) use it so
# their service-level figures are reproducible; production leaves it unset.
REPLAY_ENV = "LEADFLOW_REPLAY"


def replay_mode() -> bool:
    return os.environ.get(REPLAY_ENV) == "1"


def as_utc(value: datetime) -> datetime:
    """Return a plain ``datetime`` in UTC (Airflow passes pendulum instances)."""
    return datetime.fromtimestamp(value.timestamp(), UTC)


def event_now(data_interval_end: datetime, replay_delay: timedelta = timedelta(0)) -> datetime:
    """Return the instant to record for events of a run.

    In replay mode a run is stamped at its data interval end plus
    ``replay_delay``: the moment it would run in production at the latest.
    """
    if replay_mode():
        return as_utc(data_interval_end) + replay_delay
    return datetime.now(UTC)


@dataclass
class RunContext:
    """The window, event clock and account selection of one DAG run."""

    run_id: str
    dag_id: str
    window_start: datetime
    window_end: datetime
    now: datetime
    # Minutes fetched before the window start, for leads that a platform makes
    # available after their submitted time.
    overlap: timedelta = timedelta(minutes=10)
    account_ids: list[str] = field(default_factory=list)

    @property
    def fetch_start(self) -> datetime:
        return self.window_start - self.overlap

    @classmethod
    def from_airflow(cls, context: dict, overlap_minutes: int = 10, replay_delay: timedelta = timedelta(0)) -> RunContext:
        """Build from an Airflow task context; params may narrow the accounts."""
        params = context.get("params") or {}
        accounts = params.get("account_ids") or []
        if isinstance(accounts, str):
            accounts = [a.strip() for a in accounts.split(",") if a.strip()]
        start = context["data_interval_start"]
        end = context["data_interval_end"]
        return cls(
            run_id=context["run_id"],
            dag_id=context["dag"].dag_id,
            window_start=as_utc(start),
            window_end=as_utc(end),
            now=event_now(end, replay_delay),
            overlap=timedelta(minutes=int(params.get("overlap_minutes", overlap_minutes))),
            account_ids=list(accounts),
        )
