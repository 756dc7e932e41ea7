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


def parse_instant(value: str) -> datetime:
    """Parse an ISO-8601 instant; a value without an offset is taken as UTC."""
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def floor_to(value: datetime, step: timedelta) -> datetime:
    """Round ``value`` down to a multiple of ``step`` since the Unix epoch."""
    seconds = int(step.total_seconds())
    return datetime.fromtimestamp(int(value.timestamp()) // seconds * seconds, UTC)


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
    def from_airflow(
        cls,
        context: dict,
        overlap_minutes: int = 10,
        replay_delay: timedelta = timedelta(0),
        window: timedelta = timedelta(minutes=15),
    ) -> RunContext:
        """Build from an Airflow task context.

        The ``account_ids`` param narrows the accounts. The ``window_start``
        param picks the window ``[window_start, window_start + window)``
        instead of the run's data interval. A run without a data interval (a
        manual trigger with no logical date) takes the last complete window
        before it was triggered.
        """
        params = context.get("params") or {}
        accounts = params.get("account_ids") or []
        if isinstance(accounts, str):
            accounts = [a.strip() for a in accounts.split(",") if a.strip()]
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if params.get("window_start"):
            start = parse_instant(str(params["window_start"]))
            end = start + window
        elif start is None or end is None:
            run_after = context["dag_run"].run_after
            end = floor_to(as_utc(run_after), window)
            start = end - window
        return cls(
            run_id=context["run_id"],
            dag_id=context["dag"].dag_id,
            window_start=as_utc(start),
            window_end=as_utc(end),
            now=event_now(end, replay_delay),
            overlap=timedelta(minutes=int(params.get("overlap_minutes", overlap_minutes))),
            account_ids=list(accounts),
        )
