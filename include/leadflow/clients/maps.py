"""The interface the pipeline uses to write leads to and read them from a MAP.

A MAP (marketing automation platform) is Marketo or HubSpot. Both clients
take records keyed by the MAP's own field names and split batches to the
MAP's limit. Writes return one ``WriteResult`` per input record in input
order, so the caller can store each MAP id next to the lead it came from.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from leadflow.clients.base import ClientConfig, RetryPolicy

T = TypeVar("T")

# WriteResult.status values.
STATUS_CREATED = "created"
STATUS_UPDATED = "updated"
STATUS_SKIPPED = "skipped"
STATUS_FAILED = "failed"

# WriteResult.reason values: short phrases a person can read in a push log.
# The MAP's own code and message go to ``detail``.
REASON_EXISTS = "exists"  # create found a record with the same email
REASON_NOT_FOUND = "not found"  # update named an id the MAP does not have (merged, deleted or archived)
REASON_MULTIPLE_MATCHES = "multiple matches"  # the lookup matched several records
REASON_UNKNOWN_FIELD = "unknown field"  # the record names a field the MAP does not define
REASON_CONFLICT = "conflict"  # the email already belongs to another record
REASON_INVALID = "invalid"  # the MAP rejected a value or the batch
REASON_NO_RESULT = "no result"  # the MAP's response did not mention this record


@dataclass(frozen=True)
class MapRecord:
    """One record as the MAP stores it, with ``fields`` keyed by the MAP's field names."""

    id: str
    email: str | None
    updated_at: datetime | None
    fields: dict[str, Any]


@dataclass(frozen=True)
class WriteResult:
    """The outcome of writing one record.

    ``status`` is created, updated, skipped (the MAP declined the record, for
    example because the email exists) or failed (the MAP rejected it or gave
    no answer for it). ``reason`` is one of the ``REASON_*`` values and
    ``detail`` carries the MAP's code and message.
    """

    ok: bool
    id: str | None
    status: str
    reason: str | None
    detail: str | None = None


class MapClient(ABC):
    """Reads and writes one account's MAP records."""

    map_type: str
    # Records per write call; larger inputs are split by the client.
    max_batch: int
    # MAP field name of the primary email address.
    email_field: str = "email"

    @abstractmethod
    def find_by_emails(self, emails: list[str], fields: list[str] | None = None) -> dict[str, list[MapRecord]]:
        """Find every record whose primary email matches, ignoring case.

        Keys are the lower-cased emails, and an email without a match is absent.
        ``fields`` adds MAP fields to each record's ``fields``.
        """

    @abstractmethod
    def existing_ids(self, ids: list[str]) -> set[str]:
        """Return the subset of ``ids`` the MAP still has (not deleted, merged away or archived)."""

    @abstractmethod
    def create(self, records: list[dict[str, Any]]) -> list[WriteResult]:
        """Create records, one result per input in input order.

        A record whose email already exists is never duplicated: it comes back
        skipped with reason ``exists``.
        """

    @abstractmethod
    def update(self, records: list[tuple[str, dict[str, Any]]]) -> list[WriteResult]:
        """Update records by MAP id, one result per input in input order."""

    @abstractmethod
    def read(self, ids: list[str], fields: list[str]) -> dict[str, dict[str, Any]]:
        """Read the current values of ``fields`` for each id. Missing ids are absent from the result."""

    def close(self) -> None:
        """Release the HTTP session."""
        session = getattr(self, "session", None)
        if session is not None:
            session.close()


def chunked(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Split ``items`` into lists of at most ``size`` items, keeping order."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def unique_emails(emails: list[str]) -> list[str]:
    """Strip, lower-case and de-duplicate emails, keeping first-seen order and dropping blanks."""
    seen: dict[str, None] = {}
    for email in emails:
        key = (email or "").strip().lower()
        if key:
            seen.setdefault(key, None)
    return list(seen)


def make_map_client(map_type: str, config: ClientConfig, policy: RetryPolicy | None = None) -> MapClient:
    """Build the client for ``map_type`` (marketo or hubspot)."""
    if map_type == "marketo":
        from leadflow.clients.marketo import MarketoClient

        return MarketoClient(config, policy)
    if map_type == "hubspot":
        from leadflow.clients.hubspot import HubSpotClient

        return HubSpotClient(config, policy)
    raise ValueError(f"unsupported MAP type {map_type!r}; expected 'marketo' or 'hubspot'")
