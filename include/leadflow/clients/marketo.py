"""Marketo Engage REST client: lead writes, lookups and lead-change activities.

The connection's ``login`` is the client id and ``password`` the client
secret. Its ``host`` is the instance's REST base URL, which also serves the
identity endpoint. Marketo returns most failures as HTTP 200 with
``success: false``, so every body is checked and its error code mapped to the
retry classes of ``leadflow.clients.base``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import requests

from leadflow.clients.base import (
    AuthExpired,
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
    REASON_EXISTS,
    REASON_INVALID,
    REASON_MULTIPLE_MATCHES,
    REASON_NO_RESULT,
    REASON_NOT_FOUND,
    REASON_UNKNOWN_FIELD,
    STATUS_FAILED,
    STATUS_SKIPPED,
    MapClient,
    MapRecord,
    WriteResult,
    chunked,
    unique_emails,
)

log = logging.getLogger(__name__)

VENDOR = "marketo"
# Refresh the cached token this many seconds before the expiry Marketo reports.
TOKEN_MARGIN_SECONDS = 60
AUTH_CODES = {"600", "601", "602"}
# 606 is the rate limit and 615 the concurrency limit. After a 606 the client waits out the rate window.
THROTTLE_CODES = {"606", "615"}
TRANSIENT_CODES = {"502", "604", "608", "611", "713"}
# 607 is the daily API quota and 1029 the bulk export quota.
QUOTA_CODES = {"607", "1029"}
SKIP_REASONS = {
    "1004": REASON_NOT_FOUND,
    "1005": REASON_EXISTS,
    "1006": REASON_UNKNOWN_FIELD,
    "1007": REASON_MULTIPLE_MATCHES,
}
LOOKUP_FIELDS = ["id", "email", "updatedAt", "createdAt"]
MAX_PAGE_SIZE = 300


def error_for_code(code: str, message: str, *, rate_window_seconds: float) -> VendorError:
    """Map a Marketo error code from a ``success: false`` body to a client error."""
    text = f"{message} (Marketo code {code})"
    if code in AUTH_CODES:
        return AuthExpired(VENDOR, text, code=code)
    if code == "606":
        return Throttled(VENDOR, text, code=code, retry_after=rate_window_seconds)
    if code in THROTTLE_CODES:
        return Throttled(VENDOR, text, code=code)
    if code in TRANSIENT_CODES:
        return TransientError(VENDOR, text, code=code)
    if code in QUOTA_CODES:
        return QuotaExhausted(VENDOR, text, code=code)
    return PermanentError(VENDOR, text, code=code)


def parse_marketo_time(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        log.warning("marketo: unparseable timestamp %r", value)
        return None


class MarketoClient(MapClient):
    """One Marketo instance, reached with client credentials.

    ``config.extra`` may set ``max_batch`` (300), ``rate_window_seconds`` (20,
    the wait after a 606), ``max_filter_values`` (300), ``max_url_bytes``
    (7000; longer lookups switch to ``POST ?_method=GET``) and
    ``max_body_bytes`` (1000000; larger write batches are halved).
    """

    map_type = "marketo"
    email_field = "email"

    def __init__(
        self, config: ClientConfig, policy: RetryPolicy | None = None, session: requests.Session | None = None
    ):
        if not config.login or not config.password:
            raise ValueError("Marketo connection needs the client id as login and the client secret as password")
        self.config = config
        self.policy = policy or RetryPolicy()
        self.session = session or requests.Session()
        self.base_url = config.base_url.rstrip("/")
        extra = config.extra or {}
        self.max_batch = int(extra.get("max_batch", 300))
        self.rate_window_seconds = float(extra.get("rate_window_seconds", 20))
        self.max_filter_values = int(extra.get("max_filter_values", 300))
        self.max_url_bytes = int(extra.get("max_url_bytes", 7000))
        self.max_body_bytes = int(extra.get("max_body_bytes", 1_000_000))
        self._token: str | None = None
        self._token_valid_until = 0.0

    # -- authentication -------------------------------------------------------------
    def _access_token(self) -> str:
        if self._token and time.monotonic() < self._token_valid_until:
            return self._token
        response = send(
            self.session,
            VENDOR,
            "POST",
            f"{self.base_url}/identity/oauth/token",
            self.config.timeout,
            data={
                "grant_type": "client_credentials",
                "client_id": self.config.login,
                "client_secret": self.config.password,
            },
        )
        if response.status_code in (400, 401, 403):
            raise PermanentError(
                VENDOR,
                "identity endpoint rejected the client id or secret; check the connection",
                status=response.status_code,
            )
        if response.status_code >= 500:
            raise TransientError(VENDOR, "identity endpoint failed", status=response.status_code)
        body = json_body(VENDOR, response)
        if not isinstance(body, dict) or "access_token" not in body:
            self._raise_body_error(body, "identity endpoint")
            raise TransientError(VENDOR, "identity endpoint returned no access_token", status=response.status_code)
        self._token = str(body["access_token"])
        expires_in = float(body.get("expires_in", 0))
        self._token_valid_until = time.monotonic() + max(0.0, expires_in - TOKEN_MARGIN_SECONDS)
        log.info("marketo: new access token, valid for %.0fs", expires_in)
        return self._token

    def _forget_token(self) -> None:
        self._token = None
        self._token_valid_until = 0.0

    # -- transport --------------------------------------------------------------------
    def _raise_body_error(self, body: Any, what: str) -> None:
        if isinstance(body, dict) and body.get("success") is False:
            errors = body.get("errors") or [{}]
            code = str(errors[0].get("code", ""))
            message = str(errors[0].get("message", "no message"))
            raise error_for_code(code, f"{what}: {message}", rate_window_seconds=self.rate_window_seconds)

    def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: dict[str, Any] | None = None,
        payload: Any = None,
        form: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        url = f"{self.base_url}{path}"

        def call() -> dict[str, Any]:
            headers = {"Authorization": f"Bearer {self._access_token()}"}
            response = send(
                self.session,
                VENDOR,
                method,
                url,
                self.config.timeout,
                params=params,
                json=payload,
                data=form,
                headers=headers,
            )

            status = response.status_code
            if status == 413:
                raise PermanentError(VENDOR, f"{what}: request body is larger than Marketo accepts", status=status)
            if status == 414:
                raise PermanentError(VENDOR, f"{what}: request URI is longer than Marketo accepts", status=status)
            if status == 429:
                raise Throttled(VENDOR, f"{what}: throttled", status=status, retry_after=self.rate_window_seconds)
            if status == 401:
                raise AuthExpired(VENDOR, f"{what}: access token rejected", status=status)
            if status >= 500:
                raise TransientError(VENDOR, f"{what}: server error", status=status)
            if status != 200:
                raise PermanentError(VENDOR, f"{what}: unexpected HTTP status", status=status)

            body = json_body(VENDOR, response)
            if not isinstance(body, dict):
                raise TransientError(VENDOR, f"{what}: response body is not a JSON object", status=status)
            self._raise_body_error(body, what)
            return body

        return with_retries(call, self.policy, what=f"marketo {what}", on_auth_expired=self._forget_token)

    # -- lookups ------------------------------------------------------------------------
    def _leads_by_filter(self, filter_type: str, values: list[str], fields: list[str]) -> Iterator[dict[str, Any]]:
        """Yield every lead matching ``values``, following nextPageToken.

        A query whose URL would pass ``max_url_bytes`` is sent as
        ``POST ?_method=GET`` with the parameters in a form body, because
        Marketo returns 414 for URIs over 8 KB.
        """
        params: dict[str, Any] = {
            "filterType": filter_type,
            "filterValues": ",".join(values),
            "fields": ",".join(fields),
            "batchSize": MAX_PAGE_SIZE,
        }
        while True:
            url_length = len(self.base_url) + len("/rest/v1/leads.json?") + len(urlencode(params))
            if url_length > self.max_url_bytes:
                body = self._request(
                    "POST", "/rest/v1/leads.json", what="lead lookup", params={"_method": "GET"}, form=params
                )
            else:
                body = self._request("GET", "/rest/v1/leads.json", what="lead lookup", params=params)
            yield from body.get("result") or []
            token = body.get("nextPageToken")
            if not token:
                return
            params = {**params, "nextPageToken": token}

    def find_by_emails(self, emails: list[str], fields: list[str] | None = None) -> dict[str, list[MapRecord]]:
        requested_emails = unique_emails(emails)
        # Marketo separates filterValues with commas, so an address containing one cannot be looked up.
        lookups = [email for email in requested_emails if "," not in email]
        if len(lookups) < len(requested_emails):
            log.warning("marketo: skipped %d emails containing a comma", len(requested_emails) - len(lookups))
        requested_fields = list(dict.fromkeys([*LOOKUP_FIELDS, *(fields or [])]))
        found: dict[str, list[MapRecord]] = {}
        for chunk in chunked(lookups, self.max_filter_values):
            keys = set(chunk)
            for lead in self._leads_by_filter("email", chunk, requested_fields):
                key = str(lead.get("email") or "").strip().lower()
                if key in keys:
                    found.setdefault(key, []).append(self._record(lead))
        log.info("marketo: looked up %d emails, %d matched", len(lookups), len(found))
        return found

    @staticmethod
    def _record(lead: dict[str, Any]) -> MapRecord:
        return MapRecord(
            id=str(lead["id"]),
            email=lead.get("email"),
            updated_at=parse_marketo_time(lead.get("updatedAt")),
            fields=dict(lead),
        )

    def existing_ids(self, ids: list[str]) -> set[str]:
        numeric = list(dict.fromkeys(str(i).strip() for i in ids if str(i).strip().isdigit()))
        found: set[str] = set()
        for chunk in chunked(numeric, self.max_filter_values):
            found.update(str(lead["id"]) for lead in self._leads_by_filter("id", chunk, ["id"]))
        return found

    def read(self, ids: list[str], fields: list[str]) -> dict[str, dict[str, Any]]:
        numeric = list(dict.fromkeys(str(i).strip() for i in ids if str(i).strip().isdigit()))
        requested = list(dict.fromkeys(["id", *fields]))
        values: dict[str, dict[str, Any]] = {}
        for chunk in chunked(numeric, self.max_filter_values):
            for lead in self._leads_by_filter("id", chunk, requested):
                values[str(lead["id"])] = {name: lead.get(name) for name in fields}
        return values

    def describe_fields(self) -> list[dict[str, Any]]:
        """Return the lead field definitions, including custom fields such as the MQL date."""
        return self._request("GET", "/rest/v1/leads/describe.json", what="describe leads").get("result") or []

    # -- writes ---------------------------------------------------------------------------
    def create(self, records: list[dict[str, Any]]) -> list[WriteResult]:
        """Create leads with action createOnly, so an existing email is skipped (1005) instead of updated.

        NOTE: a batch retried after a timeout may have been applied the first
        time. Its records then come back skipped with reason ``exists``, so the
        caller resolves their ids with ``find_by_emails``.
        """
        inputs = [dict(record) for record in records]
        return self._write(inputs, action="createOnly", lookup_field="email", what="create leads")

    def update(self, records: list[tuple[str, dict[str, Any]]]) -> list[WriteResult]:
        results: list[WriteResult | None] = [None] * len(records)
        inputs, positions = [], []
        for position, (lead_id, fields) in enumerate(records):
            text = str(lead_id).strip()
            if not text.isdigit():
                results[position] = WriteResult(False, text, STATUS_SKIPPED, REASON_NOT_FOUND, "not a Marketo lead id")
                continue
            values = {name: value for name, value in fields.items() if name != "id"}
            inputs.append({"id": int(text), **values})
            positions.append(position)
        written = self._write(inputs, action="updateOnly", lookup_field="id", what="update leads")
        for position, result in zip(positions, written, strict=True):
            results[position] = result
        return [result for result in results if result is not None]

    def _write(self, inputs: list[dict[str, Any]], *, action: str, lookup_field: str, what: str) -> list[WriteResult]:
        results: list[WriteResult] = []
        calls = 0
        for batch in self._batches(inputs):
            calls += 1
            body = self._request(
                "POST",
                "/rest/v1/leads.json",
                what=what,
                payload={"action": action, "lookupField": lookup_field, "input": batch},
            )
            answers = body.get("result") or []
            for index in range(len(batch)):
                answer = answers[index] if index < len(answers) else None
                results.append(self._write_result(answer))
        counts: dict[str, int] = {}
        for result in results:
            counts[result.status] = counts.get(result.status, 0) + 1
        log.info("marketo %s: %d records in %d calls: %s", what, len(inputs), calls, counts)
        return results

    def _batches(self, inputs: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        for batch in chunked(inputs, self.max_batch):
            yield from self._split_by_size(batch)

    def _split_by_size(self, batch: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        # The JSON envelope around ``input`` adds under 100 bytes, covered by the default margin below 1 MB.
        if len(batch) == 1 or len(json.dumps(batch, default=str)) <= self.max_body_bytes:
            yield batch
            return
        middle = len(batch) // 2
        yield from self._split_by_size(batch[:middle])
        yield from self._split_by_size(batch[middle:])

    @staticmethod
    def _write_result(answer: dict[str, Any] | None) -> WriteResult:
        if answer is None:
            return WriteResult(
                False, None, STATUS_FAILED, REASON_NO_RESULT, "Marketo returned fewer results than inputs"
            )
        status = answer.get("status")
        lead_id = str(answer["id"]) if answer.get("id") is not None else None
        if status in ("created", "updated"):
            return WriteResult(True, lead_id, status, None)
        reasons = answer.get("reasons") or []
        detail = "; ".join(f"{reason.get('code')} {reason.get('message')}" for reason in reasons) or None
        first_code = str(reasons[0].get("code")) if reasons else ""
        reason = SKIP_REASONS.get(first_code, REASON_INVALID)
        if status == "skipped":
            return WriteResult(False, lead_id, STATUS_SKIPPED, reason, detail)
        return WriteResult(False, lead_id, STATUS_FAILED, reason, detail or f"unexpected status {status!r}")

    # -- lead changes -----------------------------------------------------------------------
    def lead_changes(self, since: datetime, fields: list[str]) -> Iterator[dict[str, Any]]:
        """Yield lead-change activities since ``since`` for the given fields.

        Marketo returns Data Value Change (13) activities for those fields and
        New Lead (12) activities. A page can hold fewer results than the
        batch size, even none, while ``moreResult`` is true, so paging
        continues until ``moreResult`` is false.
        """
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        if not fields:
            raise ValueError("fields must name at least one lead field")
        token_body = self._request(
            "GET",
            "/rest/v1/activities/pagingtoken.json",
            what="paging token",
            params={"sinceDatetime": since.isoformat()},
        )
        token = token_body.get("nextPageToken")
        if not token:
            raise TransientError(VENDOR, "pagingtoken.json returned no nextPageToken")
        pages = activities = 0
        while True:
            body = self._request(
                "GET",
                "/rest/v1/activities/leadchanges.json",
                what="lead changes",
                params={"nextPageToken": token, "fields": ",".join(fields), "batchSize": MAX_PAGE_SIZE},
            )
            pages += 1
            results = body.get("result") or []
            activities += len(results)
            yield from results
            next_token = body.get("nextPageToken")
            if not body.get("moreResult"):
                break
            if not next_token or (next_token == token and not results):
                raise TransientError(VENDOR, "leadchanges.json reported more results without moving its nextPageToken")
            token = next_token
        log.info("marketo: read %d lead-change activities in %d pages", activities, pages)
