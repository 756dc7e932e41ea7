"""Lead rules: validation with readable reasons, email roles, spam flags, field precedence.

Everything here is pure Python over the common lead record that the source
clients return (``source``, ``source_lead_id``, ``submitted_at``, ``fields``,
``answers``, ``is_test``, ``consent``), so it is unit-tested without a database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# Free-mail providers: an address here is a personal address, and its domain
# never matches a CRM account.
FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "outlook.com", "hotmail.com",
        "live.com", "msn.com", "aol.com", "icloud.com", "me.com", "mail.com", "gmx.com", "gmx.de",
        "web.de", "proton.me", "protonmail.com", "yandex.ru", "yandex.com", "mail.ru", "qq.com",
        "163.com", "126.com", "naver.com", "zoho.com",
    }
)
# Disposable inbox providers: leads from them are flagged as suspected spam.
DISPOSABLE_DOMAINS = frozenset(
    {"mailinator.com", "guerrillamail.com", "10minutemail.com", "tempmail.com", "trashmail.com", "yopmail.com", "sharklasers.com"}
)

STANDARD_FIELDS = ("first_name", "last_name", "full_name", "email", "work_email", "phone", "company", "job_title", "country")
# Maximum lengths in characters, sized to what MAP and CRM string fields accept.
MAX_LENGTHS = {
    "first_name": 100,
    "last_name": 100,
    "full_name": 200,
    "email": 254,
    "work_email": 254,
    "phone": 40,
    "company": 255,
    "job_title": 255,
    "country": 100,
}
# Characters a phone number may contain besides digits.
_PHONE_RE = re.compile(r"^\+?[0-9 ()./-]{4,40}$")
# Deliberately simple: one @, a dot in the domain, no spaces, ASCII only.
_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
_VOWELS = set("aeiouyAEIOUY")


@dataclass
class Rejection:
    code: str
    reason: str


@dataclass
class NormalisedLead:
    """A validated lead, ready for the warehouse."""

    email_key: str
    email: str
    business_email: str | None
    personal_email: str | None
    optin_email: str
    first_name: str | None
    last_name: str | None
    phone: str | None
    company: str | None
    job_title: str | None
    country: str | None
    is_spam: bool = False
    spam_reason: str | None = None
    answers: dict[str, Any] = field(default_factory=dict)


def email_key(address: str) -> str:
    """Return the matching key of an address: trimmed and lower-case."""
    return address.strip().lower()


def email_domain(address: str | None) -> str | None:
    if not address or "@" not in address:
        return None
    return address.rsplit("@", 1)[1].strip().lower()


def is_free_mail(address: str | None) -> bool:
    return email_domain(address) in FREE_MAIL_DOMAINS


def check_email(label: str, value: str) -> Rejection | None:
    """Return why ``value`` is not a usable address, or None."""
    text = value.strip()
    if not text:
        return Rejection("empty_answer", f"the {label} answer is empty")
    if not text.isascii():
        return Rejection("non_ascii_email", f"the {label} contains non-ASCII characters")
    if "@" not in text:
        return Rejection("invalid_email", f"the {label} has no @ sign")
    if len(text) > MAX_LENGTHS["email"] or not _EMAIL_RE.match(text):
        return Rejection("invalid_email", f"the {label} is not a valid address")
    return None


def validate(record: dict[str, Any]) -> list[Rejection]:
    """Return every reason the record cannot enter the warehouse (empty when valid)."""
    problems: list[Rejection] = []
    fields: dict[str, Any] = record.get("fields") or {}
    if not record.get("source_lead_id"):
        problems.append(Rejection("missing_id", "the source lead id is missing"))
    if record.get("submitted_at") is None:
        problems.append(Rejection("missing_submitted_at", "the submission time is missing"))

    for name in STANDARD_FIELDS:
        if name not in fields:
            continue
        value = fields[name]
        if not isinstance(value, str):
            problems.append(Rejection("invalid_type", f"the {name} answer is not text"))
            continue
        if not value.strip():
            problems.append(Rejection("empty_answer", f"the {name} answer is empty"))
            continue
        limit = MAX_LENGTHS[name]
        if len(value.strip()) > limit:
            problems.append(Rejection("too_long", f"the {name} answer has {len(value.strip())} characters, over the limit of {limit}"))

    emails = [(n, fields[n]) for n in ("email", "work_email") if isinstance(fields.get(n), str) and fields[n].strip()]
    if not emails and not any(p.code == "empty_answer" and "email" in p.reason for p in problems):
        problems.append(Rejection("missing_email", "no email address was submitted"))
    for name, value in emails:
        rejection = check_email(name.replace("_", " "), value)
        if rejection:
            problems.append(rejection)

    phone = fields.get("phone")
    if isinstance(phone, str) and phone.strip() and len(phone.strip()) <= MAX_LENGTHS["phone"]:
        if not _PHONE_RE.match(phone.strip()):
            problems.append(Rejection("invalid_phone", "the phone number contains characters other than digits and separators"))
    return problems


def email_roles(fields: dict[str, Any]) -> tuple[str, str | None, str | None, str]:
    """Return (email, business_email, personal_email, optin_email) for valid fields.

    ``email`` is the personal address when the lead gave one, else the business
    one; ``business_email`` is the business address when known, else the
    personal one. The opt-in address is the primary email answer exactly as
    submitted, untrimmed.
    """
    given = [fields[n] for n in ("email", "work_email") if isinstance(fields.get(n), str) and fields[n].strip()]
    personal = next((e.strip() for e in given if is_free_mail(e)), None)
    business = next((e.strip() for e in given if not is_free_mail(e)), None)
    email = personal or business
    business_email = business or personal
    optin = fields.get("email") if isinstance(fields.get("email"), str) and fields["email"].strip() else given[0]
    assert email is not None  # validate() guarantees one address
    return email, business_email, personal, optin


def _looks_gibberish(name: str | None) -> bool:
    if not name:
        return False
    letters = [c for c in name if c.isalpha()]
    if len(letters) < 5 or not all(c.isascii() for c in letters):
        return False
    if not any(c in _VOWELS for c in letters):
        return True
    return bool(re.search(r"(.)\1{3,}", name.lower()))


def spam_reason(record: dict[str, Any]) -> str | None:
    """Return why a valid record looks like spam, or None."""
    fields = record.get("fields") or {}
    answers = record.get("answers") or {}
    if str(answers.get("website") or "").strip():
        return "honeypot field filled"
    for name in ("email", "work_email"):
        if email_domain(fields.get(name)) in DISPOSABLE_DOMAINS:
            return "disposable email domain"
    for name in ("first_name", "last_name"):
        if _looks_gibberish(fields.get(name)):
            return f"{name.replace('_', ' ')} looks random"
    return None


def split_full_name(full_name: str | None) -> tuple[str | None, str | None]:
    if not full_name or not full_name.strip():
        return None, None
    parts = full_name.strip().split()
    if len(parts) == 1:
        return parts[0], None
    return " ".join(parts[:-1]), parts[-1]


def normalise(record: dict[str, Any]) -> NormalisedLead | list[Rejection]:
    """Validate and normalise a common lead record."""
    problems = validate(record)
    if problems:
        return problems
    fields = record["fields"]
    email, business_email, personal_email, optin = email_roles(fields)
    first, last = fields.get("first_name"), fields.get("last_name")
    if not first and not last:
        first, last = split_full_name(fields.get("full_name"))
    reason = spam_reason(record)

    def clean(name: str) -> str | None:
        value = fields.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    return NormalisedLead(
        email_key=email_key(email),
        email=email,
        business_email=business_email,
        personal_email=personal_email,
        optin_email=optin,
        first_name=first.strip() if first else None,
        last_name=last.strip() if last else None,
        phone=clean("phone"),
        company=clean("company"),
        job_title=clean("job_title"),
        country=clean("country"),
        is_spam=reason is not None,
        spam_reason=reason,
        answers=record.get("answers") or {},
    )


# Precedence of field values pushed to the MAP, highest first.
VALUE_LAYERS = ("verified", "enriched", "form")


def merge_values(form: dict[str, Any], enriched: dict[str, Any], verified: dict[str, Any]) -> dict[str, Any]:
    """Merge field values: verified beats enriched beats form; blanks never win."""
    merged: dict[str, Any] = {}
    for layer in (form, enriched, verified):
        for name, value in layer.items():
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            merged[name] = value.strip() if isinstance(value, str) else value
    return merged
