"""HubSpot CRM v3 contacts client: batch writes and reads, search.

The connection's ``password`` is a private-app access token (static, so an
HTTP 401 is a configuration error, not a reason to refresh) and ``host`` is
the API base URL. A 429 from the rolling 10-second limit waits 10 s per
attempt, a 429 from the search limit waits 1 s per attempt, the daily limit
stops the run, and 5xx responses are retried with backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import requests

from leadflow.clients.base import (
    ClientConfig,
    PermanentError,
    QuotaExhausted,
    RetryPolicy,
    Throttled,
    TransientError,
    VendorError,
    json_body,
    send,
    with_retries,
)
from leadflow.clients.maps import (
    REASON_CONFLICT,
    REASON_EXISTS,
    REASON_INVALID,
    REASON_NO_RESULT,
    REASON_NOT_FOUND,
    STATUS_CREATED,
    STATUS_FAILED,
    STATUS_SKIPPED,
    STATUS_UPDATED,
    MapClient,
    MapRecord,
    WriteResult,
    chunked,
    unique_emails,
)

log = logging.getLogger(__name__)

VENDOR = "hubspot"
CONTACTS = "/crm/v3/objects/contacts"
LOOKUP_PROPERTIES = ["email", "lastmodifieddate", "hs_object_id"]


def to_property_value(value: Any) -> str:
    """Convert a Python value to HubSpot's string form (dates as YYYY-MM-DD, instants as ISO UTC with ms)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("datetime property values must be timezone-aware")
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def to_properties(record: dict[str, Any]) -> dict[str, str]:
    """Convert a record to HubSpot properties, leaving out ``None`` values so they do not clear the property."""
    return {name: to_property_value(value) for name, value in record.items() if value is not None}


def parse_hubspot_time(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        log.warning("hubspot: unparseable timestamp %r", value)
        return None


def epoch_ms(instant: datetime) -> int:
    if instant.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    return int(instant.timestamp() * 1000)


def error_for_response(response: requests.Response, what: str, attempt: int) -> VendorError:
    """Map a non-success HubSpot response to a client error, with 429 waits scaled by ``attempt``."""
    status = response.status_code

    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or response.reason or "no message")
    category = body.get("category") or body.get("policyName")
    text = f"{what}: {message}"

    if status == 429:
        policy = body.get("policyName")
        if policy == "DAILY":
            return QuotaExhausted(VENDOR, text, status=status, code=policy)
        if "secondly limit" in message.lower():
            return Throttled(VENDOR, text, status=status, code=policy, retry_after=1.0 * attempt)
        if policy == "TEN_SECONDLY_ROLLING":
            return Throttled(VENDOR, text, status=status, code=policy, retry_after=10.0 * attempt)
        retry_after = response.headers.get("Retry-After")
        hint = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None
        return Throttled(VENDOR, text, status=status, code=policy, retry_after=hint)

    if status == 423:
        # 423 Locked: back off for about two seconds before the next try.
        return Throttled(VENDOR, text, status=status, code=category, retry_after=2.0)
    if status >= 500:
        return TransientError(VENDOR, text, status=status, code=category)
    if status == 401:
        return PermanentError(VENDOR, f"{what}: access token rejected; check the private app token", status=status)
    return PermanentError(VENDOR, text, status=status, code=category)


class HubSpotClient(MapClient):
    """One HubSpot portal's contacts, reached with a private-app token.

    ``config.extra`` may set ``max_batch`` (100), ``search_page_size`` (200),
    ``search_cap`` (10000, the results one search can page through) and
    ``search_in_values`` (100 emails per IN filter).
    """

    map_type = "hubspot"
    email_field = "email"

    def __init__(
        self, config: ClientConfig, policy: RetryPolicy | None = None, session: requests.Session | None = None
    ):
        if not config.password:
            raise ValueError("HubSpot connection needs the private app access token as password")
        self.config = config
        self.policy = policy or RetryPolicy()
        self.session = session or requests.Session()
        self.base_url = config.base_url.rstrip("/")
        extra = config.extra or {}
        self.max_batch = int(extra.get("max_batch", 100))
        self.search_page_size = int(extra.get("search_page_size", 200))
        self.search_cap = int(extra.get("search_cap", 10000))
        self.search_in_values = int(extra.get("search_in_values", 100))

    # -- transport ------------------------------------------------------------------------
    def _post(
        self, path: str, payload: dict[str, Any], *, what: str, accept: tuple[int, ...] = (200, 201, 207)
    ) -> tuple[int, dict]:
        """POST with retries and return the status and body of any response whose status is in ``accept``."""
        url = f"{self.base_url}{path}"
        attempt = 0

        def call() -> tuple[int, dict]:
            nonlocal attempt
            attempt += 1
            headers = {"Authorization": f"Bearer {self.config.password}"}
            response = send(self.session, VENDOR, "POST", url, self.config.timeout, json=payload, headers=headers)
            if response.status_code not in accept:
                raise error_for_response(response, what, attempt)
            body = json_body(VENDOR, response)
            if not isinstance(body, dict):
                raise TransientError(VENDOR, f"{what}: response body is not a JSON object", status=response.status_code)
            return response.status_code, body

        return with_retries(call, self.policy, what=f"hubspot {what}")

    # -- writes -------------------------------------------------------------------------------
    def create(self, records: list[dict[str, Any]]) -> list[WriteResult]:
        """Create contacts with batch/create, giving each input an objectWriteTraceId.

        With trace ids HubSpot returns 207 and reports an existing email per
        record (skipped, reason ``exists``) instead of failing the batch with 409.
        NOTE: a batch retried after a timeout may have been applied the first
        time; its records then come back as ``exists``.
        """
        results: list[WriteResult] = []
        indexed = list(enumerate(records))
        for batch in chunked(indexed, self.max_batch):
            inputs = [
                {"properties": to_properties(record), "objectWriteTraceId": str(index)} for index, record in batch
            ]
            status, body = self._post(
                f"{CONTACTS}/batch/create", {"inputs": inputs}, what="create contacts", accept=(200, 201, 207, 400, 409)
            )
            if status in (400, 409):
                # A 409 means HubSpot ignored the trace ids, so the conflicting record is unknown.
                reason = REASON_INVALID if status == 400 else REASON_CONFLICT
                detail = f"{body.get('category')}: {body.get('message')}"
                log.warning(
                    "hubspot create contacts: batch of %d rejected with HTTP %d (%s)",
                    len(batch),
                    status,
                    body.get("category"),
                )
                results.extend(WriteResult(False, None, STATUS_FAILED, reason, detail) for _ in batch)
                continue
            results.extend(self._create_results(batch, body))
        self._log_counts("create contacts", results)
        return results

    @staticmethod
    def _create_results(batch: list[tuple[int, dict[str, Any]]], body: dict[str, Any]) -> list[WriteResult]:
        by_trace: dict[str, WriteResult] = {}
        by_email: dict[str, WriteResult] = {}
        for entry in body.get("results") or []:
            result = WriteResult(True, str(entry["id"]), STATUS_CREATED, None)
            if entry.get("objectWriteTraceId") is not None:
                by_trace[str(entry["objectWriteTraceId"])] = result
            email = (entry.get("properties") or {}).get("email")
            if email:
                by_email[email.strip().lower()] = result
        for error in body.get("errors") or []:
            trace_id = _error_trace_id(error)
            if trace_id is None:
                continue
            category = error.get("category")
            detail = f"{category}: {error.get('message')}"
            if category == "CONFLICT":
                by_trace[trace_id] = WriteResult(False, None, STATUS_SKIPPED, REASON_EXISTS, detail)
            else:
                by_trace[trace_id] = WriteResult(False, None, STATUS_FAILED, REASON_INVALID, detail)

        results = []
        for index, record in batch:
            result = by_trace.get(str(index))
            if result is None:
                # A response that does not echo the trace id is matched by the unique email instead.
                email = str(record.get("email") or "").strip().lower()
                result = by_email.get(email) if email else None
            results.append(
                result
                or WriteResult(
                    False, None, STATUS_FAILED, REASON_NO_RESULT, "HubSpot returned no result for this record"
                )
            )
        return results

    def update(self, records: list[tuple[str, dict[str, Any]]]) -> list[WriteResult]:
        """Update contacts by id with batch/update.

        An id seen twice goes to a later batch, because HubSpot rejects a batch with duplicate ids.
        """
        results: list[WriteResult] = []
        for batch in self._unique_id_batches(records):
            inputs = [{"id": contact_id, "properties": to_properties(fields)} for contact_id, fields in batch]
            status, body = self._post(
                f"{CONTACTS}/batch/update", {"inputs": inputs}, what="update contacts", accept=(200, 207, 400)
            )
            if status == 400:
                detail = f"{body.get('category')}: {body.get('message')}"
                log.warning(
                    "hubspot update contacts: batch of %d rejected with HTTP 400 (%s)", len(batch), body.get("category")
                )
                results.extend(
                    WriteResult(False, contact_id, STATUS_FAILED, REASON_INVALID, detail) for contact_id, _ in batch
                )
                continue
            results.extend(self._update_results(batch, body))
        self._log_counts("update contacts", results)
        return results

    def _unique_id_batches(
        self, records: list[tuple[str, dict[str, Any]]]
    ) -> Iterator[list[tuple[str, dict[str, Any]]]]:
        batch: list[tuple[str, dict[str, Any]]] = []
        ids: set[str] = set()
        for contact_id, fields in records:
            key = str(contact_id).strip()
            if len(batch) >= self.max_batch or key in ids:
                yield batch
                batch, ids = [], set()
            batch.append((key, fields))
            ids.add(key)
        if batch:
            yield batch

    @staticmethod
    def _update_results(batch: list[tuple[str, dict[str, Any]]], body: dict[str, Any]) -> list[WriteResult]:
        by_id: dict[str, WriteResult] = {
            str(entry["id"]): WriteResult(True, str(entry["id"]), STATUS_UPDATED, None)
            for entry in body.get("results") or []
        }
        for error in body.get("errors") or []:
            category = error.get("category")
            detail = f"{category}: {error.get('message')}"
            context = error.get("context") or {}
            if category == "OBJECT_NOT_FOUND":
                status, reason = STATUS_SKIPPED, REASON_NOT_FOUND
            elif category == "CONFLICT":
                status, reason = STATUS_SKIPPED, REASON_CONFLICT
            else:
                status, reason = STATUS_FAILED, REASON_INVALID
            for contact_id in [*(context.get("ids") or []), *(context.get("id") or [])]:
                by_id.setdefault(str(contact_id), WriteResult(False, str(contact_id), status, reason, detail))
        return [
            by_id.get(contact_id)
            or WriteResult(
                False, contact_id, STATUS_FAILED, REASON_NO_RESULT, "HubSpot returned no result for this record"
            )
            for contact_id, _ in batch
        ]

    @staticmethod
    def _log_counts(what: str, results: list[WriteResult]) -> None:
        counts: dict[str, int] = {}
        for result in results:
            counts[result.status] = counts.get(result.status, 0) + 1
        log.info("hubspot %s: %d records: %s", what, len(results), counts)

    # -- reads ---------------------------------------------------------------------------------
    def _batch_read(self, ids: list[str], properties: list[str]) -> list[dict[str, Any]]:
        unique = list(dict.fromkeys(str(i).strip() for i in ids if str(i).strip()))
        found: list[dict[str, Any]] = []
        for batch in chunked(unique, self.max_batch):
            payload = {"inputs": [{"id": contact_id} for contact_id in batch], "properties": properties}
            _, body = self._post(f"{CONTACTS}/batch/read", payload, what="read contacts")
            found.extend(body.get("results") or [])
        return found

    def existing_ids(self, ids: list[str]) -> set[str]:
        return {str(entry["id"]) for entry in self._batch_read(ids, ["hs_object_id"])}

    def read(self, ids: list[str], fields: list[str]) -> dict[str, dict[str, Any]]:
        return {
            str(entry["id"]): {name: (entry.get("properties") or {}).get(name) for name in fields}
            for entry in self._batch_read(ids, list(fields))
        }

    def _search_page(self, payload: dict[str, Any]) -> dict[str, Any]:
        _, body = self._post(f"{CONTACTS}/search", payload, what="search contacts", accept=(200,))
        return body

    def _search_window(
        self, filters: list[dict[str, Any]], sort_property: str, properties: list[str], window: dict[str, bool]
    ) -> Iterator[dict[str, Any]]:
        """Yield every result of one search, sorted ascending by ``sort_property``.

        Sets ``window["truncated"]`` when the next page would start at or past
        the search cap, which HubSpot rejects with HTTP 400.
        """
        window["truncated"] = False
        after: str | None = None
        while True:
            payload: dict[str, Any] = {
                "filterGroups": [{"filters": filters}],
                "sorts": [{"propertyName": sort_property, "direction": "ASCENDING"}],
                "properties": properties,
                "limit": self.search_page_size,
            }
            if after is not None:
                payload["after"] = after
            body = self._search_page(payload)
            yield from body.get("results") or []
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return
            if int(after) >= self.search_cap:
                window["truncated"] = True
                return

    def find_by_emails(self, emails: list[str], fields: list[str] | None = None) -> dict[str, list[MapRecord]]:
        requested_emails = unique_emails(emails)
        properties = list(dict.fromkeys([*LOOKUP_PROPERTIES, *(fields or [])]))
        found: dict[str, list[MapRecord]] = {}
        for chunk in chunked(requested_emails, self.search_in_values):
            keys = set(chunk)
            filters = [{"propertyName": "email", "operator": "IN", "values": chunk}]
            window: dict[str, bool] = {}
            for entry in self._search_window(filters, "hs_object_id", properties, window):
                entry_properties = entry.get("properties") or {}
                key = str(entry_properties.get("email") or "").strip().lower()
                if key in keys:
                    found.setdefault(key, []).append(
                        MapRecord(
                            id=str(entry["id"]),
                            email=entry_properties.get("email"),
                            updated_at=parse_hubspot_time(
                                entry.get("updatedAt") or entry_properties.get("lastmodifieddate")
                            ),
                            fields=dict(entry_properties),
                        )
                    )
        log.info("hubspot: looked up %d emails, %d matched", len(requested_emails), len(found))
        return found

    def search_modified_since(self, since: datetime, properties: list[str]) -> Iterator[dict[str, Any]]:
        """Yield every contact modified at or after ``since``, oldest first, past the search cap.

        One search can page through at most ``search_cap`` results, so when a
        window fills up the search restarts at the last lastmodifieddate seen
        (skipping contacts already yielded at that instant). When more than a
        cap's worth of contacts share one lastmodifieddate, that instant is
        paged by hs_object_id instead, so the loop always moves forward.
        """
        requested = list(dict.fromkeys([*properties, "lastmodifieddate", "hs_object_id"]))
        lower = epoch_ms(since)
        operator = "GTE"
        seen_at_lower: set[str] = set()
        total = 0
        while True:
            filters = [{"propertyName": "lastmodifieddate", "operator": operator, "value": str(lower)}]
            window: dict[str, bool] = {}
            last_ms: int | None = None
            seen_at_last: set[str] = set()
            for entry in self._search_window(filters, "lastmodifieddate", requested, window):
                modified = self._modified_ms(entry)
                if modified == lower and str(entry["id"]) in seen_at_lower:
                    continue
                total += 1
                yield entry
                if modified is None:
                    continue
                if modified != last_ms:
                    last_ms, seen_at_last = modified, set()
                seen_at_last.add(str(entry["id"]))
            if not window["truncated"]:
                break
            if last_ms is None or last_ms == lower:
                # The window filled up without progress, so every result shares the lower bound's instant.
                done_ids = seen_at_lower | seen_at_last
                for entry in self._search_one_instant(lower, requested, done_ids):
                    total += 1
                    yield entry
                operator, seen_at_lower = "GT", set()
            else:
                lower, operator, seen_at_lower = last_ms, "GTE", seen_at_last
            log.info("hubspot: search cap reached, restarting from lastmodifieddate %d (%s)", lower, operator)
        log.info("hubspot: %d contacts modified since %s", total, since.isoformat())

    def _search_one_instant(
        self, instant_ms: int, properties: list[str], done_ids: set[str]
    ) -> Iterator[dict[str, Any]]:
        """Yield the contacts modified exactly at ``instant_ms``, paged by hs_object_id."""
        after_id = 0
        while True:
            filters = [
                {"propertyName": "lastmodifieddate", "operator": "EQ", "value": str(instant_ms)},
                {"propertyName": "hs_object_id", "operator": "GT", "value": str(after_id)},
            ]
            window: dict[str, bool] = {}
            last_id: int | None = None
            for entry in self._search_window(filters, "hs_object_id", properties, window):
                last_id = int(entry["id"])
                if str(entry["id"]) not in done_ids:
                    yield entry
            if not window["truncated"] or last_id is None:
                return
            after_id = last_id

    @staticmethod
    def _modified_ms(entry: dict[str, Any]) -> int | None:
        properties = entry.get("properties") or {}
        instant = parse_hubspot_time(properties.get("lastmodifieddate") or entry.get("updatedAt"))
        return epoch_ms(instant) if instant else None


def _error_trace_id(error: dict[str, Any]) -> str | None:
    if error.get("objectWriteTraceId") is not None:
        return str(error["objectWriteTraceId"])
    trace_ids = (error.get("context") or {}).get("objectWriteTraceId") or []
    return str(trace_ids[0]) if trace_ids else None
