"""Marketo Engage stand-in: identity, lead writes and lookups, describe, lead changes.

Each account whose ``map.type`` is ``marketo`` gets its own instance with its
own client credentials, leads, limits and activity log. A REST call reaches an
instance through the access token it carries, because every instance shares
one loopback port.

Like the real REST API, every API-level failure (expired token, rate limit,
daily quota, bad input) returns HTTP 200 with ``success: false`` and
``errors[{code, message}]``. Only gateway-level failures use HTTP status
codes: 401 from the identity endpoint, 413 for a body over 1 MB and 414 for a
URI over 8 KB.
"""

from __future__ import annotations

import base64
import logging
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.core import Request, Response, Sandbox, VendorApp, json_response, parse_instant

log = logging.getLogger(__name__)

DEFAULT_SETTINGS: dict[str, Any] = {
    "token_ttl_seconds": 3600,
    "rate_calls": 100,
    "rate_window_seconds": 20,
    "daily_quota": 50000,
    "max_batch": 300,
    "max_concurrent": 10,
    # Maximum values in one filterValues list, and maximum leads one lookup may match.
    "max_filter_values": 300,
    "max_filter_results": 1000,
    # Activities examined per leadchanges call. Like the real API, a call can
    # then return fewer matching activities (even none) with moreResult true.
    "activity_scan_size": 300,
    # Seconds each counted REST call stays in flight. Above 0, parallel clients
    # can reach the concurrent-call limit (615).
    "latency_seconds": 0.0,
    "max_uri_bytes": 8192,
    "max_body_bytes": 1048576,
}

# Marketo resets the daily quota at midnight US Central time.
QUOTA_TIMEZONE = ZoneInfo("America/Chicago")

UPSERT_ACTIONS = ("createOrUpdate", "createOnly", "updateOnly", "createDuplicate")
DEFAULT_LEAD_FIELDS = ["id", "email", "updatedAt", "createdAt", "firstName", "lastName"]
FILTER_TYPES = ("email", "id")
MAX_BATCH_SIZE = 300

ACTIVITY_NEW_LEAD = 12
ACTIVITY_DATA_VALUE_CHANGE = 13

# Standard lead fields every instance has: (id, REST name, display name, data type, read-only).
STANDARD_FIELDS = [
    (1, "id", "Id", "integer", True),
    (2, "email", "Email Address", "email", False),
    (3, "firstName", "First Name", "string", False),
    (4, "lastName", "Last Name", "string", False),
    (5, "company", "Company Name", "string", False),
    (6, "title", "Job Title", "string", False),
    (7, "phone", "Phone Number", "phone", False),
    (8, "leadSource", "Lead Source", "string", False),
    (9, "leadStatus", "Lead Status", "string", False),
    (10, "leadScore", "Lead Score", "integer", False),
    (11, "createdAt", "Created At", "datetime", True),
    (12, "updatedAt", "Updated At", "datetime", True),
]


def format_instant(instant: datetime) -> str:
    """Format an instant the way Marketo writes lead timestamps, e.g. 2026-01-01T00:05:12Z."""
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def compute_score(scoring: dict[str, Any], values: dict[str, Any], title_field: str) -> int:
    """Score one MAP record: base, plus per-field points for non-blank fields, plus the largest title keyword bonus.

    A keyword counts when it appears in the title as a whole word, ignoring
    case. The HubSpot stand-in uses the same rule.
    """
    score = scoring.get("base", 0)
    for name, points in (scoring.get("per_field") or {}).items():
        if not is_blank(values.get(name)):
            score += points
    title = str(values.get(title_field) or "").lower()
    bonuses = [
        points
        for word, points in (scoring.get("keywords") or {}).items()
        if re.search(rf"\b{re.escape(str(word).lower())}\b", title)
    ]
    score += max(bonuses, default=0)
    return int(score)


class ApiError(Exception):
    """An API-level failure, returned as HTTP 200 with ``success: false``."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class FieldDef:
    id: int
    name: str
    display_name: str
    data_type: str
    read_only: bool = False

    def describe(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": self.id,
            "displayName": self.display_name,
            "dataType": self.data_type,
            "rest": {"name": self.name, "readOnly": self.read_only},
            "soap": {"name": self.name, "readOnly": self.read_only},
        }
        if self.data_type in ("string", "email", "phone"):
            entry["length"] = 255
        return entry


@dataclass
class Instance:
    """One Marketo instance: the MAP of one account."""

    account_id: str
    client_id: str
    client_secret: str
    munchkin_id: str
    fields: dict[str, FieldDef]
    leads: dict[int, dict[str, Any]]
    score_field: str | None
    mql_date_field: str | None
    scoring: dict[str, Any] | None
    next_lead_id: int
    token: str | None = None
    token_expires_at: datetime | None = None
    tokens_issued: int = 0
    # Sandbox-clock instants of the REST calls inside the current rate window.
    recent_calls: deque = field(default_factory=deque)
    quota_day: date | None = None
    quota_used: int = 0
    # Monotonic deadlines of calls still in flight (see latency_seconds).
    in_flight: list[float] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)
    creates: int = 0
    updates: int = 0


def _encode_token(text: str) -> str:
    return base64.b32encode(text.encode("ascii")).decode("ascii")


def _decode_token(token: str) -> str:
    try:
        return base64.b32decode(token.encode("ascii")).decode("ascii")
    except (ValueError, UnicodeError) as error:
        raise ApiError(1003, f"Invalid nextPageToken '{token}'") from error


class MarketoApp(VendorApp):
    name = "marketo"

    def __init__(self, sandbox: Sandbox):
        super().__init__(sandbox)
        self.settings = {**DEFAULT_SETTINGS, **(sandbox.scenario.get("settings", {}).get("marketo") or {})}
        self.instances: dict[str, Instance] = {}
        # Every token ever issued, so an expired token gets 602 and an unknown one 601.
        self._tokens: dict[str, tuple[Instance, datetime]] = {}
        self._request_count = 0
        self._activity_id = 100000
        for account in sandbox.scenario.get("accounts", []):
            map_config = account.get("map") or {}
            if map_config.get("type") == "marketo":
                instance = self._load_instance(account["account_id"], map_config)
                self.instances[instance.account_id] = instance

        self.route("GET", r"/identity/oauth/token", self._identity)
        self.route("POST", r"/identity/oauth/token", self._identity)
        self.route("GET", r"/rest/v1/leads\.json", self._rest(self._get_leads))
        self.route("POST", r"/rest/v1/leads\.json", self._rest(self._post_leads))
        self.route("GET", r"/rest/v1/leads/describe\.json", self._rest(self._describe))
        self.route("GET", r"/rest/v1/leads/describe2\.json", self._rest(self._describe2))
        self.route("GET", r"/rest/v1/activities/pagingtoken\.json", self._rest(self._paging_token))
        self.route("GET", r"/rest/v1/activities/leadchanges\.json", self._rest(self._lead_changes))

    # -- loading ------------------------------------------------------------
    @staticmethod
    def _load_fields(account_id: str, config: dict[str, Any]) -> dict[str, FieldDef]:
        """Build the field definitions: the scenario's describe entries, then any missing standard field.

        A standard field keeps its usual id unless the scenario already gave that id to another field.
        """
        fields: dict[str, FieldDef] = {}
        for entry in config.get("fields") or []:
            rest = entry.get("rest") or {}
            name = rest.get("name") or entry.get("name")
            if not name or "id" not in entry:
                raise ValueError(f"marketo account {account_id}: field entry needs an id and rest.name: {entry}")
            fields[name] = FieldDef(
                id=int(entry["id"]),
                name=name,
                display_name=entry.get("displayName", name),
                data_type=entry.get("dataType", "string"),
                read_only=bool(rest.get("readOnly", False)),
            )
        used_ids = {definition.id for definition in fields.values()}
        spare_id = max(used_ids, default=1000)
        for field_id, name, display_name, data_type, read_only in STANDARD_FIELDS:
            if name in fields:
                continue
            if field_id in used_ids:
                spare_id += 1
                field_id = spare_id
            used_ids.add(field_id)
            fields[name] = FieldDef(field_id, name, display_name, data_type, read_only)
        return fields

    def _load_instance(self, account_id: str, config: dict[str, Any]) -> Instance:
        fields = self._load_fields(account_id, config)
        used_ids = {definition.id for definition in fields.values()}
        next_field_id = max(used_ids, default=1000)

        def add_field(name: str, data_type: str) -> None:
            nonlocal next_field_id
            next_field_id += 1
            fields[name] = FieldDef(next_field_id, name, name, data_type)

        score_field = config.get("score_field")
        mql_date_field = config.get("mql_date_field")
        for name, data_type in ((score_field, "integer"), (mql_date_field, "date")):
            if name and name not in fields:
                add_field(name, data_type)

        leads: dict[int, dict[str, Any]] = {}
        for raw in config.get("leads") or []:
            lead = dict(raw)
            lead_id = int(lead["id"])
            lead["id"] = lead_id
            # Loaded leads keep every written value, so a field the scenario
            # forgot to describe is added as a string field instead of failing.
            for name in lead:
                if name not in fields:
                    add_field(name, "string")
            leads[lead_id] = lead
        return Instance(
            account_id=account_id,
            client_id=str(config.get("client_id", "")),
            client_secret=str(config.get("client_secret", "")),
            munchkin_id=str(config.get("munchkin_id", "")),
            fields=fields,
            leads=leads,
            score_field=score_field,
            mql_date_field=mql_date_field,
            scoring=config.get("scoring"),
            next_lead_id=max(leads, default=1000000) + 1,
        )

    # -- envelopes ----------------------------------------------------------
    def _request_id(self) -> str:
        self._request_count += 1
        millis = int(self.clock.now().timestamp() * 1000)
        return f"{self._request_count:x}#{millis:x}"

    def _success(self, result: list[Any] | None, **extra: Any) -> Response:
        body: dict[str, Any] = {"requestId": self._request_id(), "success": True}
        if result is not None:
            body["result"] = result
        body.update(extra)
        return json_response(body)

    def _failure(self, code: int, message: str) -> Response:
        return json_response(
            {"requestId": self._request_id(), "success": False, "errors": [{"code": str(code), "message": message}]}
        )

    def throttle_response(self, request: Request) -> Response:
        return self._failure(606, self._rate_message())

    def expired_token_response(self, request: Request) -> Response:
        return self._failure(602, "Access token expired")

    def _rate_message(self) -> str:
        return f"Max rate limit '{self.settings['rate_calls']}' exceeded with in '{self.settings['rate_window_seconds']}' secs"

    # -- identity -------------------------------------------------------------
    def _identity(self, request: Request, match: re.Match) -> Response:
        params = {name: values[0] for name, values in request.query.items()}
        if request.method == "POST" and request.body:
            params.update({name: values[0] for name, values in request.form().items()})
        if params.get("grant_type") != "client_credentials":
            return json_response(
                {"error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials"}, 400
            )
        instance = next((i for i in self.instances.values() if i.client_id == params.get("client_id")), None)
        if instance is None or instance.client_secret != params.get("client_secret"):
            log.info("marketo: identity rejected client id %r with 401", params.get("client_id"))
            return json_response({"error": "unauthorized", "error_description": "Bad client credentials"}, 401)

        now = self.clock.now()
        if instance.token is None or instance.token_expires_at is None or instance.token_expires_at <= now:
            instance.tokens_issued += 1
            seed = f"{instance.account_id}:{instance.tokens_issued}"
            instance.token = f"{uuid.uuid5(uuid.NAMESPACE_URL, seed)}:sj"
            instance.token_expires_at = now + timedelta(seconds=float(self.settings["token_ttl_seconds"]))
            self._tokens[instance.token] = (instance, instance.token_expires_at)
            log.info("marketo %s: issued access token %d", instance.account_id, instance.tokens_issued)
        remaining = int((instance.token_expires_at - now).total_seconds())
        return json_response(
            {
                "access_token": instance.token,
                "token_type": "bearer",
                "expires_in": remaining,
                "scope": f"api-user@{instance.munchkin_id or instance.account_id}",
            }
        )

    # -- REST gate: size, auth, quota, rate and concurrency checks ------------
    def _rest(self, handler: Any) -> Any:
        def gated(request: Request, match: re.Match) -> Response:
            uri_bytes = len(request.path) + (len(request.raw_query) + 1 if request.raw_query else 0)
            if uri_bytes > int(self.settings["max_uri_bytes"]):
                log.info("marketo: %s %s rejected with 414, URI is %d bytes", request.method, request.path, uri_bytes)
                return Response(status=414, body="414 Request-URI Too Large", headers={"Content-Type": "text/plain"})
            if len(request.body) > int(self.settings["max_body_bytes"]):
                log.info(
                    "marketo: %s %s rejected with 413, body is %d bytes",
                    request.method,
                    request.path,
                    len(request.body),
                )
                return Response(status=413, body="413 Request Entity Too Large", headers={"Content-Type": "text/plain"})
            try:
                instance = self._authenticate(request)
                latency = self._admit(instance)
                response = handler(instance, request)
            except ApiError as error:
                log.info(
                    "marketo: %s %s failed with code %d: %s", request.method, request.path, error.code, error.message
                )
                return self._failure(error.code, error.message)
            response.delay = max(response.delay, latency)
            return response

        return gated

    def _authenticate(self, request: Request) -> Instance:
        # Marketo is removing the access_token query parameter. This stand-in
        # already rejects it, so clients must use the Authorization header.
        if "access_token" in request.query:
            raise ApiError(601, "Access token invalid: send it in the Authorization header, not as a query parameter")
        token = request.bearer_token()
        if not token:
            raise ApiError(600, "Access token not specified")
        issued = self._tokens.get(token)
        if issued is None:
            raise ApiError(601, "Access token invalid")
        instance, expires_at = issued
        if expires_at <= self.clock.now():
            raise ApiError(602, "Access token expired")
        return instance

    def _admit(self, instance: Instance) -> float:
        """Count one call against the quota, the rate window and the in-flight limit.

        Rejected calls are not counted, so a client that backs off gets through
        once the window has moved on. Returns the seconds the response is delayed.
        """
        now = self.clock.now()
        today = now.astimezone(QUOTA_TIMEZONE).date()
        if instance.quota_day != today:
            instance.quota_day = today
            instance.quota_used = 0
        if instance.quota_used >= int(self.settings["daily_quota"]):
            raise ApiError(607, "Daily quota reached")

        window_start = now - timedelta(seconds=float(self.settings["rate_window_seconds"]))
        while instance.recent_calls and instance.recent_calls[0] <= window_start:
            instance.recent_calls.popleft()
        if len(instance.recent_calls) >= int(self.settings["rate_calls"]):
            raise ApiError(606, self._rate_message())

        # In-flight calls are measured in real time, because the response delay is real.
        wall = time.monotonic()
        instance.in_flight = [deadline for deadline in instance.in_flight if deadline > wall]
        if len(instance.in_flight) >= int(self.settings["max_concurrent"]):
            raise ApiError(615, f"Concurrent access limit '{self.settings['max_concurrent']}' reached")

        latency = float(self.settings["latency_seconds"])
        instance.quota_used += 1
        instance.recent_calls.append(now)
        if latency > 0:
            instance.in_flight.append(wall + latency)
        return latency

    # -- leads: read ------------------------------------------------------------
    def _post_leads(self, instance: Instance, request: Request) -> Response:
        if (request.arg("_method") or "").upper() == "GET":
            params = {name: values[0] for name, values in request.query.items() if name != "_method"}
            params.update({name: values[0] for name, values in request.form().items()})
            return self._lookup_leads(instance, params)
        return self._upsert_leads(instance, request)

    def _get_leads(self, instance: Instance, request: Request) -> Response:
        return self._lookup_leads(instance, {name: values[0] for name, values in request.query.items()})

    def _lookup_leads(self, instance: Instance, params: dict[str, str]) -> Response:
        filter_type = params.get("filterType")
        if not filter_type:
            raise ApiError(1003, "filterType is required")
        if filter_type not in FILTER_TYPES:
            raise ApiError(
                1003, f"Invalid filterType '{filter_type}'; this sandbox searches by {', '.join(FILTER_TYPES)}"
            )
        values = [value.strip() for value in (params.get("filterValues") or "").split(",") if value.strip()]
        if not values:
            raise ApiError(1003, "filterValues is required")
        if len(values) > int(self.settings["max_filter_values"]):
            raise ApiError(
                1003, f"filterValues has {len(values)} values; the maximum is {self.settings['max_filter_values']}"
            )
        fields = (
            [name.strip() for name in params["fields"].split(",") if name.strip()] if params.get("fields") else None
        )
        fields = fields or list(DEFAULT_LEAD_FIELDS)
        for name in fields:
            if name not in instance.fields:
                raise ApiError(1006, f"Field '{name}' not found")
        batch_size = self._batch_size(params.get("batchSize"))

        if filter_type == "email":
            requested_emails = {value.lower() for value in values}
            matches = [
                lead for lead in instance.leads.values() if str(lead.get("email") or "").lower() in requested_emails
            ]
        else:
            requested_ids = {int(value) for value in values if value.isdigit()}
            matches = [lead for lead in instance.leads.values() if lead["id"] in requested_ids]
        matches.sort(key=lambda lead: lead["id"])
        if len(matches) > int(self.settings["max_filter_results"]):
            raise ApiError(1003, "Too many results")

        offset = 0
        if params.get("nextPageToken"):
            decoded = _decode_token(params["nextPageToken"])
            if not decoded.startswith("offset:"):
                raise ApiError(1003, f"Invalid nextPageToken '{params['nextPageToken']}'")
            offset = int(decoded.split(":", 1)[1])
        page = matches[offset : offset + batch_size]
        result = [{"id": lead["id"], **{name: lead.get(name) for name in fields}} for lead in page]
        extra = {}
        if offset + batch_size < len(matches):
            extra["nextPageToken"] = _encode_token(f"offset:{offset + batch_size}")
        return self._success(result, **extra)

    @staticmethod
    def _batch_size(raw: str | None) -> int:
        if raw is None or raw == "":
            return MAX_BATCH_SIZE
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_BATCH_SIZE:
            raise ApiError(1003, f"Invalid batchSize '{raw}'; use 1 to {MAX_BATCH_SIZE}")
        return int(raw)

    def _describe(self, instance: Instance, request: Request) -> Response:
        return self._success([definition.describe() for definition in instance.fields.values()])

    def _describe2(self, instance: Instance, request: Request) -> Response:
        fields = [
            {
                "name": definition.name,
                "displayName": definition.display_name,
                "dataType": definition.data_type,
                "updateable": not definition.read_only,
                "crmManaged": False,
            }
            for definition in instance.fields.values()
        ]
        return self._success(
            [{"name": "Lead", "searchableFields": [[name] for name in FILTER_TYPES], "fields": fields}]
        )

    # -- leads: write -----------------------------------------------------------
    def _upsert_leads(self, instance: Instance, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError as error:
            raise ApiError(609, "Invalid JSON") from error
        if not isinstance(body, dict):
            raise ApiError(609, "Invalid JSON")
        action = body.get("action") or "createOrUpdate"
        if action not in UPSERT_ACTIONS:
            raise ApiError(1003, f"Invalid action '{action}'")
        lookup_field = body.get("lookupField") or "email"
        # NOTE: real instances also accept other dedupe fields as lookupField, but this sandbox supports email and id.
        if lookup_field not in ("email", "id"):
            raise ApiError(1003, f"Invalid lookupField '{lookup_field}'; this sandbox supports email and id")
        if lookup_field == "id" and action != "updateOnly":
            raise ApiError(1003, "lookupField 'id' is only allowed with action updateOnly")
        records = body.get("input")
        if not isinstance(records, list) or not records:
            raise ApiError(1003, "input must be a non-empty list of leads")
        # NOTE: the code and message for an oversized batch are a guess. Marketo documents only the 300 limit.
        if len(records) > int(self.settings["max_batch"]):
            raise ApiError(1003, f"Batch of {len(records)} leads exceeds the maximum of {self.settings['max_batch']}")
        results = [self._upsert_one(instance, action, lookup_field, record) for record in records]
        return self._success(results)

    def _upsert_one(self, instance: Instance, action: str, lookup_field: str, record: Any) -> dict[str, Any]:
        if not isinstance(record, dict):
            return _skipped(1003, "Lead must be a JSON object")
        for name in record:
            if name not in instance.fields:
                return _skipped(1006, f"Field '{name}' not found")
            if instance.fields[name].read_only and not (name == "id" and lookup_field == "id"):
                return _skipped(1003, f"Field '{name}' is read-only")

        if lookup_field == "id":
            lead_id = record.get("id")
            if isinstance(lead_id, str) and lead_id.isdigit():
                lead_id = int(lead_id)
            lead = instance.leads.get(lead_id) if isinstance(lead_id, int) else None
            if lead is None:
                return _skipped(1004, "Lead not found")
            return self._update(instance, lead, record)

        email = record.get("email")
        if action == "createDuplicate":
            return self._create(instance, record)
        if is_blank(email):
            return _skipped(1003, "Value for lookup field 'email' is required")
        key = str(email).strip().lower()
        matches = [lead for lead in instance.leads.values() if str(lead.get("email") or "").strip().lower() == key]
        if action == "createOnly":
            return _skipped(1005, "Lead already exists") if matches else self._create(instance, record)
        if len(matches) > 1:
            return _skipped(1007, "Multiple lead match lookup criteria")
        if not matches:
            return _skipped(1004, "Lead not found") if action == "updateOnly" else self._create(instance, record)
        return self._update(instance, matches[0], record)

    def _create(self, instance: Instance, record: dict[str, Any]) -> dict[str, Any]:
        now_text = format_instant(self.clock.now())
        lead_id = instance.next_lead_id
        instance.next_lead_id += 1
        lead = {"id": lead_id, **record, "createdAt": now_text, "updatedAt": now_text}
        instance.leads[lead_id] = lead
        instance.creates += 1
        self._log_activity(instance, lead_id, ACTIVITY_NEW_LEAD, None, None, None, "Web service API", "New lead")
        self._apply_scoring(instance, lead)
        return {"id": lead_id, "status": "created"}

    def _update(self, instance: Instance, lead: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
        changed = False
        for name, value in record.items():
            if name == "id" or lead.get(name) == value:
                continue
            self._log_activity(
                instance,
                lead["id"],
                ACTIVITY_DATA_VALUE_CHANGE,
                name,
                lead.get(name),
                value,
                "Web service API",
                "Lead update",
            )
            lead[name] = value
            changed = True
        changed = self._apply_scoring(instance, lead) or changed
        if changed:
            lead["updatedAt"] = format_instant(self.clock.now())
        instance.updates += 1
        return {"id": lead["id"], "status": "updated"}

    def _apply_scoring(self, instance: Instance, lead: dict[str, Any]) -> bool:
        """Recompute the score and set the MQL date the first time the threshold is reached.

        Returns whether a field changed. Each change is logged as a Data Value Change activity.
        """
        scoring = instance.scoring
        if not scoring or not instance.score_field:
            return False
        changed = False
        score = compute_score(scoring, lead, scoring.get("title_field", "title"))
        if lead.get(instance.score_field) != score:
            self._log_activity(
                instance,
                lead["id"],
                ACTIVITY_DATA_VALUE_CHANGE,
                instance.score_field,
                lead.get(instance.score_field),
                score,
                "Marketo Flow Action",
                "Lead scoring",
            )
            lead[instance.score_field] = score
            changed = True
        threshold = scoring.get("mql_threshold")
        mql_field = instance.mql_date_field
        if mql_field and threshold is not None and score >= threshold and is_blank(lead.get(mql_field)):
            mql_date = self.clock.now().date().isoformat()
            self._log_activity(
                instance,
                lead["id"],
                ACTIVITY_DATA_VALUE_CHANGE,
                mql_field,
                None,
                mql_date,
                "Marketo Flow Action",
                "MQL threshold",
            )
            lead[mql_field] = mql_date
            changed = True
        return changed

    def _log_activity(
        self,
        instance: Instance,
        lead_id: int,
        type_id: int,
        field_name: str | None,
        old_value: Any,
        new_value: Any,
        source: str,
        reason: str,
    ) -> None:
        self._activity_id += 1
        activity: dict[str, Any] = {
            "id": self._activity_id,
            "marketoGUID": str(self._activity_id),
            "leadId": lead_id,
            "activityDate": format_instant(self.clock.now()),
            "activityTypeId": type_id,
            "fields": [],
            "attributes": [{"name": "Source", "value": source}, {"name": "Reason", "value": reason}],
        }
        if field_name is not None:
            definition = instance.fields[field_name]
            activity["primaryAttributeValueId"] = definition.id
            activity["primaryAttributeValue"] = definition.display_name
            activity["fields"] = [
                {
                    "id": definition.id,
                    "name": field_name,
                    "newValue": None if new_value is None else str(new_value),
                    "oldValue": None if old_value is None else str(old_value),
                }
            ]
        instance.activities.append(activity)

    # -- activities ---------------------------------------------------------------
    def _paging_token(self, instance: Instance, request: Request) -> Response:
        since = request.arg("sinceDatetime")
        if not since:
            raise ApiError(1003, "sinceDatetime is required")
        try:
            instant = parse_instant(since)
        except ValueError as error:
            raise ApiError(1003, f"Invalid sinceDatetime '{since}'; use ISO-8601 with an offset") from error
        return self._success(None, nextPageToken=_encode_token(f"since:{int(instant.timestamp())}"))

    def _lead_changes(self, instance: Instance, request: Request) -> Response:
        token = request.arg("nextPageToken")
        if not token:
            raise ApiError(1003, "nextPageToken is required; get one from activities/pagingtoken.json")
        fields = [name.strip() for name in (request.arg("fields") or "").split(",") if name.strip()]
        if not fields:
            raise ApiError(1003, "fields is required")
        for name in fields:
            if name not in instance.fields:
                raise ApiError(1006, f"Field '{name}' not found")
        batch_size = self._batch_size(request.arg("batchSize"))

        kind, _, value = _decode_token(token).partition(":")
        if kind == "since":
            since = datetime.fromtimestamp(int(value), tz=UTC)
            pending = [a for a in instance.activities if parse_instant(a["activityDate"]) >= since]
        elif kind == "after":
            pending = [a for a in instance.activities if a["id"] > int(value)]
        else:
            raise ApiError(1003, f"Invalid nextPageToken '{token}'")

        requested_fields = set(fields)
        results: list[dict[str, Any]] = []
        position = int(value) if kind == "after" else None
        scanned = 0
        for activity in pending[: int(self.settings["activity_scan_size"])]:
            scanned += 1
            position = activity["id"]
            is_new_lead = activity["activityTypeId"] == ACTIVITY_NEW_LEAD
            if is_new_lead or any(change["name"] in requested_fields for change in activity["fields"]):
                results.append(activity)
                if len(results) >= batch_size:
                    break
        # Like the real API, always return a token. With nothing new it points at the same position.
        next_token = token if position is None else _encode_token(f"after:{position}")
        more = scanned < len(pending)
        return self._success(results or None, nextPageToken=next_token, moreResult=more)

    # -- state ----------------------------------------------------------------------
    def dump_state(self) -> Any:
        return {
            account_id: {
                "leads": [dict(instance.leads[lead_id]) for lead_id in sorted(instance.leads)],
                "creates": instance.creates,
                "updates": instance.updates,
                "activities": len(instance.activities),
                "quota_used": instance.quota_used,
            }
            for account_id, instance in self.instances.items()
        }


def _skipped(code: int, message: str) -> dict[str, Any]:
    return {"status": "skipped", "reasons": [{"code": str(code), "message": message}]}


def create_app(sandbox: Sandbox) -> MarketoApp:
    return MarketoApp(sandbox)
