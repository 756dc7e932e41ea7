"""Generate the committed sandbox scenarios from a seed.

    python scenarios/generate.py [--small] [--seed 7] [--out PATH]

writes ``scenarios/default.json`` (six accounts, more than 1,000 leads over six
15-minute windows) or, with ``--small``, ``scenarios/small.json`` (two
accounts, about 40 leads, for fast tests). The output
depends only on the seed: every draw comes from one ``random.Random``, no
wall clock is read, keys are sorted and lists have a fixed order, so two runs
write byte-identical files.

Every hard case the data contains is listed in the top-level ``notes``.
``expected`` contains the per-account outcomes computed from the generator's
own bookkeeping: which leads it made valid, quarantined, test or spam, and
which opportunities its attribution check found triggered or influenced.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sandbox.scenario import validate  # noqa: E402  (needs the repository root on sys.path)

FREE_MAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "mail.ru", "qq.com", "163.com")
DISPOSABLE_DOMAINS = ("mailinator.com", "guerrillamail.com", "yopmail.com", "trashmail.com", "10minutemail.com")
# The attribution data must not contain opportunities created after this instant.
# NOTE: leads convert on 2026-11-29 and 2026-11-30, so under this limit no opportunity
# can be created more than influenced_window_days after a conversion. That case is absent.
OPPORTUNITY_CREATED_LIMIT = datetime(2026, 12, 1, tzinfo=UTC)
DEFAULT_ATTRIBUTION = {"triggered_window_days": 90, "influenced_window_days": 365}

MALFORMED_CASES = (
    "email_missing",
    "email_invalid",
    "email_non_ascii",
    "email_empty",
    "company_too_long",
    "first_name_too_long",
    "phone_invalid",
)

# --------------------------------------------------------------------------- name pools

GIVEN_NAMES = (
    "Ana", "Ben", "Carla", "Diego", "Emma", "Felix", "Greta", "Hugo", "Ines", "Jonas", "Karin", "Liam",
    "Maya", "Noah", "Pablo", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wes", "Xenia", "Yusuf",
    "Zoë", "José", "Søren", "Łukasz", "Chloé", "Björn", "Ayşe", "Dana", "Marta", "Priya", "Kofi", "Lena",
    "Mateo", "Nora", "Oskar", "Ruth", "Sami", "Theo", "Ulla", "Viktor", "Wanda", "Aiko", "Bruno", "Clara",
)  # fmt: skip
FAMILY_NAMES = (
    "Alvarez", "Becker", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Jansen", "Kowalski",
    "Larsen", "Moreau", "Novak", "O'Brien", "Petersen", "Quintana", "Rossi", "Schmidt", "Tanaka", "Usman",
    "Vogel", "Weber", "Yilmaz", "Zimmermann", "Müller", "Núñez", "Šimek", "de la Cruz", "Smith-Jones", "Kim",
    "Lopez", "Mensah", "Nakamura", "Okafor", "Patel", "Reyes", "Silva", "Torres", "Varga", "Walsh",
)  # fmt: skip
# (given, family, given in ASCII, family in ASCII) per script; the ASCII forms build the email addresses.
NON_LATIN_NAMES = {
    "chinese": (
        ("伟", "王", "wei", "wang"),
        ("芳", "李", "fang", "li"),
        ("静", "张", "jing", "zhang"),
        ("磊", "刘", "lei", "liu"),
    ),
    "cyrillic": (
        ("Иван", "Петров", "ivan", "petrov"),
        ("Анна", "Смирнова", "anna", "smirnova"),
        ("Дмитрий", "Волков", "dmitry", "volkov"),
        ("Ольга", "Козлова", "olga", "kozlova"),
    ),
    "arabic": (
        ("محمد", "العلي", "mohammed", "alali"),
        ("فاطمة", "الحسن", "fatima", "alhassan"),
        ("عمر", "الخطيب", "omar", "alkhatib"),
        ("ليلى", "منصور", "layla", "mansour"),
    ),
    "greek": (
        ("Γιώργος", "Παπαδόπουλος", "giorgos", "papadopoulos"),
        ("Ελένη", "Νικολάου", "eleni", "nikolaou"),
        ("Νίκος", "Οικονόμου", "nikos", "oikonomou"),
        ("Μαρία", "Γεωργίου", "maria", "georgiou"),
    ),
}
SCRIPT_ORDER = ("chinese", "cyrillic", "arabic", "greek")
SCRIPT_COUNTRY = {"chinese": "CN", "cyrillic": "RU", "arabic": "AE", "greek": "GR"}
SCRIPT_FREE_MAIL = {"chinese": ("qq.com", "163.com"), "cyrillic": ("mail.ru",)}

COMPANY_PREFIXES = (
    "Acme", "Bright", "Cobalt", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Iris", "Juno", "Keystone",
    "Lumen", "Maple", "Nimbus", "Onyx", "Pioneer", "Quill", "Redwood", "Summit", "Tidal", "Umber", "Vertex",
    "Willow", "Zephyr", "Aurora", "Beacon", "Cedar", "Drift",
)  # fmt: skip
# Company name suffix -> (industry, sector).
COMPANY_KINDS = {
    "Analytics": ("Software", "Information Technology"),
    "Logistics": ("Transportation", "Industrials"),
    "Labs": ("Biotechnology", "Health Care"),
    "Health": ("Health Care Providers", "Health Care"),
    "Foods": ("Food Products", "Consumer Staples"),
    "Capital": ("Capital Markets", "Financials"),
    "Robotics": ("Machinery", "Industrials"),
    "Media": ("Media", "Communication Services"),
    "Energy": ("Renewable Energy", "Utilities"),
    "Software": ("Software", "Information Technology"),
}
LEGAL_SUFFIXES = ("", "", " Inc.", " GmbH", " Ltd", " B.V.", " SAS")

# Form title -> title the enrichment provider returns, where they differ.
TITLES = {
    "Marketing Manager": "Marketing Manager",
    "Director of Marketing": "Marketing Director",
    "VP Sales": "Vice President, Sales",
    "Head of Growth": "Head of Growth",
    "Demand Generation Manager": "Demand Gen Manager",
    "Data Analyst": "Senior Data Analyst",
    "Chief Revenue Officer": "CRO",
    "Operations Lead": "Operations Lead",
    "Software Engineer": "Software Engineer",
    "Product Manager": "Product Manager",
    "VP Engineering": "VP of Engineering",
    "Sales Director": "Director of Sales",
    "Head of Procurement": "Head of Procurement",
    "IT Manager": "IT Manager",
    "Account Executive": "Account Executive",
    "Founder": "Founder & CEO",
    "Business Analyst": "Business Analyst",
    "Customer Success Manager": "Customer Success Manager",
}
TITLE_SENIORITY = {
    "VP": "executive",
    "Chief": "executive",
    "Founder": "executive",
    "Director": "director",
    "Head": "director",
}
COUNTRIES = {
    "US": "United States", "DE": "Germany", "GB": "United Kingdom", "FR": "France", "NL": "Netherlands",
    "ES": "Spain", "SE": "Sweden", "PL": "Poland", "CA": "Canada", "AU": "Australia", "CN": "China",
    "RU": "Russia", "AE": "United Arab Emirates", "GR": "Greece",
}  # fmt: skip
LATIN_COUNTRIES = ("US", "DE", "GB", "FR", "NL", "ES", "SE", "PL", "CA", "AU")
COUNTRY_CALLING_CODES = {"US": "1", "CA": "1", "DE": "49", "GB": "44", "FR": "33", "NL": "31", "ES": "34", "SE": "46",
                         "PL": "48", "AU": "61", "CN": "86", "RU": "7", "AE": "971", "GR": "30"}  # fmt: skip

# Text that breaks one validation rule each; the lead stays otherwise well formed.
NON_ASCII_EMAIL_LOCALS = ("jürgen.weiß", "zoë.martin", "андрей.волков", "josé.núñez", "søren.holm", "françois.roux")
LONG_FIRST_NAME = (
    "Please call me back about pricing for our whole team of fifty people across three regions, ideally before "
    "the end of next week"
)
LONG_COMPANY_WORDS = ("Consolidated", "International", "Holdings", "and", "Partners", "Group", "Services", "Trading")
INVALID_PHONES = ("+1 555 CALL NOW", "555-010-ABCD", "call me on weekdays", "+44 20 7946 O958", "ext. twelve")
HONEYPOT_VALUES = ("https://seo-boost.example.net", "http://cheap-links.example.org", "www.example.net/promo")
ORIGIN_PATHS = ("/demo", "/pricing", "/resources/ebook", "/contact")
PIXEL_FORMS = ("demo-request", "pricing-contact", "ebook-download")

# --------------------------------------------------------------------------- records


@dataclass
class Company:
    name: str
    domain: str
    industry: str
    sector: str
    employees: int
    country: str
    # Listed in enrichment.companies, so a lookup by domain alone finds it.
    known: bool


@dataclass
class Person:
    given: str
    family: str
    given_ascii: str
    family_ascii: str
    title: str
    country: str
    phone: str
    company: Company
    work_email: str | None
    personal_email: str | None
    # Enrichment outcome: "person" (person and company), "company_only" or "none".
    enrichment: str = "none"
    pending_first: bool = False
    # Writing system of a non-Latin name (chinese, cyrillic, arabic, greek); None for Latin names.
    script: str | None = None

    @property
    def email(self) -> str:
        """The lead's ``email``: the personal address when given, else the business one."""
        return self.personal_email or self.work_email or ""

    @property
    def business_email(self) -> str:
        """The lead's ``business_email``: the business address when known, else the personal one."""
        return self.work_email or self.personal_email or ""


@dataclass
class Lead:
    account_id: str
    source: str
    native_id: str
    submitted: datetime
    person: Person
    # Answers as the platform returns them; None means the question was not answered.
    email_answer: str | None
    work_email_answer: str | None
    first_name: str | None
    last_name: str | None
    company: str | None
    title: str | None
    phone: str | None
    form_key: str
    is_test: bool = False
    spam_reason: str | None = None
    quarantine_reason: str | None = None
    honeypot: str | None = None
    consent: bool = True
    organic: bool = False

    @property
    def ref(self) -> str:
        if self.source == "pixel":
            return f"pixel:{iso_ms(self.submitted)}"
        return f"{self.source}:{self.native_id}"

    @property
    def valid(self) -> bool:
        return self.quarantine_reason is None


@dataclass
class AccountPlan:
    account_id: str
    name: str
    timezone: str
    active: bool
    map_type: str
    settings: dict[str, Any]
    # Source -> number of ordinary leads.
    ordinary: dict[str, int]
    # Hard case -> number of instances (malformed cases and spam kinds included).
    hard: dict[str, int]
    org_code: str
    map_records: int
    crm_design: str | None
    origin: str
    scripts: tuple[str, ...] = ()
    # Position of the account in the scenario, used to derive vendor ids.
    org_index: int = 0

    @property
    def sources(self) -> list[str]:
        return list(self.ordinary)

    @property
    def attribution(self) -> dict[str, int]:
        return {**DEFAULT_ATTRIBUTION, **self.settings.get("attribution", {})}


@dataclass
class Note:
    case: str
    account_id: str | None
    leads: list[Lead]
    detail: str
    extra_refs: list[str] = field(default_factory=list)

    def render(self) -> dict[str, Any]:
        note: dict[str, Any] = {"case": self.case, "detail": self.detail}
        if self.account_id:
            note["account_id"] = self.account_id
        refs = [lead.ref for lead in self.leads] + self.extra_refs
        if refs:
            note["refs"] = refs
        return note


# --------------------------------------------------------------------------- formatting


def iso_ms(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"


def iso_seconds(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def meta_time(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S+0000")


def salesforce_time(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def epoch_ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


def hours_between(earlier: datetime, later: datetime) -> str:
    return f"{(later - earlier).total_seconds() / 3600:.1f} h"


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def ascii_fold(text: str) -> str:
    """Lower-case ASCII form of a Latin name for an email local part."""
    replaced = text.lower().replace("ø", "o").replace("ł", "l").replace("ß", "ss").replace("æ", "ae")
    decomposed = unicodedata.normalize("NFKD", replaced)
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalnum())


def email_domain(email: str) -> str:
    return email.strip().lower().rsplit("@", 1)[-1]


def website_domain(website: str | None) -> str | None:
    """Host of a Salesforce Account Website without scheme, path or leading www."""
    if not website:
        return None
    host = website.strip().lower().split("://", 1)[-1].split("/", 1)[0]
    return host.removeprefix("www.")


# --------------------------------------------------------------------------- builder


class ScenarioBuilder:
    """Build one scenario; every random draw goes through ``self.rng``."""

    def __init__(self, seed: int, start: datetime, window_count: int, window_minutes: int, weights: list[int]):
        self.rng = random.Random(seed)
        self.start = start
        self.window_count = window_count
        self.window = timedelta(minutes=window_minutes)
        self.end = start + window_count * self.window
        self.weights = weights
        self.used_emails: set[str] = set()
        self.notes: list[Note] = []
        self.leads: dict[str, list[Lead]] = {}
        self.plans: dict[str, AccountPlan] = {}
        self.source_turn: Counter[str] = Counter()
        self.meta_sequence = 0
        self.companies = self._make_companies(160)

    # -- random helpers -----------------------------------------------------
    def hex_text(self, length: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(length))

    def alnum_text(self, length: int) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        return "".join(self.rng.choice(alphabet) for _ in range(length))

    def digits(self, length: int) -> str:
        return "".join(self.rng.choice("0123456789") for _ in range(length))

    def random_time(self) -> datetime:
        """Draw a submission instant with millisecond precision inside one of the windows."""
        window = self.rng.choices(range(self.window_count), weights=self.weights)[0]
        offset_ms = self.rng.randrange(int(self.window.total_seconds() * 1000))
        return self.start + window * self.window + timedelta(milliseconds=offset_ms)

    def window_ends(self) -> list[datetime]:
        return [self.start + (i + 1) * self.window for i in range(self.window_count)]

    # -- companies and people ---------------------------------------------------
    def _make_companies(self, count: int) -> list[Company]:
        companies = []
        names = [(prefix, kind) for prefix in COMPANY_PREFIXES for kind in COMPANY_KINDS]
        self.rng.shuffle(names)
        for index, (prefix, kind) in enumerate(names[:count]):
            industry, sector = COMPANY_KINDS[kind]
            tld = "example" if index % 3 else "test"
            domain = f"{prefix}{kind}".lower() + f".{tld}"
            if index % 11 == 5:
                domain = f"{prefix.lower()}-{kind.lower()}.{tld}"
            companies.append(
                Company(
                    name=f"{prefix} {kind}{self.rng.choice(LEGAL_SUFFIXES)}",
                    domain=domain,
                    industry=industry,
                    sector=sector,
                    employees=self.rng.choice((8, 25, 60, 140, 320, 900, 2400, 12000)),
                    country=self.rng.choice(LATIN_COUNTRIES),
                    known=self.rng.random() < 0.75,
                )
            )
        return companies

    def unique_email(self, local: str, domain: str) -> str:
        candidate = f"{local}@{domain}"
        number = 2
        while candidate in self.used_emails:
            candidate = f"{local}{number}@{domain}"
            number += 1
        self.used_emails.add(candidate)
        return candidate

    def email_local(self, given: str, family: str) -> str:
        style = self.rng.randrange(5)
        if style == 0:
            return f"{given}.{family}"
        if style == 1:
            return f"{given[0]}{family}"
        if style == 2:
            return f"{given}_{family}"
        if style == 3:
            return f"{family}.{given}"
        return f"{given}{family[:1]}"

    def phone_for(self, country: str) -> str:
        code = COUNTRY_CALLING_CODES[country]
        return f"+{code} 555 {self.digits(3)} {self.digits(4)}"

    def make_person(self, email_kind: str = "work", script: str | None = None, category: str | None = None) -> Person:
        """Create a person; ``email_kind`` is work, personal or both (a personal and a work address)."""
        if script:
            given, family, given_ascii, family_ascii = self.rng.choice(NON_LATIN_NAMES[script])
            country = SCRIPT_COUNTRY[script]
        else:
            given, family = self.rng.choice(GIVEN_NAMES), self.rng.choice(FAMILY_NAMES)
            given_ascii, family_ascii = ascii_fold(given), ascii_fold(family)
            country = self.rng.choice(LATIN_COUNTRIES)
        if category is None:
            weights = (0.6, 0.0, 0.4) if email_kind == "personal" else (0.72, 0.1, 0.18)
            category = self.rng.choices(("person", "company_only", "none"), weights=weights)[0]
        if category == "company_only":
            company = self.rng.choice([c for c in self.companies if c.known])
        elif category == "none" and email_kind != "personal":
            company = self.rng.choice([c for c in self.companies if not c.known])
        else:
            company = self.rng.choice(self.companies)
        local = self.email_local(given_ascii, family_ascii)
        work_email = personal_email = None
        if email_kind in ("work", "both"):
            work_email = self.unique_email(local, company.domain)
        if email_kind in ("personal", "both"):
            free_domains = SCRIPT_FREE_MAIL.get(script or "", ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com"))
            personal_local = f"{given_ascii}.{family_ascii}{self.digits(2)}"
            personal_email = self.unique_email(personal_local, self.rng.choice(free_domains))
        return Person(
            given=given,
            family=family,
            given_ascii=given_ascii,
            family_ascii=family_ascii,
            title=self.rng.choice(list(TITLES)),
            country=country,
            phone=self.phone_for(country),
            company=company,
            work_email=work_email,
            personal_email=personal_email,
            enrichment=category,
            pending_first=category == "person" and self.rng.random() < 1 / 7,
            script=script,
        )

    def typed_company(self, company: Company) -> str:
        """Return the company name as a person types it: usually exact, sometimes without the legal suffix."""
        roll = self.rng.random()
        if roll < 0.75:
            return company.name
        base = company.name
        for suffix in LEGAL_SUFFIXES:
            if suffix:
                base = base.removesuffix(suffix)
        return base.lower() if roll < 0.85 else base

    # -- leads ----------------------------------------------------------------------
    def new_native_id(self, source: str) -> str:
        if source == "linkedin":
            return (
                f"{self.hex_text(8)}-{self.hex_text(4)}-4{self.hex_text(3)}-{self.rng.choice('89ab')}{self.hex_text(3)}-"
                f"{self.hex_text(12)}-{self.rng.randint(1, 9)}"
            )
        if source == "meta":
            self.meta_sequence += 1
            return f"12{self.digits(6)}{self.meta_sequence:08d}"
        return ""

    def choose_form(self, source: str, needs_phone: bool = False, needs_work_email: bool = False) -> str:
        if source == "linkedin":
            if needs_phone or needs_work_email:
                return "A2"
            return self.rng.choices(("A1", "A2", "B1"), weights=(35, 35, 30))[0]
        if source == "meta":
            if needs_work_email:
                return "B"
            if needs_phone:
                return "A"
            return self.rng.choices(("A", "B"), weights=(60, 40))[0]
        return self.rng.choice(PIXEL_FORMS)

    def add_lead(
        self,
        plan: AccountPlan,
        source: str,
        person: Person,
        *,
        form_key: str | None = None,
        submitted: datetime | None = None,
        **overrides: Any,
    ) -> Lead:
        """Create a lead with form answers taken from ``person``, then apply ``overrides`` to its fields."""
        both = person.personal_email is not None and person.work_email is not None
        if form_key is None:
            form_key = self.choose_form(source, needs_work_email=both)
            if source == "meta" and person.script:
                # Meta form B has one full-name question, and names in these scripts have no reliable split.
                form_key = "A"

        work_email_answer = None
        if both and form_key in ("A2", "B"):
            work_email_answer = person.work_email
        elif source == "meta" and form_key == "B" and person.work_email:
            # Meta form B has two email questions, and people with one address repeat it.
            work_email_answer = person.work_email

        has_phone = form_key in ("A2", "A") or (source == "pixel" and self.rng.random() < 0.5)
        submitted = submitted or self.random_time()
        if source == "meta":
            submitted = submitted.replace(microsecond=0)

        lead = Lead(
            account_id=plan.account_id,
            source=source,
            native_id=self.new_native_id(source),
            submitted=submitted,
            person=person,
            email_answer=person.email,
            work_email_answer=work_email_answer,
            first_name=person.given,
            last_name=person.family,
            company=self.typed_company(person.company),
            title=person.title,
            phone=person.phone if has_phone else None,
            form_key=form_key,
            consent=self.rng.random() < 0.85,
            organic=source == "meta" and self.rng.random() < 0.1,
        )
        for name, value in overrides.items():
            setattr(lead, name, value)
        self.leads[plan.account_id].append(lead)
        return lead

    def eligible_source(self, plan: AccountPlan, allowed: tuple[str, ...] | None = None) -> str:
        choices = [source for source in plan.sources if allowed is None or source in allowed]
        if not choices:
            raise ValueError(f"account {plan.account_id} has no source among {allowed}")
        turn = self.source_turn[plan.account_id]
        self.source_turn[plan.account_id] += 1
        return choices[turn % len(choices)]

    def note(self, case: str, plan: AccountPlan | None, leads: list[Lead], detail: str, **kwargs: Any) -> None:
        self.notes.append(Note(case, plan.account_id if plan else None, leads, detail, **kwargs))

    def add_account_leads(self, plan: AccountPlan) -> None:
        self.plans[plan.account_id] = plan
        self.leads[plan.account_id] = []
        for source, count in plan.ordinary.items():
            for _ in range(count):
                self.add_lead(plan, source, self.make_person())
        self.add_hard_cases(plan)

    # -- hard cases -----------------------------------------------------------------
    def add_hard_cases(self, plan: AccountPlan) -> None:
        hard = plan.hard
        for index in range(hard.get("cross_source_duplicate", 0)):
            self.add_cross_source_duplicate(plan, index)
        for _ in range(hard.get("personal_and_work_email", 0)):
            source = self.eligible_source(plan, ("linkedin", "meta"))
            lead = self.add_lead(plan, source, self.make_person("both"))
            self.note(
                "personal_and_work_email",
                plan,
                [lead],
                f"gives the personal {lead.person.personal_email} and the work {lead.person.work_email}; "
                "email is the personal one, business_email the work one",
            )
        for _ in range(hard.get("personal_email_only", 0)):
            lead = self.add_lead(plan, self.eligible_source(plan), self.make_person("personal"))
            self.note(
                "personal_email_only",
                plan,
                [lead],
                f"only the free-mail address {lead.person.personal_email}; email and business_email are both it, "
                "and attribution never matches its domain",
            )
        for turn in range(hard.get("non_latin_name", 0)):
            scripts = plan.scripts or SCRIPT_ORDER
            script = scripts[turn % len(scripts)]
            lead = self.add_lead(plan, self.eligible_source(plan), self.make_person(script=script))
            self.note(
                "non_latin_name",
                plan,
                [lead],
                f"valid lead with a {script} name {lead.first_name} {lead.last_name} and an ASCII email",
            )
        for _ in range(hard.get("test_lead", 0)):
            self.add_test_lead(plan)
        for _ in range(hard.get("spam_disposable_domain", 0)):
            self.add_disposable_spam(plan)
        for _ in range(hard.get("spam_gibberish_name", 0)):
            self.add_gibberish_spam(plan)
        for _ in range(hard.get("spam_honeypot", 0)):
            self.add_honeypot_spam(plan)
        for case in MALFORMED_CASES:
            for _ in range(hard.get(case, 0)):
                self.add_malformed(plan, case)
        for _ in range(hard.get("same_source_repeat", 0)):
            self.add_same_source_repeat(plan)

    def add_cross_source_duplicate(self, plan: AccountPlan, index: int) -> None:
        pairs = [(a, b) for i, a in enumerate(plan.sources) for b in plan.sources[i + 1 :]]
        first_source, second_source = pairs[index % len(pairs)]
        person = self.make_person()
        email = person.email
        local, domain = email.split("@")
        variants = (
            f"  {local.title()}@{domain}",
            f"{email.upper()} ",
            f"{local}@{domain.title()}\t",
            f" {local.capitalize()}@{domain.upper()} ",
        )
        first = self.add_lead(plan, first_source, person, email_answer=variants[index % len(variants)])
        second_time = min(first.submitted + timedelta(minutes=self.rng.randint(5, 40)), self.end - timedelta(seconds=1))
        second = self.add_lead(
            plan, second_source, person, submitted=second_time, email_answer=variants[(index + 1) % len(variants)]
        )
        self.note(
            "cross_source_duplicate",
            plan,
            [first, second],
            f"same person through {first_source} and {second_source} as {first.email_answer!r} and "
            f"{second.email_answer!r}; both normalise to {email}, so one person and one MAP record",
        )

    def add_test_lead(self, plan: AccountPlan) -> None:
        lead = self.add_lead(plan, "linkedin", self.make_person(), is_test=True)
        included = plan.settings.get("include_test_leads", False)
        case = "test_lead_included" if included else "test_lead_excluded"
        action = "pushed and attributed because the account includes test leads" if included else "stored only"
        self.note(case, plan, [lead], f"LinkedIn testLead true; {action}")

    def add_disposable_spam(self, plan: AccountPlan) -> None:
        person = self.make_person(category="none")
        domain = DISPOSABLE_DOMAINS[len(self.notes) % len(DISPOSABLE_DOMAINS)]
        local = f"{person.given_ascii}{self.digits(3)}"
        address = self.unique_email(local, domain)
        person.work_email = address
        lead = self.add_lead(plan, self.eligible_source(plan), person, spam_reason="disposable_domain")
        self.note("spam_disposable_domain", plan, [lead], f"disposable mailbox domain {domain}; flagged as spam")

    def add_gibberish_spam(self, plan: AccountPlan) -> None:
        person = self.make_person(category="none")
        consonants = "bcdfghjklmnpqrstvwxz"
        person.given = "".join(self.rng.choice(consonants) for _ in range(7)).capitalize()
        person.family = "".join(self.rng.choice(consonants) for _ in range(8)).capitalize()
        person.personal_email = self.unique_email(f"{person.given.lower()}{self.digits(4)}", "gmail.com")
        person.work_email = None
        person.title = "asdf"
        lead = self.add_lead(plan, self.eligible_source(plan), person, spam_reason="gibberish_name", company="qwerty")
        self.note(
            "spam_gibberish_name", plan, [lead], f"keyboard-mash name {person.given} {person.family}; flagged as spam"
        )

    def add_honeypot_spam(self, plan: AccountPlan) -> None:
        value = HONEYPOT_VALUES[len(self.notes) % len(HONEYPOT_VALUES)]
        lead = self.add_lead(plan, "pixel", self.make_person(category="none"), spam_reason="honeypot", honeypot=value)
        self.note("spam_honeypot", plan, [lead], f"hidden pixel field website filled with {value!r}; flagged as spam")

    def add_malformed(self, plan: AccountPlan, case: str) -> None:
        person = self.make_person(category="none")
        source = self.eligible_source(plan)
        overrides: dict[str, Any] = {"quarantine_reason": case}
        if case.startswith("email_"):
            # No second address, so the broken one is the lead's only email.
            overrides["work_email_answer"] = None
        # Meta form A has separate first and last name questions, so each defect stays in its own field.
        form_key = "A" if source == "meta" else None
        if case == "email_missing":
            overrides["email_answer"] = None
            detail = "no email answer at all"
        elif case == "email_invalid":
            local, domain = person.email.split("@")
            overrides["email_answer"] = f"{local} at {domain}" if self.rng.random() < 0.5 else f"{local}.{domain}"
            detail = f"email {overrides['email_answer']!r} has no @"
        elif case == "email_non_ascii":
            local = NON_ASCII_EMAIL_LOCALS[len(self.notes) % len(NON_ASCII_EMAIL_LOCALS)]
            overrides["email_answer"] = f"{local}@{person.company.domain}"
            detail = f"email {overrides['email_answer']!r} contains non-ASCII characters"
        elif case == "email_empty":
            overrides["email_answer"] = ""
            detail = "email answer present but an empty string"
        elif case == "company_too_long":
            words = [self.rng.choice(LONG_COMPANY_WORDS) for _ in range(40)]
            overrides["company"] = (person.company.name + " " + " ".join(words))[:300].rstrip()
            detail = f"company is {len(overrides['company'])} characters, over the 255 limit"
        elif case == "first_name_too_long":
            overrides["first_name"] = LONG_FIRST_NAME
            detail = f"first name is {len(LONG_FIRST_NAME)} characters, over the 100 limit"
        else:
            overrides["phone"] = INVALID_PHONES[len(self.notes) % len(INVALID_PHONES)]
            form_key = self.choose_form(source, needs_phone=True)
            detail = f"phone {overrides['phone']!r} contains letters"
        lead = self.add_lead(plan, source, person, form_key=form_key, **overrides)
        self.note(f"malformed_{case}", plan, [lead], f"{detail}; quarantined with reason {case}")

    def add_same_source_repeat(self, plan: AccountPlan) -> None:
        source = self.eligible_source(plan)
        person = self.make_person()
        first = self.add_lead(plan, source, person)
        second = self.add_lead(plan, source, person)
        self.note(
            "same_source_repeat",
            plan,
            sorted([first, second], key=lambda lead: lead.submitted),
            f"the same person submits twice on {source}; two leads, one person",
        )

    # -- timing cases ---------------------------------------------------------------------
    def add_timing_cases(self, plan: AccountPlan, boundary: int, same_time_groups: int) -> None:
        """Move some ordinary leads onto one instant, and some into the 2 minutes before a window end."""
        ordinary = [lead for lead in self.leads[plan.account_id] if self.is_plain(lead)]
        for _ in range(same_time_groups):
            source = self.eligible_source(plan, ("linkedin", "meta"))
            group = self.rng.sample([lead for lead in ordinary if lead.source == source], 3)
            shared = group[0].submitted
            for lead in group:
                lead.submitted = shared
                ordinary.remove(lead)
            unit = "millisecond" if source == "linkedin" else "second (Meta created_time precision)"
            self.note(
                "same_submitted_at",
                plan,
                group,
                f"three {source} leads share the submitted {unit} {iso_ms(shared)}; "
                "a watermark that advances past it must not skip any of them",
            )
        for _ in range(boundary):
            lead = self.rng.choice(ordinary)
            ordinary.remove(lead)
            window_end = self.rng.choice(self.window_ends())
            lead.submitted = window_end - timedelta(milliseconds=self.rng.randint(1000, 119_999))
            if lead.source == "meta":
                lead.submitted = lead.submitted.replace(microsecond=0)
            self.note(
                "window_boundary",
                plan,
                [lead],
                f"submitted {iso_ms(lead.submitted)}, under 2 minutes before the window end {iso_seconds(window_end)}; "
                "late-arrival overlap material",
            )

    def is_plain(self, lead: Lead) -> bool:
        """True for ordinary leads that no note mentions."""
        return all(lead is not other for note in self.notes for other in note.leads)

    def make_pixel_times_unique(self) -> None:
        """Shift clashing pixel submissions by a millisecond, because pixel refs use submitted_at."""
        for leads in self.leads.values():
            seen: set[datetime] = set()
            for lead in sorted((lead for lead in leads if lead.source == "pixel"), key=lambda lead: lead.submitted):
                while lead.submitted in seen:
                    lead.submitted += timedelta(milliseconds=1)
                seen.add(lead.submitted)

    def pushable(self, lead: Lead) -> bool:
        """True for leads the pipeline pushes and attributes: valid, in an active account, test and spam per settings."""
        plan = self.plans[lead.account_id]
        settings = plan.settings
        if not lead.valid or not plan.active:
            return False
        if lead.is_test and not settings.get("include_test_leads", False):
            return False
        return not (lead.spam_reason and not settings.get("include_spam_leads", False))


# --------------------------------------------------------------------------- wire shapes


LINKEDIN_QUESTIONS = {
    "A1": (
        (1, "firstName", "FIRST_NAME", "First name"),
        (2, "lastName", "LAST_NAME", "Last name"),
        (3, "email", "EMAIL", "Email address"),
        (4, "company", "COMPANY_NAME", "Company name"),
        (5, "jobTitle", "JOB_TITLE", "Job title"),
        (6, "companySize", None, "How many people work at your company?"),
    ),
    "A2": (
        (1, "firstName", "FIRST_NAME", "First name"),
        (2, "lastName", "LAST_NAME", "Last name"),
        (3, "email", "EMAIL", "Email address"),
        (7, "workEmail", "WORK_EMAIL", "Work email"),
        (4, "company", "COMPANY_NAME", "Company name"),
        (5, "jobTitle", "JOB_TITLE", "Job title"),
        (8, "phone", "PHONE_NUMBER", "Phone number"),
        (9, "buyingTimeline", None, "When do you plan to buy?"),
    ),
    "B1": (
        (1, "firstName", "FIRST_NAME", "First name"),
        (2, "lastName", "LAST_NAME", "Last name"),
        (3, "email", "EMAIL", "Email address"),
        (4, "company", "COMPANY_NAME", "Company name"),
        (5, "jobTitle", "JOB_TITLE", "Job title"),
        (6, "topic", None, "Which session will you attend?"),
    ),
}
LINKEDIN_OPTIONS = {
    "companySize": ("1-10", "11-50", "51-200", "201-1000", "1000+"),
    "buyingTimeline": ("This quarter", "Next quarter", "This year", "Just researching"),
    "topic": ("Keynote", "Hands-on workshop", "Customer panel"),
}
# Form key -> (form number inside the account, version).
LINKEDIN_FORM_VERSIONS = {"A1": (1, 1), "A2": (1, 2), "B1": (2, 1)}

META_QUESTIONS = {
    "A": (
        ("first_name", "First name", "FIRST_NAME"),
        ("last_name", "Last name", "LAST_NAME"),
        ("email", "Email", "EMAIL"),
        ("phone_number", "Phone number", "PHONE"),
        ("company_name", "Company name", "COMPANY_NAME"),
        ("job_title", "Job title", "JOB_TITLE"),
        ("how_many_people_work_at_your_company?", "How many people work at your company?", "CUSTOM"),
    ),
    "B": (
        ("full_name", "Full name", "FULL_NAME"),
        ("email", "Email", "EMAIL"),
        ("work_email", "Work email", "WORK_EMAIL"),
        ("company_name", "Company name", "COMPANY_NAME"),
        ("job_title", "Job title", "JOB_TITLE"),
        ("what_is_your_buying_timeline?", "What is your buying timeline?", "CUSTOM"),
    ),
}
META_CUSTOM_OPTIONS = {
    "how_many_people_work_at_your_company?": ("1-10", "11-50", "51-200", "201-1000", "1000+"),
    "what_is_your_buying_timeline?": ("this_quarter", "next_quarter", "this_year", "just_researching"),
}


class WireRenderer:
    """Render the builder's bookkeeping into vendor wire shapes."""

    def __init__(self, builder: ScenarioBuilder):
        self.b = builder
        self.rng = builder.rng

    # -- LinkedIn -------------------------------------------------------------------
    def linkedin_form_id(self, plan_index: int, form_number: int) -> int:
        return 9_000_000 + plan_index * 10 + form_number

    def linkedin_forms(self, plan_index: int, sponsored_account_id: str) -> list[dict[str, Any]]:
        forms = []
        for form_key, (form_number, version) in LINKEDIN_FORM_VERSIONS.items():
            form_id = self.linkedin_form_id(plan_index, form_number)
            questions = []
            for number, name, predefined, label in LINKEDIN_QUESTIONS[form_key]:
                question: dict[str, Any] = {
                    "questionId": form_number * 100 + number,
                    "name": name,
                    "question": {"localized": {"en_US": label}},
                    "responseRequired": predefined in ("FIRST_NAME", "LAST_NAME", "EMAIL"),
                }
                if predefined:
                    question["predefinedField"] = predefined
                    question["questionDetails"] = {"textQuestionDetails": {"maxResponseLength": 300}}
                else:
                    options = [
                        {"id": i + 1, "text": {"localized": {"en_US": text}}}
                        for i, text in enumerate(LINKEDIN_OPTIONS[name])
                    ]
                    question["questionDetails"] = {"multipleChoiceQuestionDetails": {"options": options}}
                questions.append(question)
            forms.append(
                {
                    "id": form_id,
                    "versionId": version,
                    "name": "Demo request" if form_number == 1 else "Webinar registration",
                    "state": "PUBLISHED" if (form_number, version) != (1, 1) else "ARCHIVED",
                    "owner": {"sponsoredAccount": f"urn:li:sponsoredAccount:{sponsored_account_id}"},
                    "hiddenFields": [{"name": "utm_campaign", "value": f"q4-form-{form_number}"}],
                    "content": {"questions": questions},
                }
            )
        return forms

    def linkedin_lead(self, lead: Lead, plan_index: int, sponsored_account_id: str) -> dict[str, Any]:
        form_number, version = LINKEDIN_FORM_VERSIONS[lead.form_key]
        form_id = self.linkedin_form_id(plan_index, form_number)
        values = {
            "FIRST_NAME": lead.first_name,
            "LAST_NAME": lead.last_name,
            "EMAIL": lead.email_answer,
            "WORK_EMAIL": lead.work_email_answer,
            "COMPANY_NAME": lead.company,
            "JOB_TITLE": lead.title,
            "PHONE_NUMBER": lead.phone,
        }
        answers = []
        for number, name, predefined, _label in LINKEDIN_QUESTIONS[lead.form_key]:
            question_id = form_number * 100 + number
            if predefined:
                value = values[predefined]
                if value is not None:
                    answers.append(
                        {"questionId": question_id, "answerDetails": {"textQuestionAnswer": {"answer": value}}}
                    )
            else:
                option = self.rng.randint(1, len(LINKEDIN_OPTIONS[name]))
                answers.append(
                    {"questionId": question_id, "answerDetails": {"multipleChoiceAnswer": {"options": [option]}}}
                )
        return {
            "id": lead.native_id,
            "owner": {"sponsoredAccount": f"urn:li:sponsoredAccount:{sponsored_account_id}"},
            "leadType": "SPONSORED",
            "versionedLeadGenFormUrn": f"urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{form_id},{version})",
            "submitter": f"urn:li:person:{self.b.alnum_text(10)}",
            "submittedAt": epoch_ms(lead.submitted),
            "testLead": lead.is_test,
            "leadMetadata": {
                "sponsoredLeadMetadata": {"campaign": f"urn:li:sponsoredCampaign:3{plan_index:02d}0000{form_number}"}
            },
            "associatedEntity": {
                "associatedCreative": f"urn:li:sponsoredCreative:4{plan_index:02d}000{self.rng.randint(10, 14)}"
            },
            "formResponse": {"answers": answers, "consentResponses": [{"consentId": 1, "accepted": lead.consent}]},
        }

    # -- Meta -----------------------------------------------------------------------
    def meta_forms(self, plan_index: int) -> list[dict[str, Any]]:
        forms = []
        for number, form_key in enumerate(("A", "B"), start=1):
            questions = []
            for key, label, kind in META_QUESTIONS[form_key]:
                question: dict[str, Any] = {"key": key, "label": label, "type": kind}
                if kind == "CUSTOM":
                    question["options"] = [{"key": value, "value": value} for value in META_CUSTOM_OPTIONS[key]]
                questions.append(question)
            forms.append(
                {
                    "id": self.meta_form_id(plan_index, number),
                    "name": "Demo request (Meta)" if form_key == "A" else "Guide download (Meta)",
                    "status": "ACTIVE",
                    "locale": "en_US",
                    "questions": questions,
                }
            )
        return forms

    @staticmethod
    def meta_form_id(plan_index: int, number: int) -> str:
        return f"6100000000{plan_index:02d}{number:03d}"

    def meta_lead(self, lead: Lead, plan_index: int) -> dict[str, Any]:
        values = {
            "first_name": lead.first_name,
            "last_name": lead.last_name,
            "full_name": " ".join(part for part in (lead.first_name, lead.last_name) if part),
            "email": lead.email_answer,
            "work_email": lead.work_email_answer,
            "phone_number": lead.phone,
            "company_name": lead.company,
            "job_title": lead.title,
        }
        field_data = []
        for key, _label, kind in META_QUESTIONS[lead.form_key]:
            if kind == "CUSTOM":
                field_data.append({"name": key, "values": [self.rng.choice(META_CUSTOM_OPTIONS[key])]})
            elif values[key] is not None:
                field_data.append({"name": key, "values": [values[key]]})
        record: dict[str, Any] = {
            "id": lead.native_id,
            "created_time": meta_time(lead.submitted),
            "form_id": self.meta_form_id(plan_index, 1 if lead.form_key == "A" else 2),
            "is_organic": lead.organic,
            "platform": self.rng.choice(("fb", "ig")),
            "field_data": field_data,
        }
        if not lead.organic:
            record["ad_id"] = f"2385{plan_index:02d}000000{self.rng.randint(100, 104)}"
            record["adset_id"] = f"2385{plan_index:02d}100000{self.rng.randint(100, 102)}"
            record["campaign_id"] = f"2385{plan_index:02d}2000001"
        return record

    # -- pixel ----------------------------------------------------------------------
    def pixel_submission(self, lead: Lead, origin: str) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "first_name": lead.first_name,
            "last_name": lead.last_name,
            "company": lead.company,
            "job_title": lead.title,
        }
        if lead.email_answer is not None:
            fields["email"] = lead.email_answer
        if lead.phone is not None:
            fields["phone"] = lead.phone
        if lead.honeypot is not None:
            fields["website"] = lead.honeypot
        utm: dict[str, str] = {}
        if self.rng.random() < 0.8:
            source, medium = self.rng.choice((("linkedin", "paid_social"), ("google", "cpc"), ("newsletter", "email")))
            utm = {"source": source, "medium": medium, "campaign": self.rng.choice(("q4-demo", "winter-guide"))}
        query = "&".join(f"utm_{key}={value}" for key, value in utm.items())
        page_url = origin + self.rng.choice(ORIGIN_PATHS) + (f"?{query}" if query else "")
        return {
            "submitted_at": iso_ms(lead.submitted),
            "form_id": lead.form_key,
            "page_url": page_url,
            "fields": fields,
            "consent": lead.consent,
            "utm": utm,
        }


# --------------------------------------------------------------------------- enrichment


def clearbit_company(company: Company) -> dict[str, Any]:
    return {
        "id": f"c-{company.domain.replace('.', '-')}",
        "name": company.name,
        "domain": company.domain,
        "category": {"sector": company.sector, "industry": company.industry},
        "metrics": {"employees": company.employees},
        "geo": {"country": COUNTRIES[company.country], "countryCode": company.country},
    }


def clearbit_person(person: Person, email: str, index: int) -> dict[str, Any]:
    title = TITLES[person.title] if person.title in TITLES else person.title
    seniority = next((level for word, level in TITLE_SENIORITY.items() if word in person.title), "manager")
    return {
        "id": f"p-{index:05d}",
        "email": email,
        "name": {
            "givenName": person.given,
            "familyName": person.family,
            "fullName": f"{person.given} {person.family}",
        },
        "employment": {
            "title": title,
            "name": person.company.name,
            "domain": person.company.domain,
            "seniority": seniority,
        },
        "geo": {"country": COUNTRIES[person.country], "countryCode": person.country},
    }


def build_enrichment(builder: ScenarioBuilder) -> tuple[dict[str, Any], dict[str, Counter[str]]]:
    """Return the enrichment section and, per account, counts of lookup outcomes by person."""
    people: dict[str, dict[str, Any]] = {}
    outcomes: dict[str, Counter[str]] = {}
    for account_id, leads in builder.leads.items():
        if not builder.plans[account_id].active:
            continue
        seen: dict[str, str] = {}
        for lead in leads:
            if not lead.valid or lead.spam_reason:
                continue
            person = lead.person
            key = person.business_email
            if key in seen:
                continue
            outcome = person.enrichment
            if outcome == "person" and key not in people:
                index = len(people) + 1
                # Every twentieth entry keeps mixed case, because lookups ignore case.
                stored = key if index % 20 else key.split("@")[0].title() + "@" + key.split("@")[1]
                entry: dict[str, Any] = {
                    "email": stored,
                    "person": clearbit_person(person, stored, index),
                    "company": clearbit_company(person.company),
                }
                if person.pending_first:
                    entry["pending_first"] = True
                people[key] = entry
            if outcome == "company_only" and not person.company.known:
                outcome = "none"
            if outcome == "person" and person.pending_first:
                outcome = "person_pending_first"
            seen[key] = outcome
        outcomes[account_id] = Counter(seen.values())
    companies = sorted({c.domain: c for c in builder.companies if c.known}.values(), key=lambda c: c.domain)
    section = {
        "api_key": "sk_enrich_demo",
        "people": [people[key] for key in sorted(people)],
        "companies": [{"domain": c.domain, "company": clearbit_company(c)} for c in companies],
    }
    return section, outcomes


# --------------------------------------------------------------------------- MAP


MARKETO_FIELDS = (
    (1, "Id", "integer", "id", True),
    (2, "Email Address", "email", "email", False),
    (3, "First Name", "string", "firstName", False),
    (4, "Last Name", "string", "lastName", False),
    (5, "Company Name", "string", "company", False),
    (6, "Job Title", "string", "title", False),
    (7, "Phone Number", "phone", "phone", False),
    (8, "Country", "string", "country", False),
    (9, "Lead Score", "integer", "leadScore", False),
    (10, "Lead Status", "string", "leadStatus", False),
    (11, "Lead Rating", "string", "rating", False),
    (12, "Lead Source", "string", "leadSource", False),
    (13, "Created At", "datetime", "createdAt", True),
    (14, "Updated At", "datetime", "updatedAt", True),
    (1501, "MQL Date", "date", "mqlDate__c", False),
)
MARKETO_FIELD_MAP = {
    "first_name": "firstName",
    "last_name": "lastName",
    "email": "email",
    "company": "company",
    "job_title": "title",
    "phone": "phone",
    "country": "country",
}
HUBSPOT_FIELD_MAP = {
    "first_name": "firstname",
    "last_name": "lastname",
    "email": "email",
    "company": "company",
    "job_title": "jobtitle",
    "phone": "phone",
    "country": "country",
}


def marketo_fields() -> list[dict[str, Any]]:
    fields = []
    for field_id, label, data_type, rest_name, read_only in MARKETO_FIELDS:
        entry: dict[str, Any] = {
            "id": field_id,
            "displayName": label,
            "dataType": data_type,
            "rest": {"name": rest_name, "readOnly": read_only},
            "soap": {"name": rest_name[:1].upper() + rest_name[1:], "readOnly": read_only},
        }
        if data_type in ("string", "email", "phone"):
            entry["length"] = 255
        fields.append(entry)
    return fields


def scoring_rules(map_type: str, variant: int) -> dict[str, Any]:
    title_field = "title" if map_type == "marketo" else "jobtitle"
    return {
        "base": 5,
        "per_field": {title_field: 10, "company": 10, "phone": 5 + variant},
        "keywords": {"director": 25, "vp": 30, "head": 20, "chief": 35 if variant else 30},
        "mql_threshold": 40 + 5 * variant,
    }


class MapBuilder:
    """Existing MAP records of one account, some matching incoming people."""

    def __init__(self, builder: ScenarioBuilder, plan: AccountPlan):
        self.b = builder
        self.rng = builder.rng
        self.plan = plan
        self.records: list[dict[str, Any]] = []
        self.matched_emails: list[str] = []

    def past_instant(self, earliest: datetime, latest: datetime) -> datetime:
        span = int((latest - earliest).total_seconds())
        return earliest + timedelta(seconds=self.rng.randrange(span))

    def build(self, overlap: int) -> dict[str, Any]:
        plan = self.plan
        candidates = self.overlap_candidates()
        chosen = self.rng.sample(candidates, min(overlap, len(candidates)))
        chosen.sort(key=lambda person: person.email)
        people = [(person, True) for person in chosen]
        duplicate_slot = 1 if plan.active and plan.map_type == "marketo" and chosen else 0
        while len(people) < plan.map_records - duplicate_slot:
            people.append((self.unrelated_person(len(people)), False))
        for index, (person, matches) in enumerate(people):
            self.add_record(person, index, email=person.email)
            if matches:
                self.matched_emails.append(person.email)
        if chosen and plan.active:
            self.add_map_case(chosen)
        return self.render()

    def overlap_candidates(self) -> list[Person]:
        seen: dict[str, Person] = {}
        for lead in self.b.leads[self.plan.account_id]:
            person = lead.person
            if self.b.pushable(lead) and not lead.is_test and person.work_email and not person.personal_email:
                seen.setdefault(person.email, person)
        return [seen[key] for key in sorted(seen)]

    def unrelated_person(self, index: int) -> Person:
        person = self.b.make_person(category="none")
        domain = f"{ascii_fold(person.company.name.split()[0])}{index}.example.org"
        person.work_email = self.b.unique_email(f"{person.given_ascii}.{person.family_ascii}", domain)
        return person

    def add_record(self, person: Person, index: int, email: str, updated: datetime | None = None) -> None:
        created = self.past_instant(datetime(2025, 1, 6, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC))
        updated = updated or self.past_instant(created, datetime(2026, 11, 28, tzinfo=UTC))
        score = self.rng.choice((0, 10, 15, 25, 35, 45, 60))
        mql_date = (updated - timedelta(days=self.rng.randint(0, 30))).date().isoformat() if score >= 45 else None
        # Some records hold values the incoming lead lacks, so a push must not blank them.
        title = person.title if index % 4 else ""
        self.records.append(
            {
                "email": email,
                "first_name": person.given,
                "last_name": person.family,
                "company": person.company.name if index % 5 else "",
                "title": title,
                "phone": person.phone if index % 3 == 0 else "",
                "country": COUNTRIES[person.country],
                "score": score,
                "mql_date": mql_date,
                "created": created,
                "updated": updated,
                "status": self.rng.choice(("Open - Not Contacted", "Working", "Nurture")),
                "rating": self.rng.choice(("Hot", "Warm", "Cold", "")),
            }
        )

    def add_map_case(self, chosen: list[Person]) -> None:
        plan = self.plan
        if plan.map_type == "marketo":
            duplicated = chosen[0]
            original = next(record for record in self.records if record["email"] == duplicated.email)
            tie = plan.hard.get("map_duplicate_tie", 0) > 0
            updated = original["updated"] if tie else original["updated"] - timedelta(days=40)
            self.add_record(duplicated, len(self.records) + 1, email=duplicated.email, updated=updated)
            if tie:
                detail = (
                    f"two Marketo leads share {duplicated.email} with the same updatedAt; "
                    "the push must break the tie the same way every time"
                )
                self.b.note("map_duplicate_email_tie", plan, self.leads_of(duplicated), detail)
            else:
                detail = (
                    f"two Marketo leads share {duplicated.email} with different updatedAt; "
                    "the push updates the most recently updated one"
                )
                self.b.note("map_duplicate_email", plan, self.leads_of(duplicated), detail)
        else:
            person = chosen[-1]
            record = next(record for record in self.records if record["email"] == person.email)
            record["email"] = person.email.upper()
            self.b.note(
                "map_uppercase_email",
                plan,
                self.leads_of(person),
                f"the existing HubSpot contact stores {record['email']}; lookup must match it case-insensitively",
            )
        self.b.note(
            "map_existing_match",
            plan,
            [lead for person in chosen for lead in self.leads_of(person)][:12],
            f"{len(chosen)} incoming people already exist in the MAP, so their pushes become updates",
        )

    def leads_of(self, person: Person) -> list[Lead]:
        return [lead for lead in self.b.leads[self.plan.account_id] if lead.person is person]

    def render(self) -> dict[str, Any]:
        plan = self.plan
        records = sorted(self.records, key=lambda record: (record["created"], record["email"]))
        config: dict[str, Any] = {
            "type": plan.map_type,
            "scoring": scoring_rules(plan.map_type, len(plan.account_id) % 2),
        }
        if plan.map_type == "marketo":
            config.update(
                client_id=f"mkto_client_{plan.account_id}",
                client_secret=f"mkto_secret_{plan.account_id}_{self.b.hex_text(8)}",
                munchkin_id=f"{self.b.digits(3)}-{plan.org_code}X-{self.b.digits(3)}",
                fields=marketo_fields(),
                score_field="leadScore",
                mql_date_field="mqlDate__c",
                field_map=dict(MARKETO_FIELD_MAP),
                leads=[self.marketo_lead(1_000_000 + 1_000 * plan.org_index + i, r) for i, r in enumerate(records)],
            )
        else:
            config.update(
                access_token=f"pat-na1-{self.b.hex_text(8)}-{self.b.hex_text(4)}-{self.b.hex_text(12)}",
                score_field="hubspotscore",
                mql_date_field="hs_lifecyclestage_marketingqualifiedlead_date",
                field_map=dict(HUBSPOT_FIELD_MAP),
                contacts=[self.hubspot_contact(50_000 + 1_000 * plan.org_index + i, r) for i, r in enumerate(records)],
            )
        return config

    @staticmethod
    def marketo_lead(lead_id: int, record: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": lead_id,
            "email": record["email"],
            "firstName": record["first_name"],
            "lastName": record["last_name"],
            "company": record["company"],
            "title": record["title"],
            "phone": record["phone"],
            "country": record["country"],
            "leadScore": record["score"],
            "mqlDate__c": record["mql_date"],
            "leadStatus": record["status"],
            "rating": record["rating"],
            "leadSource": "Webinar" if lead_id % 2 else "Website",
            "createdAt": iso_seconds(record["created"]),
            "updatedAt": iso_seconds(record["updated"]),
        }

    @staticmethod
    def hubspot_contact(contact_id: int, record: dict[str, Any]) -> dict[str, Any]:
        created, updated = iso_ms(record["created"]), iso_ms(record["updated"])
        stage = "marketingqualifiedlead" if record["mql_date"] else "lead"
        properties = {
            "email": record["email"],
            "firstname": record["first_name"],
            "lastname": record["last_name"],
            "company": record["company"],
            "jobtitle": record["title"],
            "phone": record["phone"],
            "country": record["country"],
            "hubspotscore": str(record["score"]),
            "hs_lead_status": {"Open - Not Contacted": "NEW", "Working": "IN_PROGRESS", "Nurture": "OPEN"}[
                record["status"]
            ],
            "lifecyclestage": stage,
            "hs_lifecyclestage_marketingqualifiedlead_date": (
                f"{record['mql_date']}T09:00:00.000Z" if record["mql_date"] else None
            ),
            "createdate": created,
            "lastmodifieddate": updated,
            "hs_object_id": str(contact_id),
        }
        return {
            "id": str(contact_id),
            "properties": properties,
            "createdAt": created,
            "updatedAt": updated,
            "archived": False,
        }


# --------------------------------------------------------------------------- Salesforce


class SalesforceOrg:
    """Salesforce records of one account, built around chosen incoming leads."""

    PREFIXES = {"accounts": "001", "contacts": "003", "opportunities": "006", "contact_roles": "00K", "leads": "00Q"}

    def __init__(self, builder: ScenarioBuilder, plan: AccountPlan, now: datetime):
        self.b = builder
        self.rng = builder.rng
        self.plan = plan
        self.now = now
        self.records: dict[str, list[dict[str, Any]]] = {name: [] for name in self.PREFIXES}
        self.account_by_domain: dict[str, str] = {}
        self.contact_by_email: dict[str, str] = {}
        # Opportunity Id -> (intended outcome, detail).
        self.intended: dict[str, tuple[str, str]] = {}
        self.website_turn = 0

    # -- record factories ---------------------------------------------------------------
    def new_id(self, kind: str) -> str:
        number = len(self.records[kind]) + 1
        return f"{self.PREFIXES[kind]}{self.plan.org_code}{number:010d}AAA"

    def website(self, domain: str) -> str:
        formats = ("https://www.{d}", "http://{d}", "www.{d}", "{d}", "https://{d}/")
        self.website_turn += 1
        return formats[self.website_turn % len(formats)].format(d=domain)

    def account(self, domain: str, name: str, website: str | None = None) -> str:
        if domain in self.account_by_domain:
            return self.account_by_domain[domain]
        account_id = self.new_id("accounts")
        self.records["accounts"].append({"Id": account_id, "Name": name, "Website": website or self.website(domain)})
        self.account_by_domain[domain] = account_id
        return account_id

    def contact(self, email: str, first: str, last: str, account_id: str | None, created: datetime) -> str:
        key = email.strip().lower()
        if key in self.contact_by_email:
            return self.contact_by_email[key]
        contact_id = self.new_id("contacts")
        self.records["contacts"].append(
            {
                "Id": contact_id,
                "AccountId": account_id,
                "FirstName": first,
                "LastName": last,
                "Email": email,
                "CreatedDate": salesforce_time(created),
            }
        )
        self.contact_by_email[key] = contact_id
        return contact_id

    def lead_contact(self, person: Person) -> str:
        """Create a contact for an incoming person, with the email in a different letter case."""
        email = person.business_email
        local, domain = email.split("@")
        variant = f"{local.title()}@{domain}" if self.rng.random() < 0.5 else f"{local}@{domain.upper()}"
        account_id = self.account(domain, person.company.name)
        created = datetime(2026, 5, 4, tzinfo=UTC) + timedelta(hours=self.rng.randint(0, 3000))
        return self.contact(variant, person.given, person.family, account_id, created)

    def unrelated_contact(self, account_id: str | None, domain: str) -> str:
        person = self.b.make_person(category="none")
        email = self.b.unique_email(f"{person.given_ascii}.{person.family_ascii}", domain)
        created = datetime(2026, 2, 2, tzinfo=UTC) + timedelta(hours=self.rng.randint(0, 4000))
        return self.contact(email, person.given, person.family, account_id, created)

    def opportunity(
        self,
        account_id: str,
        name: str,
        created: datetime,
        close: date,
        closed: bool,
        won: bool,
        intended: str,
        detail: str,
    ) -> str:
        if created > OPPORTUNITY_CREATED_LIMIT:
            raise ValueError(f"opportunity {name!r} would be created after {OPPORTUNITY_CREATED_LIMIT.isoformat()}")
        opportunity_id = self.new_id("opportunities")
        stage = (
            ("Closed Won" if won else "Closed Lost")
            if closed
            else self.rng.choice(("Prospecting", "Qualification", "Needs Analysis", "Proposal/Price Quote"))
        )
        amount = None if self.rng.random() < 0.15 else float(self.rng.randrange(5_000, 120_000, 500))
        self.records["opportunities"].append(
            {
                "Id": opportunity_id,
                "AccountId": account_id,
                "Name": name,
                "StageName": stage,
                "Amount": amount,
                "CloseDate": close.isoformat(),
                "IsClosed": closed,
                "IsWon": won,
                "CreatedDate": salesforce_time(created),
                "LeadSource": self.rng.choice(("Web", "LinkedIn", "Partner", "Outbound")),
            }
        )
        self.intended[opportunity_id] = (intended, detail)
        return opportunity_id

    def role(self, opportunity_id: str, contact_id: str, primary: bool, created: datetime) -> None:
        self.records["contact_roles"].append(
            {
                "Id": self.new_id("contact_roles"),
                "OpportunityId": opportunity_id,
                "ContactId": contact_id,
                "Role": self.rng.choice(
                    ("Decision Maker", "Evaluator", "Economic Buyer", "Technical Buyer", "Influencer")
                ),
                "IsPrimary": primary,
                "CreatedDate": salesforce_time(created),
            }
        )

    def salesforce_lead(self, email: str, person: Person, converted: dict[str, Any] | None) -> None:
        created = datetime(2026, 9, 1, tzinfo=UTC) + timedelta(hours=self.rng.randint(0, 1500))
        record: dict[str, Any] = {
            "Id": self.new_id("leads"),
            "Email": email,
            "FirstName": person.given,
            "LastName": person.family,
            "Company": person.company.name,
            "Status": "Closed - Converted" if converted else "Working - Contacted",
            "LeadSource": "Web",
            "IsConverted": converted is not None,
            "ConvertedDate": None,
            "ConvertedAccountId": None,
            "ConvertedContactId": None,
            "ConvertedOpportunityId": None,
            "CreatedDate": salesforce_time(created),
            "LastModifiedDate": salesforce_time(converted["at"] if converted else created + timedelta(days=3)),
        }
        if converted:
            record.update(
                ConvertedDate=converted["at"].date().isoformat(),
                ConvertedAccountId=converted["account"],
                ConvertedContactId=converted["contact"],
                ConvertedOpportunityId=converted.get("opportunity"),
            )
        self.records["leads"].append(record)

    def render(self) -> dict[str, Any]:
        code = self.plan.account_id
        return {
            "type": "salesforce",
            "client_id": f"sf_client_{code}",
            "client_secret": f"sf_secret_{code}_{self.b.hex_text(8)}",
            **self.records,
        }


class SalesforceDesigner:
    """Choose leads and place opportunities around their conversion times."""

    def __init__(self, builder: ScenarioBuilder, plan: AccountPlan, now: datetime):
        self.b = builder
        self.rng = builder.rng
        self.plan = plan
        self.org = SalesforceOrg(builder, plan, now)
        leads = [lead for lead in builder.leads[plan.account_id] if builder.pushable(lead) and not lead.is_test]
        self.conversions: dict[str, list[datetime]] = {}
        self.person_by_email: dict[str, Person] = {}
        for lead in leads:
            self.conversions.setdefault(lead.person.email, []).append(lead.submitted)
            self.person_by_email[lead.person.email] = lead.person
        # Latest conversion per business domain over every lead attribution considers.
        self.domain_latest: dict[str, datetime] = {}
        for lead in builder.leads[plan.account_id]:
            if builder.pushable(lead):
                domain = email_domain(lead.person.business_email)
                self.domain_latest[domain] = max(lead.submitted, self.domain_latest.get(domain, lead.submitted))
        self.used_domains: set[str] = set()

    def pick(self, before_midnight: bool = False) -> Person:
        """Pick a business-email person on a domain no other design has used."""
        candidates = []
        for email in sorted(self.person_by_email):
            person = self.person_by_email[email]
            domain = email_domain(email)
            if person.personal_email or domain in self.used_domains:
                continue
            if before_midnight and self.domain_latest[domain].date() >= date(2026, 11, 30):
                continue
            candidates.append(person)
        person = self.rng.choice(candidates)
        self.used_domains.add(email_domain(person.email))
        return person

    def after(self, person: Person, low_hours: int, high_hours: int) -> datetime:
        latest = max(self.conversions[person.email])
        created = latest + timedelta(hours=self.rng.randint(low_hours, high_hours), minutes=self.rng.randint(0, 59))
        return min(created, OPPORTUNITY_CREATED_LIMIT - timedelta(hours=1))

    def open_close_date(self) -> date:
        return date(2027, 1, 15) + timedelta(days=self.rng.randint(0, 75))

    def crm_only_account(self, label: str) -> tuple[str, str]:
        domain = f"{label}{len(self.org.records['accounts'])}.example.org"
        return self.org.account(domain, f"{label.title()} Holdings"), domain

    # -- designs -------------------------------------------------------------------------
    def triggered(self, primary: bool = True) -> None:
        person = self.pick()
        contact_id = self.org.lead_contact(person)
        account_id = self.org.account_by_domain[email_domain(person.email)]
        created = self.after(person, 3, 20)
        role = "primary" if primary else "non-primary"
        opportunity_id = self.org.opportunity(
            account_id,
            f"{person.company.name} - Platform",
            created,
            self.open_close_date(),
            False,
            False,
            "triggered",
            f"created {hours_between(max(self.conversions[person.email]), created)} after conversion; "
            f"the lead's contact holds the {role} contact role",
        )
        if not primary:
            other = self.org.unrelated_contact(account_id, email_domain(person.email))
            self.org.role(opportunity_id, other, True, created)
        self.org.role(opportunity_id, contact_id, primary, created)

    def triggered_through_converted_lead(self) -> None:
        person = self.pick()
        domain = email_domain(person.email)
        account_id = self.org.account(domain, person.company.name)
        # The contact carries an older address, so only the converted Salesforce Lead links it to the person.
        old_email = self.b.unique_email(f"{person.given_ascii}.{person.family_ascii}.old", domain)
        created = self.after(person, 5, 12)
        contact_id = self.org.contact(old_email, person.given, person.family, account_id, created)
        opportunity_id = self.org.opportunity(
            account_id,
            f"{person.company.name} - Expansion",
            created,
            self.open_close_date(),
            False,
            False,
            "triggered",
            "reached only by following the converted Salesforce Lead to its Contact and Opportunity",
        )
        self.org.role(opportunity_id, contact_id, True, created)
        self.org.salesforce_lead(
            person.email.upper(),
            person,
            {"at": created, "account": account_id, "contact": contact_id, "opportunity": opportunity_id},
        )

    def influenced_by_domain(self) -> None:
        person = self.pick()
        domain = email_domain(person.email)
        account_id = self.org.account(domain, person.company.name)
        created = self.after(person, 2, 18)
        other = self.org.unrelated_contact(account_id, domain)
        opportunity_id = self.org.opportunity(
            account_id,
            f"{person.company.name} - Pilot",
            created,
            self.open_close_date(),
            False,
            False,
            "influenced",
            f"matched only by the account Website domain {domain}; no contact role for the lead",
        )
        self.org.role(opportunity_id, other, True, created)

    def influenced_open_before(self) -> None:
        person = self.pick()
        contact_id = self.org.lead_contact(person)
        account_id = self.org.account_by_domain[email_domain(person.email)]
        created = datetime(2026, 9, 15, 14, tzinfo=UTC) + timedelta(hours=self.rng.randint(0, 500))
        opportunity_id = self.org.opportunity(
            account_id,
            f"{person.company.name} - Renewal",
            created,
            self.open_close_date(),
            False,
            False,
            "influenced",
            "created before the conversion and still open, so influenced but not triggered",
        )
        self.org.role(opportunity_id, contact_id, True, created)

    def influenced_closed_after(self) -> None:
        person = self.pick(before_midnight=True)
        contact_id = self.org.lead_contact(person)
        account_id = self.org.account_by_domain[email_domain(person.email)]
        created = datetime(2026, 8, 10, 9, tzinfo=UTC) + timedelta(hours=self.rng.randint(0, 300))
        opportunity_id = self.org.opportunity(
            account_id,
            f"{person.company.name} - Services",
            created,
            date(2026, 11, 30),
            True,
            True,
            "influenced",
            "created before the conversion (on 2026-11-29) and closed won on 2026-11-30, after it",
        )
        self.org.role(opportunity_id, contact_id, True, created)

    def not_attributed_closed_before(self) -> None:
        person = self.pick()
        contact_id = self.org.lead_contact(person)
        account_id = self.org.account_by_domain[email_domain(person.email)]
        created = datetime(2026, 7, 1, 9, tzinfo=UTC) + timedelta(hours=self.rng.randint(0, 300))
        opportunity_id = self.org.opportunity(
            account_id,
            f"{person.company.name} - Trial",
            created,
            date(2026, 11, 20),
            True,
            False,
            "none",
            "closed lost on 2026-11-20, before the conversion, although contact and domain match",
        )
        self.org.role(opportunity_id, contact_id, True, created)

    def not_attributed_free_mail(self) -> None:
        account_id = self.org.account("gmail.com", "Individual Buyers", website="https://www.gmail.com")
        contact_id = self.org.unrelated_contact(account_id, "gmail.com")
        created = datetime(2026, 11, 30, 12, tzinfo=UTC) + timedelta(minutes=self.rng.randint(0, 300))
        opportunity_id = self.org.opportunity(
            account_id,
            "Individual Buyers - Starter plan",
            created,
            self.open_close_date(),
            False,
            False,
            "none",
            "on an account whose Website is gmail.com; free-mail domains never match leads",
        )
        self.org.role(opportunity_id, contact_id, True, created)

    def not_attributed_unrelated(self) -> None:
        account_id, domain = self.crm_only_account(self.rng.choice(("legacy", "northstar", "meridian")))
        contact_id = self.org.unrelated_contact(account_id, domain)
        created = datetime(2026, 11, 2, tzinfo=UTC) + timedelta(hours=self.rng.randint(0, 500))
        opportunity_id = self.org.opportunity(
            account_id,
            f"{domain.split('.')[0].title()} - Upgrade",
            created,
            self.open_close_date(),
            False,
            False,
            "none",
            "neither its contacts nor its account domain match any incoming lead",
        )
        self.org.role(opportunity_id, contact_id, True, created)

    def extra_leads(self) -> None:
        """Converted Salesforce Leads without an opportunity, an unconverted one, and one unrelated."""
        person = self.pick()
        contact_id = self.org.lead_contact(person)
        account_id = self.org.account_by_domain[email_domain(person.email)]
        converted_at = self.after(person, 1, 6)
        self.org.salesforce_lead(
            person.email, person, {"at": converted_at, "account": account_id, "contact": contact_id}
        )
        unconverted = self.pick()
        self.org.salesforce_lead(unconverted.email.title(), unconverted, None)
        stranger = self.b.make_person(category="none")
        self.org.salesforce_lead(f"{stranger.given_ascii}@unrelated{self.plan.org_index}.example.org", stranger, None)

    def filler_accounts(self, count: int) -> None:
        """Accounts on incoming business domains without opportunities, as real orgs have."""
        emails = [email for email in sorted(self.person_by_email) if not self.person_by_email[email].personal_email]
        for email in self.rng.sample(emails, min(count, len(emails))):
            person = self.person_by_email[email]
            self.org.account(email_domain(email), person.company.name)

    def build(self) -> SalesforceOrg:
        if self.plan.crm_design == "small":
            self.triggered()
            self.influenced_by_domain()
            self.not_attributed_free_mail()
            return self.org
        self.triggered()
        self.triggered()
        self.triggered(primary=False)
        self.triggered_through_converted_lead()
        self.influenced_by_domain()
        self.influenced_by_domain()
        self.influenced_open_before()
        self.influenced_closed_after()
        self.not_attributed_closed_before()
        self.not_attributed_free_mail()
        self.not_attributed_unrelated()
        self.not_attributed_unrelated()
        self.extra_leads()
        self.filler_accounts(6)
        return self.org


# --------------------------------------------------------------------------- attribution check


def attribute(
    builder: ScenarioBuilder, plan: AccountPlan, crm: dict[str, Any], now: datetime
) -> dict[str, dict[str, list[str]]]:
    """Apply the attribution rules to the generated data: opportunity Id -> triggered and influenced lead refs.

    Contacts match by email (either address of the lead, case-insensitive),
    directly or through a converted Salesforce Lead. From a contact, an
    opportunity is reached through its contact roles or through the converted
    lead's ConvertedOpportunityId. Accounts match by Website domain against
    the business-email domain, never a free-mail domain. A closed
    opportunity's CloseDate is compared by calendar day, and a conversion on
    the close day raises ValueError, so the data never depends on that choice.
    """
    windows = plan.attribution
    contacts: dict[str, list[str]] = {}
    for contact in crm["contacts"]:
        if contact.get("Email"):
            contacts.setdefault(contact["Email"].strip().lower(), []).append(contact["Id"])
    converted_opportunities: dict[str, list[str]] = {}
    for record in crm["leads"]:
        if record["IsConverted"] and record.get("Email"):
            key = record["Email"].strip().lower()
            contacts.setdefault(key, []).append(record["ConvertedContactId"])
            if record.get("ConvertedOpportunityId"):
                converted_opportunities.setdefault(key, []).append(record["ConvertedOpportunityId"])
    roles: dict[str, list[str]] = {}
    for role in crm["contact_roles"]:
        roles.setdefault(role["ContactId"], []).append(role["OpportunityId"])
    domains = {account["Id"]: website_domain(account.get("Website")) for account in crm["accounts"]}
    opportunities = {opportunity["Id"]: opportunity for opportunity in crm["opportunities"]}
    result = {opportunity_id: {"triggered": [], "influenced": []} for opportunity_id in opportunities}
    for lead in builder.leads[plan.account_id]:
        if not builder.pushable(lead):
            continue
        emails = sorted({lead.person.email.lower(), lead.person.business_email.lower()})
        by_contact: list[str] = []
        for email in emails:
            for contact_id in contacts.get(email, []):
                by_contact += roles.get(contact_id, [])
            by_contact += converted_opportunities.get(email, [])
        domain = email_domain(lead.person.business_email)
        by_account = []
        if domain not in FREE_MAIL_DOMAINS:
            by_account = [oid for oid, opp in opportunities.items() if domains.get(opp["AccountId"]) == domain]
        for opportunity_id in sorted(set(by_contact) | set(by_account)):
            opportunity = opportunities[opportunity_id]
            created = parse_utc(opportunity["CreatedDate"].replace("+0000", "+00:00"))
            lead_time = lead.submitted
            if opportunity["IsClosed"]:
                close = date.fromisoformat(opportunity["CloseDate"])
                if close == lead_time.date():
                    raise ValueError(
                        f"{opportunity_id} closes on the conversion day of {lead.ref}; ambiguous by design"
                    )
                if close < lead_time.date():
                    continue
            elif lead_time >= now:
                continue
            if created - lead_time > timedelta(days=windows["influenced_window_days"]):
                continue
            result[opportunity_id]["influenced"].append(lead.ref)
            triggered_window = timedelta(days=windows["triggered_window_days"])
            if opportunity_id in by_contact and lead_time < created and created - lead_time <= triggered_window:
                result[opportunity_id]["triggered"].append(lead.ref)
    return result


def outcome_of(matches: dict[str, list[str]]) -> str:
    if matches["triggered"]:
        return "triggered"
    return "influenced" if matches["influenced"] else "none"


# --------------------------------------------------------------------------- accounts


def render_account(
    builder: ScenarioBuilder, renderer: WireRenderer, plan: AccountPlan, index: int, now: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the account entry of the scenario and its expected outcomes."""
    account: dict[str, Any] = {
        "account_id": plan.account_id,
        "name": plan.name,
        "active": plan.active,
        "timezone": plan.timezone,
        "settings": dict(plan.settings),
    }
    account.update(render_sources(builder, renderer, plan, index))

    map_builder = MapBuilder(builder, plan)
    if plan.crm_design == "small":
        overlap = 2
    elif plan.active:
        overlap = 8
    else:
        overlap = 1
    account["map"] = map_builder.build(overlap)

    opportunities: list[dict[str, Any]] = []
    if plan.crm_design:
        account["crm"], opportunities = render_salesforce(builder, plan, now)
    expected = expected_for(builder, plan, map_builder.matched_emails, opportunities)
    return account, expected


def render_sources(
    builder: ScenarioBuilder, renderer: WireRenderer, plan: AccountPlan, index: int
) -> dict[str, dict[str, Any]]:
    """Render the connected lead sources of one account, leads ordered by submission time."""
    leads = sorted(builder.leads[plan.account_id], key=lambda lead: (lead.submitted, lead.ref))
    sources: dict[str, dict[str, Any]] = {}
    if "linkedin" in plan.ordinary:
        sponsored = f"5000000{index:02d}"
        sources["linkedin"] = {
            "access_token": f"li_token_{plan.account_id}_{builder.hex_text(12)}",
            "sponsored_account_id": sponsored,
            "forms": renderer.linkedin_forms(index, sponsored),
            "leads": [renderer.linkedin_lead(lead, index, sponsored) for lead in leads if lead.source == "linkedin"],
        }
    if "meta" in plan.ordinary:
        sources["meta"] = {
            "access_token": f"meta_token_{plan.account_id}_{builder.hex_text(12)}",
            "page_id": f"1000000000000{index:02d}",
            "forms": renderer.meta_forms(index),
            "leads": [renderer.meta_lead(lead, index) for lead in leads if lead.source == "meta"],
        }
    if "pixel" in plan.ordinary:
        sources["pixel"] = {
            "site_key": f"pk_{plan.account_id}_{builder.hex_text(4)}",
            "allowed_origins": [plan.origin, plan.origin.replace("://www.", "://go.")],
            "submissions": [renderer.pixel_submission(lead, plan.origin) for lead in leads if lead.source == "pixel"],
        }
    return sources


def render_salesforce(
    builder: ScenarioBuilder, plan: AccountPlan, now: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Build the Salesforce org of one account and check each opportunity's designed outcome.

    Returns the crm entry and, per opportunity, the outcome with the triggered
    and influenced lead refs. Raises ValueError when the attribution rules
    give an opportunity another outcome than the one it was designed for.
    """
    org = SalesforceDesigner(builder, plan, now).build()
    crm = org.render()
    matches = attribute(builder, plan, crm, now)
    opportunities = []
    for opportunity_id in sorted(matches):
        outcome = outcome_of(matches[opportunity_id])
        intended, detail = org.intended[opportunity_id]
        if outcome != intended:
            raise ValueError(f"{plan.account_id} {opportunity_id}: designed as {intended}, rules give {outcome}")
        opportunities.append({"opportunity_id": opportunity_id, "outcome": outcome, **matches[opportunity_id]})

        if outcome == "triggered":
            case = "opportunity_triggered"
        elif outcome == "influenced":
            case = "opportunity_influenced_only"
        else:
            case = "opportunity_not_attributed"
        refs = matches[opportunity_id]["triggered"] or matches[opportunity_id]["influenced"]
        builder.note(case, plan, [], f"{opportunity_id}: {detail}", extra_refs=refs)
    return crm, opportunities


def expected_for(
    builder: ScenarioBuilder, plan: AccountPlan, map_matches: list[str], opportunities: list[dict[str, Any]]
) -> dict[str, Any]:
    leads = sorted(builder.leads[plan.account_id], key=lambda lead: (lead.submitted, lead.ref))
    valid = [lead for lead in leads if lead.valid]
    pushable = [lead for lead in valid if builder.pushable(lead)]
    quarantined = [lead for lead in leads if not lead.valid]
    pushable_people = sorted({lead.person.email for lead in pushable})
    return {
        "account_id": plan.account_id,
        "active": plan.active,
        "leads_total": len(leads),
        "leads_by_source": dict(sorted(Counter(lead.source for lead in leads).items())),
        "valid_leads": len(valid),
        "quarantined_leads": len(quarantined),
        "quarantine_reasons": dict(sorted(Counter(lead.quarantine_reason for lead in quarantined).items())),
        "quarantined": [{"ref": lead.ref, "reason_code": lead.quarantine_reason} for lead in quarantined],
        "test_leads": sum(lead.is_test for lead in valid),
        "spam_leads": sum(lead.spam_reason is not None for lead in valid),
        "spam_reasons": dict(sorted(Counter(lead.spam_reason for lead in valid if lead.spam_reason).items())),
        "pushable_leads": len(pushable),
        "distinct_people": len({lead.person.email for lead in valid}),
        "distinct_pushable_people": len(pushable_people),
        "map_existing_matches": sum(email in pushable_people for email in sorted(set(map_matches))),
        "opportunities": opportunities,
    }


# --------------------------------------------------------------------------- scenarios


def malformed_once() -> dict[str, int]:
    return dict.fromkeys(MALFORMED_CASES, 1)


def default_plans() -> list[AccountPlan]:
    standard_hard = {
        "cross_source_duplicate": 2,
        "personal_and_work_email": 2,
        "personal_email_only": 2,
        "non_latin_name": 2,
        "test_lead": 2,
        "spam_disposable_domain": 1,
        "spam_gibberish_name": 1,
        "same_source_repeat": 1,
        **malformed_once(),
    }
    return [
        AccountPlan(
            account_id="northwind",
            name="Northwind Analytics",
            timezone="Europe/Berlin",
            active=True,
            map_type="marketo",
            settings={
                "push_before_verification": False,
                "include_test_leads": False,
                "include_spam_leads": False,
                "review_deadline_policy": "hold",
                "custom_pull_fields": ["leadStatus"],
                "attribution": dict(DEFAULT_ATTRIBUTION),
            },
            ordinary={"linkedin": 110, "meta": 90, "pixel": 55},
            hard={**standard_hard, "spam_honeypot": 2},
            org_code="NW",
            map_records=30,
            crm_design="default",
            origin="https://www.northwind.example",
            scripts=("chinese", "greek"),
        ),
        AccountPlan(
            account_id="helios",
            name="Helios Freight",
            timezone="America/New_York",
            active=True,
            map_type="hubspot",
            settings={
                "push_before_verification": True,
                "include_test_leads": False,
                "include_spam_leads": False,
                "review_deadline_policy": "push_unverified",
                "custom_pull_fields": ["hs_lead_status", "lifecyclestage"],
            },
            ordinary={"linkedin": 130, "pixel": 75},
            hard={**standard_hard, "personal_and_work_email": 1, "spam_honeypot": 2},
            org_code="HE",
            map_records=30,
            crm_design="default",
            origin="https://www.helios.example",
            scripts=("cyrillic", "arabic"),
        ),
        AccountPlan(
            account_id="kestrel",
            name="Kestrel Security",
            timezone="Europe/London",
            active=True,
            map_type="marketo",
            settings={
                "push_before_verification": True,
                "include_test_leads": True,
                "include_spam_leads": False,
                "review_deadline_policy": "hold",
                "custom_pull_fields": ["leadStatus", "rating"],
            },
            # Meta carries the traffic. The small LinkedIn feed contains the test leads this account includes.
            ordinary={"meta": 130, "linkedin": 10},
            hard={
                **standard_hard,
                "cross_source_duplicate": 1,
                "personal_email_only": 1,
                "test_lead": 5,
                "spam_disposable_domain": 2,
            },
            org_code="KE",
            map_records=30,
            crm_design="default",
            origin="https://www.kestrel.example",
            scripts=("chinese", "cyrillic"),
        ),
        AccountPlan(
            account_id="orbit",
            name="Orbit Learning",
            timezone="Asia/Singapore",
            active=True,
            map_type="hubspot",
            settings={
                "push_before_verification": False,
                "include_test_leads": False,
                "include_spam_leads": False,
                "review_deadline_policy": "push_unverified",
                "custom_pull_fields": [],
            },
            ordinary={"linkedin": 95, "meta": 85},
            hard={**standard_hard, "spam_gibberish_name": 2},
            org_code="OR",
            map_records=30,
            crm_design="default",
            origin="https://www.orbit.example",
            scripts=("arabic", "greek"),
        ),
        AccountPlan(
            account_id="juniper",
            name="Juniper Health Systems",
            timezone="America/Los_Angeles",
            active=True,
            map_type="marketo",
            settings={
                "push_before_verification": False,
                "include_test_leads": False,
                "include_spam_leads": False,
                "review_deadline_policy": "hold",
                "custom_pull_fields": ["leadStatus"],
                "attribution": {"triggered_window_days": 60, "influenced_window_days": 180},
            },
            ordinary={"linkedin": 75, "meta": 70, "pixel": 50},
            hard={**standard_hard, "test_lead": 1, "spam_honeypot": 2, "map_duplicate_tie": 1},
            org_code="JU",
            map_records=30,
            crm_design="default",
            origin="https://www.juniper.example",
            scripts=("chinese", "cyrillic", "greek", "arabic"),
        ),
        AccountPlan(
            account_id="tundra",
            name="Tundra Outdoor",
            timezone="Europe/Oslo",
            active=False,
            map_type="marketo",
            settings={
                "push_before_verification": False,
                "include_test_leads": False,
                "include_spam_leads": False,
                "review_deadline_policy": "hold",
                "custom_pull_fields": [],
            },
            ordinary={"linkedin": 8},
            hard={},
            org_code="TU",
            map_records=4,
            crm_design=None,
            origin="https://www.tundra.example",
        ),
    ]


def small_plans() -> list[AccountPlan]:
    return [
        AccountPlan(
            account_id="alder",
            name="Alder Robotics",
            timezone="Europe/Amsterdam",
            active=True,
            map_type="marketo",
            settings={
                "push_before_verification": False,
                "include_test_leads": False,
                "include_spam_leads": False,
                "review_deadline_policy": "hold",
                "custom_pull_fields": ["leadStatus"],
            },
            ordinary={"linkedin": 4, "meta": 3, "pixel": 3},
            hard={
                "cross_source_duplicate": 1,
                "personal_and_work_email": 1,
                "personal_email_only": 1,
                "non_latin_name": 1,
                "test_lead": 1,
                "spam_disposable_domain": 1,
                "spam_honeypot": 1,
                "email_missing": 1,
                "email_invalid": 1,
                "email_non_ascii": 1,
                "company_too_long": 1,
            },
            org_code="AL",
            map_records=5,
            crm_design="small",
            origin="https://www.alder.example",
            scripts=("chinese",),
        ),
        AccountPlan(
            account_id="birch",
            name="Birch Payroll",
            timezone="America/Chicago",
            active=True,
            map_type="hubspot",
            settings={
                "push_before_verification": True,
                "include_test_leads": True,
                "include_spam_leads": False,
                "review_deadline_policy": "push_unverified",
                "custom_pull_fields": ["hs_lead_status"],
            },
            ordinary={"linkedin": 3, "meta": 4, "pixel": 3},
            hard={
                "cross_source_duplicate": 1,
                "personal_and_work_email": 1,
                "personal_email_only": 1,
                "non_latin_name": 1,
                "test_lead": 1,
                "spam_gibberish_name": 1,
                "spam_honeypot": 1,
                "email_empty": 1,
                "first_name_too_long": 1,
                "phone_invalid": 1,
            },
            org_code="BI",
            map_records=5,
            crm_design="small",
            origin="https://www.birch.example",
            scripts=("cyrillic",),
        ),
    ]


def vendor_settings() -> dict[str, Any]:
    return {
        "linkedin": {"default_count": 10, "max_count": 500, "sunset_versions": ["202301"]},
        "meta": {"default_limit": 25, "max_limit": 100},
        "enrichment": {"per_minute": 600, "pending_first_lookup": True},
        "marketo": {"max_batch": 300, "rate_calls": 100, "rate_window_seconds": 20},
        "hubspot": {"max_batch": 100, "ten_second_limit": 100},
        "salesforce": {"query_batch": 2000, "max_collection": 200},
    }


def build_scenario(small: bool, seed: int) -> dict[str, Any]:
    """Build the default or the small scenario for ``seed``."""
    if small:
        start, count, weights = datetime(2026, 11, 30, 9, tzinfo=UTC), 2, [1, 1]
        plans = small_plans()
        name, description = "small", "Two accounts and about 40 leads over two windows, for fast tests."
    else:
        start, count, weights = datetime(2026, 11, 29, 23, tzinfo=UTC), 6, [1, 1, 1, 2, 1, 1]
        plans = default_plans()
        name = "default"
        description = (
            "Six client accounts (one inactive) with over 1,000 leads from LinkedIn, Meta and the pixel over six "
            "15-minute windows around midnight UTC, with the hard cases listed in notes."
        )

    builder = ScenarioBuilder(seed, start, count, 15, weights)
    for index, plan in enumerate(plans, start=1):
        plan.org_index = index
        builder.add_account_leads(plan)
    for plan in plans:
        if small:
            builder.add_timing_cases(plan, boundary=1, same_time_groups=1 if plan.account_id == "alder" else 0)
        elif plan.active:
            builder.add_timing_cases(plan, boundary=2, same_time_groups=2)
    add_cross_account_case(builder, plans)
    builder.make_pixel_times_unique()

    renderer = WireRenderer(builder)
    now = builder.end
    accounts, expected = [], []
    for index, plan in enumerate(plans, start=1):
        account, account_expected = render_account(builder, renderer, plan, index, now)
        accounts.append(account)
        expected.append(account_expected)

    enrichment, outcomes = build_enrichment(builder)
    for entry in expected:
        entry["enrichment_outcomes"] = dict(sorted(outcomes.get(entry["account_id"], Counter()).items()))
    inactive = [plan for plan in plans if not plan.active]
    for plan in inactive:
        builder.note(
            "inactive_account", plan, builder.leads[plan.account_id], "account is inactive; never process its leads"
        )

    scenario = {
        "format": 1,
        "name": name,
        "description": description,
        "clock": {"frozen_at": iso_seconds(builder.end)},
        "windows": {"start": iso_seconds(start), "count": count, "minutes": 15},
        "settings": vendor_settings(),
        "enrichment": enrichment,
        "accounts": accounts,
        "faults": [],
        "notes": [note.render() for note in builder.notes],
        "expected": expected,
    }
    validate(scenario)
    return scenario


def add_cross_account_case(builder: ScenarioBuilder, plans: list[AccountPlan]) -> None:
    """Send one person to an inactive account as well, so account isolation shows."""
    inactive = [plan for plan in plans if not plan.active]
    if not inactive:
        return
    active = plans[0]
    source_lead = next(
        lead for lead in builder.leads[active.account_id] if builder.is_plain(lead) and lead.source == "linkedin"
    )
    copy = builder.add_lead(inactive[0], "linkedin", source_lead.person, form_key="A1")
    builder.note(
        "cross_account_same_email",
        inactive[0],
        [source_lead, copy],
        f"{source_lead.person.email} converts in {active.account_id} and in the inactive {inactive[0].account_id}; "
        "people never merge across accounts",
    )


def write_scenario(scenario: dict[str, Any], path: Path) -> None:
    text = json.dumps(scenario, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="generate the two-account scenario for fast tests")
    parser.add_argument("--seed", type=int, default=7, help="seed of the random generator (default 7)")
    parser.add_argument(
        "--out",
        type=Path,
        help="output file (default scenarios/default.json, or scenarios/small.json with --small)",
    )
    args = parser.parse_args(argv)
    out = args.out or ROOT / "scenarios" / ("small.json" if args.small else "default.json")
    scenario = build_scenario(args.small, args.seed)
    write_scenario(scenario, out)
    leads = sum(entry["leads_total"] for entry in scenario["expected"])
    print(f"wrote {out}: {len(scenario['accounts'])} accounts, {leads} leads, {len(scenario['notes'])} notes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
