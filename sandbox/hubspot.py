"""HubSpot CRM v3 contacts stand-in: batch writes and reads, search, rate limits.

Each account whose ``map.type`` is ``hubspot`` gets its own portal with a
static private-app token, contacts, limits and scoring. A request reaches a
portal through its bearer token, because every portal shares one loopback
port.

Behaviour copied from the real API: property values are strings, timestamps
are ISO-8601 with milliseconds, email is unique and matched ignoring case,
batch responses do not keep input order (this stand-in sorts them by id),
search stops at a hard result cap, and two limiters return 429: a rolling
10-second limit for most calls (with ``X-HubSpot-RateLimit-*`` headers) and a
per-second limit for search (without them). Contacts marked ``archived: true``
in the scenario are invisible to search, upsert and update, and batch read
reports them as not found.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.core import Request, Response, Sandbox, VendorApp, json_response, parse_instant
from sandbox.marketo import compute_score, is_blank

log = logging.getLogger(__name__)

DEFAULT_SETTINGS: dict[str, Any] = {
    "ten_second_limit": 100,
    "daily_limit": 250000,
    "search_per_second": 5,
    "max_batch": 100,
    "search_page_max": 200,
    "search_cap": 10000,
    "max_filter_groups": 5,
    "max_filters_per_group": 10,
    "max_filters": 25,
}

CONTACTS = "/crm/v3/objects/contacts"
DEFAULT_PROPERTIES = ["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"]
# Properties every search result carries besides the requested ones.
SEARCH_BASE_PROPERTIES = ["createdate", "hs_object_id", "lastmodifieddate"]
MQL_STAGE = "marketingqualifiedlead"
# HubSpot keeps both the legacy and the current "became an MQL" date.
STANDARD_MQL_DATE_PROPERTIES = (
    "hs_lifecyclestage_marketingqualifiedlead_date",
    "hs_v2_date_entered_marketingqualifiedlead",
)
NON_UNIQUE_ID_MESSAGE = "Unable to perform update/upsert by non-unique 0-1 property"
OPERATORS = ("EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY")
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


def format_instant(instant: datetime) -> str:
    """Format an instant the way HubSpot does, e.g. 2026-01-01T00:05:12.345Z."""
    instant = instant.astimezone(UTC)
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"


def to_property_value(value: Any) -> str:
    """Convert a written value to HubSpot's string form, where null becomes "" and clears the property."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ApiError(Exception):
    """An error returned with an HTTP status and HubSpot's error body."""

    def __init__(self, status: int, category: str, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.extra = extra


@dataclass
class Portal:
    """One HubSpot portal: the MAP of one account."""

    account_id: str
    access_token: str
    timezone: ZoneInfo
    contacts: dict[str, dict[str, Any]]
    score_field: str | None
    mql_date_field: str | None
    scoring: dict[str, Any] | None
    next_id: int
    recent_calls: deque = field(default_factory=deque)
    recent_searches: deque = field(default_factory=deque)
    day: date | None = None
    daily_used: int = 0
    creates: int = 0
    updates: int = 0


class HubSpotApp(VendorApp):
    name = "hubspot"

    def __init__(self, sandbox: Sandbox):
        super().__init__(sandbox)
        self.settings = {**DEFAULT_SETTINGS, **(sandbox.scenario.get("settings", {}).get("hubspot") or {})}
        self.portals: dict[str, Portal] = {}
        self._correlation_count = 0
        for account in sandbox.scenario.get("accounts", []):
            map_config = account.get("map") or {}
            if map_config.get("type") == "hubspot":
                portal = self._load_portal(account, map_config)
                self.portals[portal.account_id] = portal

        self.route("POST", rf"{CONTACTS}/batch/upsert", self._api(self._batch_upsert))
        self.route("POST", rf"{CONTACTS}/batch/create", self._api(self._batch_create))
        self.route("POST", rf"{CONTACTS}/batch/update", self._api(self._batch_update))
        self.route("POST", rf"{CONTACTS}/batch/read", self._api(self._batch_read))
        self.route("POST", rf"{CONTACTS}/search", self._api(self._search, search=True))

    # -- loading ------------------------------------------------------------------
    def _load_portal(self, account: dict[str, Any], config: dict[str, Any]) -> Portal:
        contacts: dict[str, dict[str, Any]] = {}
        for raw in config.get("contacts") or []:
            contact_id = str(raw["id"])
            created = raw.get("createdAt") or raw.get("properties", {}).get("createdate") or "2025-01-01T00:00:00.000Z"
            updated = raw.get("updatedAt") or raw.get("properties", {}).get("lastmodifieddate") or created
            properties = {name: to_property_value(value) for name, value in (raw.get("properties") or {}).items()}
            properties.setdefault("hs_object_id", contact_id)
            properties.setdefault("createdate", created)
            properties.setdefault("lastmodifieddate", updated)
            contacts[contact_id] = {
                "id": contact_id,
                "properties": properties,
                "createdAt": created,
                "updatedAt": updated,
                "archived": bool(raw.get("archived", False)),
            }
        return Portal(
            account_id=account["account_id"],
            access_token=str(config.get("access_token", "")),
            timezone=ZoneInfo(account.get("timezone") or "UTC"),
            contacts=contacts,
            score_field=config.get("score_field"),
            mql_date_field=config.get("mql_date_field"),
            scoring=config.get("scoring"),
            next_id=max((int(cid) for cid in contacts if cid.isdigit()), default=50000) + 1,
        )

    # -- envelopes ------------------------------------------------------------------
    def _correlation_id(self) -> str:
        self._correlation_count += 1
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"hubspot-sandbox:{self._correlation_count}"))

    def _error(self, status: int, category: str, message: str, **extra: Any) -> Response:
        body = {"status": "error", "message": message, "correlationId": self._correlation_id(), "category": category}
        body.update(extra)
        return json_response(body, status)

    def error_response(self, status: int, message: str) -> Response:
        return self._error(status, "OBJECT_NOT_FOUND" if status == 404 else "VALIDATION_ERROR", message)

    def _rate_limited(self, message: str, policy: str) -> Response:
        body = {
            "status": "error",
            "message": message,
            "errorType": "RATE_LIMIT",
            "correlationId": self._correlation_id(),
            "policyName": policy,
        }
        return json_response(body, 429)

    def throttle_response(self, request: Request) -> Response:
        if request.path.endswith("/search"):
            return self._rate_limited("You have reached your secondly limit.", "SECONDLY")
        return self._rate_limited("You have reached your ten_secondly_rolling limit.", "TEN_SECONDLY_ROLLING")

    def expired_token_response(self, request: Request) -> Response:
        return self._error(401, "EXPIRED_AUTHENTICATION", "The OAuth token used to make this call expired.")

    # -- gate: auth and limiters ------------------------------------------------------
    def _api(self, handler: Any, *, search: bool = False) -> Any:
        def gated(request: Request, match: re.Match) -> Response:
            token = request.bearer_token()
            portal = next((p for p in self.portals.values() if token and p.access_token == token), None)
            if portal is None:
                log.info("hubspot: %s %s rejected with 401, token missing or unknown", request.method, request.path)
                return self._error(401, "INVALID_AUTHENTICATION", "Authentication credentials are missing or invalid.")
            limited = self._admit(portal, search)
            if limited is not None:
                log.info(
                    "hubspot %s: %s %s rate limited (%s)",
                    portal.account_id,
                    request.method,
                    request.path,
                    limited.body["policyName"],
                )
                return limited
            try:
                body = request.json()
            except ValueError:
                body = None
            try:
                if not isinstance(body, dict):
                    raise ApiError(400, "VALIDATION_ERROR", "Invalid input JSON: the body must be a JSON object")
                response = handler(portal, request, body)
            except ApiError as error:
                log.info(
                    "hubspot %s: %s %s failed with %d: %s",
                    portal.account_id,
                    request.method,
                    request.path,
                    error.status,
                    error.message,
                )
                response = self._error(error.status, error.category, error.message, **error.extra)
            if not search:
                response.headers.update(self._rate_headers(portal))
            return response

        return gated

    def _admit(self, portal: Portal, search: bool) -> Response | None:
        """Count one call, or return the 429 response when a limit is reached.

        Rejected calls are not counted. Search calls have their own per-second
        limiter and do not use the 10-second one. Both kinds count towards the
        daily limit, which resets at midnight in the account's time zone.
        """
        now = self.clock.now()
        today = now.astimezone(portal.timezone).date()
        if portal.day != today:
            portal.day = today
            portal.daily_used = 0
        if portal.daily_used >= int(self.settings["daily_limit"]):
            return self._rate_limited("You have reached your daily limit.", "DAILY")
        if search:
            window = portal.recent_searches
            _trim(window, now - timedelta(seconds=1))
            if len(window) >= int(self.settings["search_per_second"]):
                return self._rate_limited("You have reached your secondly limit.", "SECONDLY")
        else:
            window = portal.recent_calls
            _trim(window, now - timedelta(seconds=10))
            if len(window) >= int(self.settings["ten_second_limit"]):
                response = self._rate_limited(
                    "You have reached your ten_secondly_rolling limit.", "TEN_SECONDLY_ROLLING"
                )
                response.headers.update(self._rate_headers(portal))
                return response
        window.append(now)
        portal.daily_used += 1
        return None

    def _rate_headers(self, portal: Portal) -> dict[str, str]:
        _trim(portal.recent_calls, self.clock.now() - timedelta(seconds=10))
        limit = int(self.settings["ten_second_limit"])
        daily = int(self.settings["daily_limit"])
        return {
            "X-HubSpot-RateLimit-Max": str(limit),
            "X-HubSpot-RateLimit-Remaining": str(max(0, limit - len(portal.recent_calls))),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Daily": str(daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, daily - portal.daily_used)),
        }

    # -- lookups ------------------------------------------------------------------------
    @staticmethod
    def _live_by_email(portal: Portal, email: str) -> dict[str, Any] | None:
        key = email.strip().lower()
        for contact in portal.contacts.values():
            if not contact["archived"] and contact["properties"].get("email", "").strip().lower() == key:
                return contact
        return None

    def _inputs(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(item, dict) for item in inputs):
            raise ApiError(400, "VALIDATION_ERROR", "inputs must be a list of objects")
        if len(inputs) > int(self.settings["max_batch"]):
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"Batch of {len(inputs)} inputs exceeds the maximum of {self.settings['max_batch']}",
            )
        return inputs

    @staticmethod
    def _properties(item: dict[str, Any]) -> dict[str, str]:
        properties = item.get("properties") or {}
        if not isinstance(properties, dict):
            raise ApiError(400, "VALIDATION_ERROR", "properties must be an object of property names to values")
        return {name: to_property_value(value) for name, value in properties.items()}

    @staticmethod
    def _reject_duplicates(keys: list[str]) -> None:
        seen: set[str] = set()
        duplicates = sorted({key for key in keys if key in seen or seen.add(key)})
        if duplicates:
            raise ApiError(400, "VALIDATION_ERROR", f"Duplicate IDs found in batch input: {duplicates}")

    # -- writes ---------------------------------------------------------------------------
    def _create_contact(self, portal: Portal, properties: dict[str, str]) -> dict[str, Any]:
        now_text = format_instant(self.clock.now())
        contact_id = str(portal.next_id)
        portal.next_id += 1
        contact = {
            "id": contact_id,
            "properties": {
                **properties,
                "hs_object_id": contact_id,
                "createdate": now_text,
                "lastmodifieddate": now_text,
            },
            "createdAt": now_text,
            "updatedAt": now_text,
            "archived": False,
        }
        portal.contacts[contact_id] = contact
        portal.creates += 1
        self._apply_scoring(portal, contact)
        return contact

    def _update_contact(self, portal: Portal, contact: dict[str, Any], properties: dict[str, str]) -> None:
        current = contact["properties"]
        changed = False
        for name, value in properties.items():
            if name in ("hs_object_id", "createdate", "lastmodifieddate") or current.get(name, "") == value:
                continue
            current[name] = value
            changed = True
        changed = self._apply_scoring(portal, contact) or changed
        if changed:
            now_text = format_instant(self.clock.now())
            current["lastmodifieddate"] = now_text
            contact["updatedAt"] = now_text
        portal.updates += 1

    def _apply_scoring(self, portal: Portal, contact: dict[str, Any]) -> bool:
        """Recompute the score and mark the contact an MQL the first time it reaches the threshold."""
        scoring = portal.scoring
        if not scoring or not portal.score_field:
            return False
        properties = contact["properties"]
        changed = False
        score = compute_score(scoring, properties, scoring.get("title_field", "jobtitle"))
        if properties.get(portal.score_field) != str(score):
            properties[portal.score_field] = str(score)
            changed = True
        threshold = scoring.get("mql_threshold")
        mql_field = portal.mql_date_field
        if mql_field and threshold is not None and score >= threshold and is_blank(properties.get(mql_field)):
            midnight = datetime.combine(self.clock.now().astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)
            for name in {mql_field, *STANDARD_MQL_DATE_PROPERTIES}:
                if is_blank(properties.get(name)):
                    properties[name] = format_instant(midnight)
            properties["lifecyclestage"] = MQL_STAGE
            changed = True
        return changed

    def _batch_upsert(self, portal: Portal, request: Request, body: dict[str, Any]) -> Response:
        inputs = self._inputs(body)
        keys = []
        for item in inputs:
            id_property = item.get("idProperty") or "hs_object_id"
            if id_property not in ("email", "hs_object_id"):
                raise ApiError(400, "VALIDATION_ERROR", f"{NON_UNIQUE_ID_MESSAGE} {id_property}")
            if is_blank(item.get("id")):
                raise ApiError(400, "VALIDATION_ERROR", "Every input needs an id")
            key = str(item["id"]).strip()
            keys.append(f"{id_property}:{key.lower() if id_property == 'email' else key}")
        self._reject_duplicates(keys)

        results, missing = [], []
        for item in inputs:
            properties = self._properties(item)
            key = str(item["id"]).strip()
            if (item.get("idProperty") or "hs_object_id") == "email":
                contact = self._live_by_email(portal, key)
                if contact is None:
                    properties.setdefault("email", key)
                    results.append(self._object(self._create_contact(portal, properties), properties, new=True))
                    continue
            else:
                contact = portal.contacts.get(key)
                if contact is None or contact["archived"]:
                    missing.append(key)
                    continue
            self._update_contact(portal, contact, properties)
            results.append(self._object(contact, properties, new=False))
        errors = [self._not_found(missing)] if missing else []
        return self._batch_response(results, errors)

    def _batch_create(self, portal: Portal, request: Request, body: dict[str, Any]) -> Response:
        inputs = self._inputs(body)
        trace_ids = [item.get("objectWriteTraceId") for item in inputs]
        multi_status = bool(inputs) and all(trace_ids)
        if multi_status:
            self._reject_duplicates([str(trace_id) for trace_id in trace_ids])

        # Plan first, so a batch rejected with 409 creates nothing.
        planned: list[tuple[dict[str, Any], dict[str, str]]] = []
        conflicts: list[tuple[dict[str, Any], str]] = []
        emails_in_batch: set[str] = set()
        for item in inputs:
            properties = self._properties(item)
            email = properties.get("email", "").strip().lower()
            existing = self._live_by_email(portal, email) if email else None
            if existing is not None:
                conflicts.append((item, existing["id"]))
            elif email and email in emails_in_batch:
                conflicts.append((item, ""))
            else:
                if email:
                    emails_in_batch.add(email)
                planned.append((item, properties))
        if conflicts and not multi_status:
            existing_id = conflicts[0][1]
            message = (
                f"Contact already exists. Existing ID: {existing_id}" if existing_id else "Contact already exists."
            )
            raise ApiError(409, "CONFLICT", message)

        results = []
        for item, properties in planned:
            contact = self._create_contact(portal, properties)
            entry = self._object(contact, properties)
            if item.get("objectWriteTraceId"):
                entry["objectWriteTraceId"] = str(item["objectWriteTraceId"])
            results.append(entry)
        errors = []
        for item, existing_id in conflicts:
            # An email repeated inside the batch conflicts with the contact created from its first occurrence.
            existing_id = existing_id or self._live_by_email(portal, self._properties(item)["email"])["id"]
            errors.append(
                {
                    "status": "error",
                    "category": "CONFLICT",
                    "message": f"Contact already exists. Existing ID: {existing_id}",
                    "context": {"id": [existing_id], "objectWriteTraceId": [str(item["objectWriteTraceId"])]},
                    "objectWriteTraceId": str(item["objectWriteTraceId"]),
                }
            )
        return self._batch_response(results, errors, success_status=201)

    def _batch_update(self, portal: Portal, request: Request, body: dict[str, Any]) -> Response:
        inputs = self._inputs(body)
        for item in inputs:
            id_property = item.get("idProperty")
            # Batch update only addresses contacts by object id, even though email is unique.
            if id_property and id_property != "hs_object_id":
                raise ApiError(400, "VALIDATION_ERROR", NON_UNIQUE_ID_MESSAGE)
            if is_blank(item.get("id")):
                raise ApiError(400, "VALIDATION_ERROR", "Every input needs an id")
        self._reject_duplicates([str(item["id"]).strip() for item in inputs])

        results, missing, errors = [], [], []
        for item in inputs:
            contact_id = str(item["id"]).strip()
            contact = portal.contacts.get(contact_id)
            if contact is None or contact["archived"]:
                missing.append(contact_id)
                continue
            properties = self._properties(item)
            new_email = properties.get("email", "").strip().lower()
            owner = self._live_by_email(portal, new_email) if new_email else None
            if owner is not None and owner["id"] != contact_id:
                errors.append(
                    {
                        "status": "error",
                        "category": "CONFLICT",
                        "message": f"Contact already exists. Existing ID: {owner['id']}",
                        "context": {"id": [contact_id]},
                    }
                )
                continue
            self._update_contact(portal, contact, properties)
            results.append(self._object(contact, properties))
        if missing:
            errors.insert(0, self._not_found(missing))
        return self._batch_response(results, errors)

    # -- reads ------------------------------------------------------------------------------
    def _batch_read(self, portal: Portal, request: Request, body: dict[str, Any]) -> Response:
        inputs = self._inputs(body)
        names = body.get("properties") or DEFAULT_PROPERTIES
        id_property = body.get("idProperty") or "hs_object_id"
        if id_property not in ("email", "hs_object_id"):
            raise ApiError(400, "VALIDATION_ERROR", f"{NON_UNIQUE_ID_MESSAGE} {id_property}")
        want_archived = (request.arg("archived") or "false").lower() == "true"
        results, missing = [], []
        for item in inputs:
            key = str(item.get("id") or "").strip()
            if id_property == "email":
                contact = next(
                    (
                        c
                        for c in portal.contacts.values()
                        if c["archived"] == want_archived and c["properties"].get("email", "").lower() == key.lower()
                    ),
                    None,
                )
            else:
                contact = portal.contacts.get(key)
                if contact is not None and contact["archived"] != want_archived:
                    contact = None
            if contact is None:
                missing.append(key)
            else:
                results.append(self._object(contact, None, names=names))
        errors = [self._not_found(missing)] if missing else []
        return self._batch_response(results, errors)

    def _search(self, portal: Portal, request: Request, body: dict[str, Any]) -> Response:
        groups = body.get("filterGroups") or []
        self._check_filters(groups)
        sorts = body.get("sorts") or []
        if len(sorts) > 1:
            raise ApiError(400, "VALIDATION_ERROR", f"Search supports one sort; got {len(sorts)}")
        page_max = int(self.settings["search_page_max"])
        # HubSpot's default page is 10 results, lowered when the configured maximum is smaller.
        limit = _whole_number(body.get("limit") or min(10, page_max), "limit")
        if not 1 <= limit <= page_max:
            raise ApiError(400, "VALIDATION_ERROR", f"limit must be between 1 and {page_max}")
        after = _whole_number(body.get("after") or 0, "after")
        cap = int(self.settings["search_cap"])
        if after >= cap:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"Paging past {cap} results is not supported; narrow the filters (after={after})",
            )

        matches = [c for c in portal.contacts.values() if not c["archived"] and _matches_groups(c, groups)]
        matches.sort(key=lambda c: int(c["id"]) if c["id"].isdigit() else 0)
        if sorts:
            sort = sorts[0] if isinstance(sorts[0], dict) else {"propertyName": str(sorts[0]), "direction": "ASCENDING"}
            name = sort.get("propertyName", "hs_object_id")
            present = [c for c in matches if not is_blank(c["properties"].get(name))]
            absent = [c for c in matches if is_blank(c["properties"].get(name))]
            present.sort(
                key=lambda c: _comparable(c["properties"][name]), reverse=sort.get("direction") == "DESCENDING"
            )
            matches = present + absent

        names = list(dict.fromkeys([*(body.get("properties") or DEFAULT_PROPERTIES), *SEARCH_BASE_PROPERTIES]))
        end = min(after + limit, cap, len(matches))
        page = [self._object(c, None, names=names) for c in matches[after:end]]
        response: dict[str, Any] = {"total": len(matches), "results": page}
        if end < len(matches):
            response["paging"] = {"next": {"after": str(end)}}
        return json_response(response)

    def _check_filters(self, groups: Any) -> None:
        if not isinstance(groups, list):
            raise ApiError(400, "VALIDATION_ERROR", "filterGroups must be a list")
        if len(groups) > int(self.settings["max_filter_groups"]):
            raise ApiError(
                400, "VALIDATION_ERROR", f"At most {self.settings['max_filter_groups']} filterGroups are allowed"
            )
        total = 0
        for group in groups:
            filters = group.get("filters") or []
            total += len(filters)
            if len(filters) > int(self.settings["max_filters_per_group"]):
                raise ApiError(
                    400,
                    "VALIDATION_ERROR",
                    f"At most {self.settings['max_filters_per_group']} filters per group are allowed",
                )
            for item in filters:
                if item.get("operator") not in OPERATORS:
                    raise ApiError(400, "VALIDATION_ERROR", f"Unsupported filter operator {item.get('operator')!r}")
                if not item.get("propertyName"):
                    raise ApiError(400, "VALIDATION_ERROR", "Every filter needs a propertyName")
        if total > int(self.settings["max_filters"]):
            raise ApiError(
                400, "VALIDATION_ERROR", f"At most {self.settings['max_filters']} filters are allowed in total"
            )

    # -- shapes ---------------------------------------------------------------------------
    def _object(
        self,
        contact: dict[str, Any],
        written: dict[str, str] | None,
        *,
        names: list[str] | None = None,
        new: bool | None = None,
    ) -> dict[str, Any]:
        """Render a contact: the written properties plus the standard ones, or the requested ``names``."""
        properties = contact["properties"]
        if names is None:
            names = list(dict.fromkeys([*(written or {}), "email", "hs_object_id", "createdate", "lastmodifieddate"]))
        entry: dict[str, Any] = {
            "id": contact["id"],
            "properties": {name: properties.get(name) if properties.get(name) != "" else None for name in names},
            "createdAt": contact["createdAt"],
            "updatedAt": contact["updatedAt"],
            "archived": contact["archived"],
        }
        if new is not None:
            entry["new"] = new
        return entry

    @staticmethod
    def _not_found(ids: list[str]) -> dict[str, Any]:
        return {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": "Could not find some CONTACT objects; they may be archived or may not exist. Check the ids.",
            "context": {"ids": ids},
        }

    def _batch_response(
        self, results: list[dict[str, Any]], errors: list[dict[str, Any]], success_status: int = 200
    ) -> Response:
        now_text = format_instant(self.clock.now())
        # HubSpot does not keep input order in batch results; sorting by id makes that visible but repeatable.
        results.sort(key=lambda entry: int(entry["id"]) if entry["id"].isdigit() else 0)
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "requestedAt": now_text,
            "startedAt": now_text,
            "completedAt": now_text,
        }
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return json_response(body, 207)
        return json_response(body, success_status)

    def dump_state(self) -> Any:
        return {
            account_id: {
                "contacts": [
                    portal.contacts[cid] for cid in sorted(portal.contacts, key=lambda c: int(c) if c.isdigit() else 0)
                ],
                "creates": portal.creates,
                "updates": portal.updates,
                "daily_used": portal.daily_used,
            }
            for account_id, portal in self.portals.items()
        }


def _whole_number(raw: Any, name: str) -> int:
    text = str(raw).strip()
    if not text.isdigit():
        raise ApiError(400, "VALIDATION_ERROR", f"{name} must be a whole number, got {raw!r}")
    return int(text)


def _trim(window: deque, start: datetime) -> None:
    while window and window[0] <= start:
        window.popleft()


def _comparable(raw: Any) -> tuple[int, Any]:
    """Turn a property or filter value into a sortable key: numbers, then instants (epoch ms), then text."""
    text = str(raw).strip()
    if NUMBER.match(text):
        return (0, float(text))
    if ISO_DATE.match(text):
        try:
            return (0, parse_instant(text).timestamp() * 1000)
        except ValueError:
            pass
    return (1, text.lower())


def _matches_groups(contact: dict[str, Any], groups: list[dict[str, Any]]) -> bool:
    if not groups:
        return True
    return any(all(_matches_filter(contact, item) for item in group.get("filters") or []) for group in groups)


def _matches_filter(contact: dict[str, Any], item: dict[str, Any]) -> bool:
    operator = item["operator"]
    value = contact["properties"].get(item["propertyName"])
    if operator == "HAS_PROPERTY":
        return not is_blank(value)
    if operator == "NOT_HAS_PROPERTY":
        return is_blank(value)
    if operator in ("IN", "NOT_IN"):
        found = not is_blank(value) and any(_comparable(value) == _comparable(v) for v in item.get("values") or [])
        return found if operator == "IN" else not found
    if is_blank(value):
        return operator == "NEQ"
    left = _comparable(value)
    right = _comparable(item.get("value", ""))
    if operator == "BETWEEN":
        high = _comparable(item.get("highValue", ""))
        return left[0] == right[0] == high[0] and right[1] <= left[1] <= high[1]
    if operator == "EQ":
        return left == right
    if operator == "NEQ":
        return left != right
    if left[0] != right[0]:
        return False
    if operator == "LT":
        return left[1] < right[1]
    if operator == "LTE":
        return left[1] <= right[1]
    if operator == "GT":
        return left[1] > right[1]
    return left[1] >= right[1]


def create_app(sandbox: Sandbox) -> HubSpotApp:
    return HubSpotApp(sandbox)
