"""Review desk export and import, and the simulated review team, against the test warehouse."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import psycopg2.extras
import pytest

from leadflow import review, review_sim

T0 = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
DEADLINE = T0 + timedelta(hours=24)


def lead_spec(account_id: str, email: str, **overrides) -> dict:
    spec = {
        "account_id": account_id,
        "email": email,
        "first_name": "Ana",
        "last_name": "Lopez",
        "company": "Northwind",
        "job_title": "Head of Data",
        "phone": "+49 30 1234567",
        "country": "DE",
        "business_email": email,
        "is_test": False,
        "is_spam": False,
        "converted_at": T0,
        "queued_at": T0 + timedelta(minutes=3),
        "deadline_at": DEADLINE,
        "status": "pending",
        "enrichment": None,
    }
    spec.update(overrides)
    return spec


def seed(dsn: str, specs: list[dict]) -> list[int]:
    """Insert accounts, people, leads, enrichment and review rows; return the lead ids in spec order."""
    lead_ids = []
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        for account_id in sorted({spec["account_id"] for spec in specs}):
            cur.execute(
                "INSERT INTO leadflow.accounts (account_id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (account_id, account_id.title()),
            )
        for index, spec in enumerate(specs):
            cur.execute(
                "INSERT INTO leadflow.people (account_id, email_key, created_at) VALUES (%s, %s, %s)"
                " RETURNING person_id",
                (spec["account_id"], spec["email"].lower(), spec["converted_at"]),
            )
            person_id = cur.fetchone()[0]
            cur.execute(
                "INSERT INTO leadflow.leads (account_id, source, source_lead_id, person_id, converted_at,"
                " available_at, ingested_at, ingested_run_id, email, business_email, optin_email, first_name,"
                " last_name, phone, company, job_title, country, is_test, is_spam)"
                " VALUES (%s, 'pixel', %s, %s, %s, %s, %s, 'run-1', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " RETURNING lead_id",
                (
                    spec["account_id"],
                    f"sub-{index}",
                    person_id,
                    spec["converted_at"],
                    spec["converted_at"],
                    spec["queued_at"],
                    spec["email"],
                    spec["business_email"],
                    spec["email"],
                    spec["first_name"],
                    spec["last_name"],
                    spec["phone"],
                    spec["company"],
                    spec["job_title"],
                    spec["country"],
                    spec["is_test"],
                    spec["is_spam"],
                ),
            )
            lead_id = cur.fetchone()[0]
            if spec["enrichment"]:
                company, job_title, industry = spec["enrichment"]
                cur.execute(
                    "INSERT INTO leadflow.enrichment (person_id, account_id, status, company, job_title, industry,"
                    " enriched_at, run_id) VALUES (%s, %s, 'matched', %s, %s, %s, %s, 'run-1')",
                    (person_id, spec["account_id"], company, job_title, industry, spec["queued_at"]),
                )
            cur.execute(
                "INSERT INTO leadflow.review_queue (lead_id, account_id, queued_at, deadline_at, status)"
                " VALUES (%s, %s, %s, %s, %s)",
                (lead_id, spec["account_id"], spec["queued_at"], spec["deadline_at"], spec["status"]),
            )
            lead_ids.append(lead_id)
    conn.close()
    return lead_ids


def queue_rows(dsn: str) -> dict[int, dict]:
    conn = psycopg2.connect(dsn)
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(
            "SELECT lead_id, status, decided_at, reviewer, corrections, reason, import_batch, imported_at"
            " FROM leadflow.review_queue"
        )
        rows = {row["lead_id"]: dict(row) for row in cur.fetchall()}
    conn.close()
    return rows


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=review.EXPORT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return path


def decision(lead_id, decision_value: str, **values) -> dict:
    row = {
        "lead_id": lead_id,
        "decision": decision_value,
        "reviewer": "Maya Chen",
        "decided_at": "2025-03-04T10:12:00+00:00",
    }
    row.update(values)
    return row


@pytest.fixture
def queue(clean_warehouse):
    """Six review rows across two accounts: four pending, one verified, one expired."""
    specs = [
        lead_spec("acme", "ana.lopez@northwind.example", deadline_at=DEADLINE + timedelta(hours=2)),
        lead_spec(
            "acme",
            "ben@contoso.example",
            first_name="ben",
            last_name="",
            company="CTS",
            enrichment=("Contoso Trading Systems", "VP Sales", "Software"),
            deadline_at=DEADLINE + timedelta(hours=1),
        ),
        lead_spec("globex", "cara@globex.example", deadline_at=DEADLINE + timedelta(hours=1)),
        lead_spec("acme", "dan@acme.example", status="verified"),
        lead_spec("acme", "eve@acme.example", status="expired"),
        lead_spec("acme", "spam@bad.example", is_spam=True, deadline_at=DEADLINE + timedelta(hours=3)),
    ]
    return clean_warehouse, seed(clean_warehouse, specs)


def test_export_returns_pending_rows_in_order(queue, tmp_path):
    dsn, ids = queue
    out = tmp_path / "queue.csv"

    count = review.export_queue(out)

    with out.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames
        rows = list(reader)
    assert count == 4
    assert header == review.EXPORT_COLUMNS
    assert [int(row["lead_id"]) for row in rows] == [ids[1], ids[2], ids[0], ids[5]]
    assert rows[0] == {
        "lead_id": str(ids[1]),
        "account_id": "acme",
        "source": "pixel",
        "converted_at": "2025-03-04T10:00:00+00:00",
        "queued_at": "2025-03-04T10:03:00+00:00",
        "deadline_at": "2025-03-05T11:00:00+00:00",
        "email": "ben@contoso.example",
        "business_email": "ben@contoso.example",
        "first_name": "ben",
        "last_name": "",
        "company": "CTS",
        "job_title": "Head of Data",
        "phone": "+49 30 1234567",
        "country": "DE",
        "enriched_company": "Contoso Trading Systems",
        "enriched_job_title": "VP Sales",
        "enriched_industry": "Software",
        "is_test": "false",
        "is_spam": "false",
    } | {name: "" for name in review.DECISION_COLUMNS}
    assert rows[3]["is_spam"] == "true"
    assert out.stat().st_mode & 0o777 == 0o600


def test_export_filters_account_and_writes_json(queue, tmp_path):
    dsn, ids = queue
    out = tmp_path / "acme.json"

    count = review.export_queue(out, account_id="acme", fmt="json")

    rows = json.loads(out.read_text(encoding="utf-8"))
    assert count == 3
    assert [row["lead_id"] for row in rows] == [ids[1], ids[0], ids[5]]
    assert rows[0]["is_spam"] is False
    assert rows[0]["decision"] is None
    assert list(rows[0]) == review.EXPORT_COLUMNS


def test_export_guards_spreadsheet_formulas(clean_warehouse, tmp_path):
    seed(clean_warehouse, [lead_spec("acme", "x@acme.example", first_name="=HYPERLINK(1)", company="-Acme")])
    out = tmp_path / "queue.csv"

    review.export_queue(out)

    row = next(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert row["first_name"] == "'=HYPERLINK(1)"
    assert row["company"] == "'-Acme"
    assert row["phone"] == "+49 30 1234567"


def test_import_applies_each_decision(queue, tmp_path):
    dsn, ids = queue
    path = write_csv(
        tmp_path / "decisions.csv",
        [
            decision(ids[0], "verify"),
            decision(
                ids[1],
                "Correct",
                corrected_first_name="Ben",
                corrected_last_name=" Ortiz ",
                corrected_company="Contoso Trading Systems",
                decided_at="2025-03-04T11:12:00+01:00",
            ),
            decision(ids[5], "reject", reason="suspected spam", reviewer="Tom Okafor"),
            decision(ids[4], "verify", decided_at="2025-03-05T12:00:00Z"),
            {"lead_id": ids[2]},
        ],
    )

    report = review.import_decisions(path, import_batch="batch-1")

    assert report.errors == []
    assert report.applied == 4
    assert report.unchanged == 0
    assert report.skipped == 1
    rows = queue_rows(dsn)
    assert rows[ids[0]]["status"] == "verified"
    assert rows[ids[0]]["corrections"] == {}
    assert rows[ids[0]]["reason"] is None
    assert rows[ids[0]]["reviewer"] == "Maya Chen"
    assert rows[ids[0]]["decided_at"] == datetime(2025, 3, 4, 10, 12, tzinfo=UTC)
    assert rows[ids[0]]["import_batch"] == "batch-1"
    assert rows[ids[0]]["imported_at"] is not None
    assert rows[ids[1]]["status"] == "corrected"
    assert rows[ids[1]]["corrections"] == {
        "first_name": "Ben",
        "last_name": "Ortiz",
        "company": "Contoso Trading Systems",
    }
    assert rows[ids[1]]["decided_at"] == datetime(2025, 3, 4, 10, 12, tzinfo=UTC)
    assert rows[ids[5]]["status"] == "rejected"
    assert rows[ids[5]]["reason"] == "suspected spam"
    assert rows[ids[5]]["reviewer"] == "Tom Okafor"
    assert rows[ids[4]]["status"] == "verified"
    assert rows[ids[2]]["status"] == "pending"
    assert rows[ids[2]]["import_batch"] is None
    assert rows[ids[3]]["import_batch"] is None
    assert not Path(f"{path}.errors.csv").exists()


def test_import_reports_bad_rows_and_applies_good(clean_warehouse, tmp_path):
    ids = seed(clean_warehouse, [lead_spec("acme", f"p{i}@acme.example") for i in range(9)])
    rows = [
        decision(ids[0], "verify"),
        decision(ids[1], "approve"),
        decision(ids[2], "correct"),
        decision(ids[3], "reject"),
        decision(ids[4], "correct", corrected_email="not-an-email"),
        decision(ids[5], "verify", decided_at="2025-03-04T10:12:00"),
        decision(ids[6], "verify", decided_at="2025-03-04T10:01:00+00:00"),
        decision(999999, "verify"),
        decision("abc", "verify"),
        decision(ids[7], "correct", corrected_email="Ana.Lopez@Northwind.example"),
        decision(ids[8], "verify", account_id="globex"),
    ]
    path = write_csv(tmp_path / "decisions.csv", rows)

    report = review.import_decisions(path)

    assert report.applied == 2
    assert [(row, lead) for row, lead, _ in report.errors] == [
        (3, str(ids[1])),
        (4, str(ids[2])),
        (5, str(ids[3])),
        (6, str(ids[4])),
        (7, str(ids[5])),
        (8, str(ids[6])),
        (9, "999999"),
        (10, "abc"),
        (12, str(ids[8])),
    ]
    messages = [message for _, _, message in report.errors]
    assert "invalid decision 'approve'" in messages[0]
    assert "needs at least one corrected_* value" in messages[1]
    assert "reject needs a reason" in messages[2]
    assert "invalid corrected_email 'not-an-email'" in messages[3]
    assert "has no UTC offset" in messages[4]
    assert "before the lead was queued" in messages[5]
    assert "not found in the review queue" in messages[6]
    assert "invalid lead_id 'abc'" in messages[7]
    assert "does not match the lead's account 'acme'" in messages[8]
    stored = queue_rows(clean_warehouse)
    assert stored[ids[0]]["status"] == "verified"
    assert stored[ids[7]]["status"] == "corrected"
    assert stored[ids[7]]["corrections"] == {"email": "Ana.Lopez@Northwind.example"}
    assert [stored[ids[i]]["status"] for i in (1, 2, 3, 4, 5, 6, 8)] == ["pending"] * 7
    errors_csv = list(csv.reader(Path(f"{path}.errors.csv").open(encoding="utf-8", newline="")))
    assert errors_csv[0] == ["row", "lead_id", "message"]
    assert [line[:2] for line in errors_csv[1:]] == [[str(row), lead] for row, lead, _ in report.errors]


def test_reimport_is_unchanged(queue, tmp_path):
    dsn, ids = queue
    path = write_csv(
        tmp_path / "decisions.csv",
        [decision(ids[0], "verify"), decision(ids[1], "correct", corrected_first_name="Ben")],
    )
    first = review.import_decisions(path, import_batch="batch-1")
    after_first = queue_rows(dsn)

    second = review.import_decisions(path, import_batch="batch-2")

    assert first.applied == 2
    assert second.applied == 0
    assert second.unchanged == 2
    assert second.errors == []
    assert queue_rows(dsn) == after_first


def test_conflicting_reimport_needs_override(queue, tmp_path):
    dsn, ids = queue
    review.import_decisions(write_csv(tmp_path / "first.csv", [decision(ids[0], "verify")]))
    changed = write_csv(tmp_path / "second.csv", [decision(ids[0], "reject", reason="competitor")])

    refused = review.import_decisions(changed)
    status_after_refusal = queue_rows(dsn)[ids[0]]["status"]
    overridden = review.import_decisions(changed, allow_override=True)

    assert refused.applied == 0
    assert len(refused.errors) == 1
    assert refused.errors[0][:2] == (2, str(ids[0]))
    assert refused.errors[0][2].startswith("already decided: verified at 2025-03-04T10:12:00+00:00")
    assert status_after_refusal == "verified"
    assert overridden.applied == 1
    assert overridden.errors == []
    stored = queue_rows(dsn)[ids[0]]
    assert stored["status"] == "rejected"
    assert stored["reason"] == "competitor"
    assert stored["import_batch"] == "second.csv"


def test_import_rejects_file_without_decision_column(queue, tmp_path):
    path = tmp_path / "wrong.csv"
    path.write_text("id,choice\n1,verify\n", encoding="utf-8")

    with pytest.raises(review.ReviewFileError, match="no lead_id or decision column"):
        review.import_decisions(path)


def test_cli_exit_codes(queue, tmp_path, capsys):
    dsn, ids = queue
    out = tmp_path / "queue.json"
    good = tmp_path / "good.json"
    bad = tmp_path / "bad.json"
    good.write_text(json.dumps([decision(ids[0], "verify")]), encoding="utf-8")
    bad.write_text(json.dumps([decision(ids[1], "maybe")]), encoding="utf-8")

    export_code = review.main(["export", "--out", str(out), "--account", "globex"])
    good_code = review.main(["import", str(good), "--batch", "cli"])
    bad_code = review.main(["import", str(bad)])

    output = capsys.readouterr()
    assert export_code == 0
    assert [row["lead_id"] for row in json.loads(out.read_text(encoding="utf-8"))] == [ids[2]]
    assert good_code == 0
    assert bad_code == 1
    assert "applied 1, unchanged 0, without decision 0, failed 0" in output.out
    assert f"row 1 (lead_id {ids[1]}): invalid decision 'maybe'" in output.err
    assert queue_rows(dsn)[ids[0]]["import_batch"] == "cli"


def sim_specs(count: int) -> list[dict]:
    """Leads with names, companies and flags that give the simulator something to decide and fix."""
    specs = []
    for i in range(count):
        overrides = {"converted_at": T0 + timedelta(minutes=i), "queued_at": T0 + timedelta(minutes=i + 4)}
        if i % 7 == 0:
            overrides |= {"first_name": "lena", "last_name": "", "company": "CTS"}
            overrides |= {"enrichment": ("Contoso Trading Systems", "CTO", "Software")}
        if i % 11 == 0:
            overrides["is_test"] = True
        if i % 13 == 0:
            overrides["is_spam"] = True
        specs.append(lead_spec("acme", f"lena.{i}.berg@contoso.example", **overrides))
    return specs


def test_simulate_is_deterministic_and_imports_cleanly(clean_warehouse, tmp_path):
    ids = seed(clean_warehouse, sim_specs(60))
    export = tmp_path / "queue.csv"
    review.export_queue(export)
    reversed_export = tmp_path / "reversed.json"
    rows = [row for _, row in review.read_rows(export)]
    review.write_rows(reversed_export, reversed(rows), review.EXPORT_COLUMNS, "json")

    counts = review_sim.simulate(export, tmp_path / "a.csv", seed=7)
    review_sim.simulate(export, tmp_path / "b.csv", seed=7)
    review_sim.simulate(reversed_export, tmp_path / "reversed_out.json", seed=7)
    report = review.import_decisions(tmp_path / "a.csv")

    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    by_lead = {row["lead_id"]: row for _, row in review.read_rows(tmp_path / "a.csv")}
    by_lead_reversed = {str(row["lead_id"]): row for _, row in review.read_rows(tmp_path / "reversed_out.json")}
    for lead_id, row in by_lead.items():
        for name in review.DECISION_COLUMNS:
            assert (row[name] or "") == (by_lead_reversed[lead_id][name] or ""), (lead_id, name)
    assert sum(counts.values()) == 60
    assert report.errors == []
    assert report.applied == counts["verify"] + counts["correct"] + counts["reject"]
    assert report.skipped == counts["undecided"]
    stored = queue_rows(clean_warehouse)
    flagged = [ids[i] for i in range(60) if i % 11 == 0 or i % 13 == 0]
    assert {stored[lead_id]["status"] for lead_id in flagged} == {"rejected"}
    assert stored[ids[11]]["reason"] == "platform test lead"
    assert stored[ids[13]]["reason"] == "suspected spam"


def test_simulate_corrections_are_realistic():
    row = {
        "lead_id": "5",
        "email": "lena.berg@contoso.example",
        "first_name": "lena",
        "last_name": "",
        "company": "CTS",
        "enriched_company": "Contoso Trading Systems",
    }

    corrections = review_sim.propose_corrections(row)

    assert corrections == {
        "corrected_first_name": "Lena",
        "corrected_last_name": "Berg",
        "corrected_company": "Contoso Trading Systems",
    }
    assert review_sim.title_case_name("o'brien-smith") == "O'Brien-Smith"
    assert review_sim.propose_corrections({"first_name": "Lena", "last_name": "Berg", "company": "Contoso"}) == {}


def test_simulate_shares_and_timing(tmp_path):
    export = tmp_path / "synthetic.json"
    rows = [
        {
            "lead_id": lead_id,
            "converted_at": "2025-03-04T10:00:00+00:00",
            "queued_at": "2025-03-04T10:02:00+00:00",
            "email": "lena.berg@contoso.example",
            "first_name": "lena",
            "last_name": "berg",
            "is_test": False,
            "is_spam": False,
        }
        for lead_id in range(1, 4001)
    ]
    export.write_text(json.dumps(rows), encoding="utf-8")

    counts = review_sim.simulate(export, tmp_path / "out.json", seed=11)

    decided = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert 0.77 <= counts["verify"] / 4000 <= 0.83
    assert 0.10 <= counts["correct"] / 4000 <= 0.14
    assert 0.045 <= counts["reject"] / 4000 <= 0.075
    assert 0.01 <= counts["undecided"] / 4000 <= 0.03
    converted = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
    delays = [datetime.fromisoformat(row["decided_at"]) - converted for row in decided if row["decision"]]
    late = [delay for delay in delays if delay >= timedelta(hours=20)]
    prompt = [delay for delay in delays if delay < timedelta(hours=20)]
    assert all(timedelta(hours=20) <= delay < timedelta(hours=23) for delay in late)
    assert all(timedelta(minutes=5) <= delay < timedelta(minutes=14) for delay in prompt)
    assert 0.02 <= len(late) / len(delays) <= 0.04
    assert {row["reviewer"] for row in decided if row["decision"]} == set(review_sim.REVIEWERS)
    rejected_reasons = {row["reason"] for row in decided if row["decision"] == "reject"}
    assert rejected_reasons == set(review_sim.REJECT_REASONS)
