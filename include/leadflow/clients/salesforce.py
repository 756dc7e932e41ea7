"""Salesforce REST client for CRM attribution: OAuth client credentials, SOQL queries with paging.

The connection's ``login`` is the connected app's client id and ``password`` its
client secret. ``host`` is the login server (``https://login.salesforce.com``
or a My Domain URL), and data calls go to the ``instance_url`` that the token
endpoint returns. Extras: ``token_url`` (overrides the token endpoint),
``api_version`` (default ``v62.0``) and ``batch_size`` (sent as
``Sforce-Query-Options: batchSize=N``, which Salesforce accepts from 200 to 2000).

Error mapping:

- 401 ``INVALID_SESSION_ID``: re-authenticate once per call, then retry it.
- 403 ``REQUEST_LIMIT_EXCEEDED`` with ``TotalRequests`` (the rolling 24-hour
  allocation): ``QuotaExhausted``, not retried.
- any other 403 ``REQUEST_LIMIT_EXCEEDED`` (concurrent requests): ``Throttled``.
- 5xx, timeouts and dropped connections: ``TransientError``, retried with backoff.
- other 4xx: ``PermanentError``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import requests

from leadflow.clients.base import (
    AuthExpired,
    ClientConfig,
    PermanentError,
    QuotaExhausted,
    RetryPolicy,
    Throttled,
    TransientError,
    json_body,
    send,
    with_retries,
)

log = logging.getLogger(__name__)

VENDOR = "salesforce"
DEFAULT_API_VERSION = "v62.0"

# How often one query restarts after Salesforce discards its query locator.
MAX_LOCATOR_RESTARTS = 3

_LIMIT_INFO_RE = re.compile(r"api-usage=(\d+)/(\d+)")
_OFFSET_WITHOUT_COLON_RE = re.compile(r"([+-]\d{2})(\d{2})$")


def parse_sf_datetime(value: str | None) -> datetime | None:
    """Parse a Salesforce datetime such as ``2026-01-01T00:21:00.000+0000`` into an aware UTC datetime.

    ``Z`` and ``+00:00`` offsets are accepted too. A value without an offset
    raises ValueError because Salesforce always sends one.
    """
    if value is None:
        return None
    text = _OFFSET_WITHOUT_COLON_RE.sub(r"\1:\2", value.strip())
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"Salesforce datetime {value!r} has no UTC offset")
    return parsed.astimezone(UTC)


def parse_sf_date(value: str | None) -> date | None:
    """Parse a Salesforce date field value ``YYYY-MM-DD``."""
    if value is None:
        return None
    return date.fromisoformat(value)


def format_soql_datetime(value: datetime) -> str:
    """Format an aware datetime as an unquoted SOQL datetime literal, truncated to whole seconds."""
    if value.tzinfo is None:
        raise ValueError(f"datetime {value.isoformat()} has no timezone; pass an aware datetime")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class InvalidQueryLocator(PermanentError):
    """Salesforce discarded the query locator of a ``nextRecordsUrl``."""


class SalesforceClient:
    """One org's REST API session. ``api_usage`` is the last ``Sforce-Limit-Info`` seen, as (used, max)."""

    def __init__(self, config: ClientConfig, policy: RetryPolicy | None = None):
        if not config.login or not config.password:
            raise PermanentError(
                VENDOR, "the connection needs the client id as login and the client secret as password"
            )
        self.config = config
        self.policy = policy or RetryPolicy()
        self.api_version = str(config.extra.get("api_version") or DEFAULT_API_VERSION)
        self.token_url = config.extra.get("token_url") or f"{config.base_url.rstrip('/')}/services/oauth2/token"
        batch_size = config.extra.get("batch_size")
        self.batch_size = int(batch_size) if batch_size else None
        self.session = requests.Session()
        self.instance_url: str | None = None
        self.api_usage: tuple[int, int] | None = None
        self._access_token: str | None = None

    # -- authentication
    def authenticate(self) -> None:
        """Get a new access token with the client-credentials grant."""
        body = with_retries(self._request_token, self.policy, what="salesforce token request")
        self._access_token = body["access_token"]
        self.instance_url = body["instance_url"].rstrip("/")
        log.info("salesforce: authenticated, instance %s", self.instance_url)

    def _request_token(self) -> dict[str, Any]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.config.login,
            "client_secret": self.config.password,
        }
        response = send(self.session, VENDOR, "POST", self.token_url, self.config.timeout, data=form)
        status = response.status_code
        if status >= 500:
            raise TransientError(VENDOR, "token request failed", status=status)
        if status == 429:
            raise Throttled(VENDOR, "token request throttled", status=status)
        body = json_body(VENDOR, response)
        if status != 200:
            error = body.get("error") if isinstance(body, dict) else None
            description = body.get("error_description") if isinstance(body, dict) else None
            raise PermanentError(
                VENDOR,
                f"token request rejected: {description or response.text[:200]}; check the client id and secret",
                status=status,
                code=error,
            )
        if not isinstance(body, dict) or not body.get("access_token") or not body.get("instance_url"):
            raise TransientError(VENDOR, "token response lacks access_token or instance_url", status=status)
        return body

    # -- requests
    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        """GET a path under the instance URL, such as ``/services/data/v62.0/limits``, and return the decoded body."""
        return self._call("GET", path, params=params)

    def limits(self) -> dict[str, Any]:
        return self.get(f"/services/data/{self.api_version}/limits")

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request with retries. A rejected session is renewed once, and a second rejection fails the call."""
        if self._access_token is None:
            self.authenticate()
        what = f"salesforce {method} {path}"
        renewed = False

        def renew() -> None:
            nonlocal renewed
            if renewed:
                raise PermanentError(
                    VENDOR, f"{what}: session rejected again right after re-authentication", status=401
                )
            renewed = True
            log.info("salesforce: session expired during %s; re-authenticating", what)
            self.authenticate()

        return with_retries(
            lambda: self._send_once(method, path, **kwargs), self.policy, what=what, on_auth_expired=renew
        )

    def _send_once(self, method: str, path: str, **kwargs: Any) -> Any:
        # The URL is built on every attempt because re-authentication may change the instance URL.
        headers = {"Authorization": f"Bearer {self._access_token}", "Accept": "application/json"}
        if self.batch_size:
            headers["Sforce-Query-Options"] = f"batchSize={self.batch_size}"
        response = send(
            self.session, VENDOR, method, f"{self.instance_url}{path}", self.config.timeout, headers=headers, **kwargs
        )
        self._record_usage(response)
        if 200 <= response.status_code < 300:
            return json_body(VENDOR, response)
        raise self._error(response)

    def _record_usage(self, response: requests.Response) -> None:
        match = _LIMIT_INFO_RE.search(response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self.api_usage = (int(match.group(1)), int(match.group(2)))

    def _error(self, response: requests.Response) -> Exception:
        """Map an error response to the shared error classes."""
        status = response.status_code
        code, message = _first_error(response)
        if status == 401:
            return AuthExpired(VENDOR, message or "session rejected", status=status, code=code)
        if status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
            if "TotalRequests" in message:
                usage = f" (api usage {self.api_usage[0]}/{self.api_usage[1]})" if self.api_usage else ""
                log.warning("salesforce: daily API allocation used up%s", usage)
                return QuotaExhausted(
                    VENDOR,
                    f"{message}{usage}; the run stops and resumes when the rolling 24-hour usage drops",
                    status=status,
                    code=code,
                )
            return Throttled(VENDOR, message, status=status, code=code)
        if status == 429:
            retry_after = response.headers.get("Retry-After")
            return Throttled(
                VENDOR,
                message or "throttled",
                status=status,
                retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        if status >= 500:
            return TransientError(VENDOR, message or "server error", status=status, code=code)
        if status == 400 and code == "INVALID_QUERY_LOCATOR":
            return InvalidQueryLocator(VENDOR, message, status=status, code=code)
        return PermanentError(VENDOR, message or response.text[:200], status=status, code=code)

    # -- queries
    def query(self, soql: str, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        """Yield every record of a SOQL query, following ``nextRecordsUrl``, without the ``attributes`` key.

        ``include_deleted`` uses ``queryAll``. When Salesforce discards the query
        locator mid-way, the query restarts (at most ``MAX_LOCATOR_RESTARTS``
        times) and skips records whose Id was already yielded, so the query
        must select Id for a restart to be possible.
        """
        endpoint = "queryAll" if include_deleted else "query"
        yielded_ids: set[str] = set()
        restarts = 0
        while True:
            state = {"without_id": False}
            try:
                yield from self._query_pages(endpoint, soql, yielded_ids, state)
                return
            except InvalidQueryLocator:
                restarts += 1
                if state["without_id"] or restarts > MAX_LOCATOR_RESTARTS:
                    raise
                log.warning(
                    "salesforce: query locator discarded after %d records; restarting the query (%d/%d)",
                    len(yielded_ids),
                    restarts,
                    MAX_LOCATOR_RESTARTS,
                )

    def _query_pages(
        self, endpoint: str, soql: str, yielded_ids: set[str], state: dict[str, bool]
    ) -> Iterator[dict[str, Any]]:
        page = self._call("GET", f"/services/data/{self.api_version}/{endpoint}", params={"q": soql})
        pages = 1
        while True:
            for record in page.get("records", []):
                record.pop("attributes", None)
                record_id = record.get("Id")
                if record_id is None:
                    state["without_id"] = True
                elif record_id in yielded_ids:
                    continue
                else:
                    yielded_ids.add(record_id)
                yield record
            if page.get("done", True):
                log.debug("salesforce: query finished after %d pages, %s records", pages, page.get("totalSize"))
                return
            next_url = page.get("nextRecordsUrl")
            if not next_url:
                raise TransientError(VENDOR, "query page has done=false but no nextRecordsUrl")
            page = self._call("GET", next_url)
            pages += 1


def _first_error(response: requests.Response) -> tuple[str | None, str]:
    """Return (errorCode, message) of a Salesforce error body ``[{"message", "errorCode"}]``."""
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:200]
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return body[0].get("errorCode"), str(body[0].get("message", ""))
    if isinstance(body, dict):
        return body.get("errorCode") or body.get("error"), str(
            body.get("message") or body.get("error_description") or ""
        )
    return None, response.text[:200]


class SalesforceCrm:
    """Reads the attribution graph: accounts, contacts, opportunities, contact roles and converted leads."""

    # Result key -> (sObject, fields, extra WHERE condition).
    QUERIES: dict[str, tuple[str, tuple[str, ...], str | None]] = {
        "accounts": ("Account", ("Id", "Name", "Website"), None),
        "contacts": ("Contact", ("Id", "AccountId", "Email", "CreatedDate"), None),
        "opportunities": (
            "Opportunity",
            ("Id", "AccountId", "Name", "StageName", "Amount", "CloseDate", "IsWon", "IsClosed", "CreatedDate"),
            None,
        ),
        "contact_roles": ("OpportunityContactRole", ("Id", "OpportunityId", "ContactId", "Role", "IsPrimary"), None),
        "converted_leads": (
            "Lead",
            ("Id", "Email", "ConvertedDate", "ConvertedContactId", "ConvertedAccountId", "ConvertedOpportunityId"),
            "IsConverted = true",
        ),
    }
    DATETIME_FIELDS = frozenset({"CreatedDate", "LastModifiedDate", "SystemModstamp"})
    DATE_FIELDS = frozenset({"ConvertedDate", "CloseDate"})

    def __init__(self, client: SalesforceClient):
        self.client = client

    @classmethod
    def from_config(cls, config: ClientConfig, policy: RetryPolicy | None = None) -> SalesforceCrm:
        return cls(SalesforceClient(config, policy))

    @classmethod
    def build_soql(cls, key: str, since: datetime | None) -> str:
        """Build the SOQL for one result key; ``since`` adds ``LastModifiedDate >= since``.

        ``since`` is truncated to whole seconds, so a record modified in the
        same second as ``since`` can come back twice across runs, never zero times.
        """
        sobject, fields, condition = cls.QUERIES[key]
        conditions = [condition] if condition else []
        if since is not None:
            conditions.append(f"LastModifiedDate >= {format_soql_datetime(since)}")
        soql = f"SELECT {', '.join(fields)} FROM {sobject}"
        if conditions:
            soql += " WHERE " + " AND ".join(conditions)
        return soql

    def pull(self, since: datetime | None = None) -> dict[str, list[dict[str, Any]]]:
        """Fetch every object changed at or after ``since`` (all records when None), with dates parsed.

        Raise QuotaExhausted when the org's daily allocation runs out mid-way,
        so the caller can stop and retry in a later run.
        """
        result: dict[str, list[dict[str, Any]]] = {}
        for key in self.QUERIES:
            result[key] = [self._convert(record) for record in self.client.query(self.build_soql(key, since))]
            log.info("salesforce: pulled %d %s", len(result[key]), key)
        return result

    def _convert(self, record: dict[str, Any]) -> dict[str, Any]:
        converted = dict(record)
        for name, value in record.items():
            if name in self.DATETIME_FIELDS:
                converted[name] = parse_sf_datetime(value)
            elif name in self.DATE_FIELDS:
                converted[name] = parse_sf_date(value)
        return converted
