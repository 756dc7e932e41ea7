-- Core warehouse schema of the lead flow. Every table lives in schema
-- "leadflow"; business keys are natural ids from the vendors or accounts, so
-- reruns upsert instead of appending.

CREATE SCHEMA IF NOT EXISTS leadflow;

-- Client accounts and their settings. settings contains the per-account switches
-- (push_before_verification, include_test_leads, include_spam_leads,
-- review_deadline_policy, custom_pull_fields, attribution windows).
CREATE TABLE leadflow.accounts (
    account_id text PRIMARY KEY CHECK (account_id ~ '^[a-z0-9_]+$'),
    name text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    timezone text NOT NULL DEFAULT 'UTC',
    settings jsonb NOT NULL DEFAULT '{}'::jsonb,
    map_type text CHECK (map_type IN ('marketo', 'hubspot', 'pardot')),
    map_conn_id text,
    map_config jsonb NOT NULL DEFAULT '{}'::jsonb,
    crm_type text CHECK (crm_type IN ('salesforce', 'hubspot')),
    crm_conn_id text,
    -- Bumped whenever the attribution settings change, and stored on every
    -- attribution row computed under them.
    attribution_rule_version integer NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Connected lead sources per account. config contains the source's own ids
-- (sponsored account, page and form ids, site key and allowed origins).
CREATE TABLE leadflow.account_sources (
    account_id text NOT NULL REFERENCES leadflow.accounts (account_id),
    source text NOT NULL CHECK (source IN ('linkedin', 'meta', 'pixel')),
    conn_id text,
    config jsonb NOT NULL DEFAULT '{}'::jsonb,
    active boolean NOT NULL DEFAULT true,
    PRIMARY KEY (account_id, source)
);

-- One row per landing-page site key; the pixel collector authenticates with it.
CREATE TABLE leadflow.pixel_sites (
    site_key text PRIMARY KEY,
    account_id text NOT NULL REFERENCES leadflow.accounts (account_id),
    allowed_origins text[] NOT NULL DEFAULT '{}',
    active boolean NOT NULL DEFAULT true
);

-- Landing-page submissions exactly as the collector accepted them. The
-- collector returns success only after this insert commits.
CREATE TABLE leadflow.pixel_submissions (
    submission_id uuid PRIMARY KEY,
    site_key text NOT NULL REFERENCES leadflow.pixel_sites (site_key),
    account_id text NOT NULL REFERENCES leadflow.accounts (account_id),
    received_at timestamptz NOT NULL,
    origin text,
    payload jsonb NOT NULL
);
CREATE INDEX pixel_submissions_received ON leadflow.pixel_submissions (account_id, received_at);

-- Raw payloads as each source returned them, keyed by the source's own lead id.
-- available_at is when the platform made the lead available (submitted time
-- for forms, collector receipt for the pixel).
CREATE TABLE leadflow.raw_leads (
    account_id text NOT NULL REFERENCES leadflow.accounts (account_id),
    source text NOT NULL,
    source_lead_id text NOT NULL,
    payload jsonb NOT NULL,
    available_at timestamptz NOT NULL,
    landed_at timestamptz NOT NULL,
    landed_run_id text NOT NULL,
    PRIMARY KEY (account_id, source, source_lead_id)
);

-- Records that failed validation, with a reason a person can read. A later
-- fix of the payload or of the rules clears resolved_at by reprocessing.
CREATE TABLE leadflow.quarantine (
    account_id text NOT NULL,
    source text NOT NULL,
    source_lead_id text NOT NULL,
    reason_code text NOT NULL,
    reason text NOT NULL,
    payload jsonb NOT NULL,
    quarantined_at timestamptz NOT NULL,
    run_id text NOT NULL,
    PRIMARY KEY (account_id, source, source_lead_id)
);

-- One person per account and normalised email (trimmed, lower-case).
CREATE TABLE leadflow.people (
    person_id bigserial PRIMARY KEY,
    account_id text NOT NULL REFERENCES leadflow.accounts (account_id),
    email_key text NOT NULL,
    created_at timestamptz NOT NULL,
    UNIQUE (account_id, email_key)
);

-- One row per converted lead (a form submission), normalised.
CREATE TABLE leadflow.leads (
    lead_id bigserial PRIMARY KEY,
    account_id text NOT NULL REFERENCES leadflow.accounts (account_id),
    source text NOT NULL,
    source_lead_id text NOT NULL,
    person_id bigint NOT NULL REFERENCES leadflow.people (person_id),
    form_id text,
    campaign_ref text,
    converted_at timestamptz NOT NULL,
    available_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL,
    ingested_run_id text NOT NULL,
    -- email is the personal address when given, else the business one;
    -- business_email the reverse; optin_email exactly as submitted.
    email text NOT NULL,
    business_email text,
    personal_email text,
    optin_email text NOT NULL,
    first_name text,
    last_name text,
    phone text,
    company text,
    job_title text,
    country text,
    answers jsonb NOT NULL DEFAULT '{}'::jsonb,
    consent boolean,
    is_test boolean NOT NULL DEFAULT false,
    is_spam boolean NOT NULL DEFAULT false,
    spam_reason text,
    UNIQUE (account_id, source, source_lead_id)
);
CREATE INDEX leads_person ON leadflow.leads (person_id);
CREATE INDEX leads_converted ON leadflow.leads (account_id, converted_at);

-- Automated enrichment per person (by email, then by business domain).
CREATE TABLE leadflow.enrichment (
    person_id bigint PRIMARY KEY REFERENCES leadflow.people (person_id),
    account_id text NOT NULL,
    status text NOT NULL CHECK (status IN ('matched', 'company_only', 'no_match', 'pending', 'failed')),
    company text,
    company_domain text,
    job_title text,
    industry text,
    employees integer,
    country text,
    raw jsonb,
    enriched_at timestamptz NOT NULL,
    run_id text NOT NULL
);

-- Human review desk: every new lead gets one row; reviewers export pending
-- rows and import decisions. corrections contains verified field values.
CREATE TABLE leadflow.review_queue (
    lead_id bigint PRIMARY KEY REFERENCES leadflow.leads (lead_id),
    account_id text NOT NULL,
    queued_at timestamptz NOT NULL,
    deadline_at timestamptz NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'verified', 'corrected', 'rejected', 'expired')),
    decided_at timestamptz,
    reviewer text,
    corrections jsonb NOT NULL DEFAULT '{}'::jsonb,
    reason text,
    import_batch text,
    imported_at timestamptz,
    -- What the deadline policy did when the lead passed 24 h undecided.
    deadline_action text
);
CREATE INDEX review_queue_pending ON leadflow.review_queue (account_id, status, deadline_at);

-- The MAP record each person is written to. Every later write goes to this
-- id; a stale id is repaired by a fresh lookup.
CREATE TABLE leadflow.map_records (
    account_id text NOT NULL,
    person_id bigint NOT NULL REFERENCES leadflow.people (person_id),
    map_type text NOT NULL,
    map_record_id text NOT NULL,
    first_pushed_at timestamptz NOT NULL,
    last_pushed_at timestamptz NOT NULL,
    -- Hash of the last field values sent, so an unchanged person is not resent.
    last_pushed_hash text NOT NULL,
    last_pushed_stage text NOT NULL CHECK (last_pushed_stage IN ('unverified', 'verified')),
    PRIMARY KEY (account_id, person_id)
);

-- Every push attempt outcome, per lead and run.
CREATE TABLE leadflow.push_log (
    push_id bigserial PRIMARY KEY,
    account_id text NOT NULL,
    person_id bigint NOT NULL,
    lead_id bigint,
    run_id text NOT NULL,
    action text NOT NULL CHECK (action IN ('created', 'updated', 'skipped', 'failed', 'unchanged')),
    -- Which values were sent: before human verification or after it.
    stage text CHECK (stage IN ('unverified', 'verified')),
    reason text,
    map_record_id text,
    ready_at timestamptz,
    pushed_at timestamptz NOT NULL
);
CREATE INDEX push_log_account ON leadflow.push_log (account_id, pushed_at);
CREATE INDEX push_log_lead ON leadflow.push_log (lead_id, stage, action);

-- Values pulled back from the MAP, one row per person and pull (history kept).
CREATE TABLE leadflow.map_pulls (
    account_id text NOT NULL,
    person_id bigint NOT NULL,
    map_record_id text NOT NULL,
    pulled_at timestamptz NOT NULL,
    run_id text NOT NULL,
    score integer,
    mql_date date,
    custom_fields jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (account_id, person_id, run_id)
);

-- Latest pulled values with first and latest MQL dates.
CREATE TABLE leadflow.map_values (
    account_id text NOT NULL,
    person_id bigint NOT NULL,
    map_record_id text NOT NULL,
    score integer,
    first_mql_date date,
    latest_mql_date date,
    custom_fields jsonb NOT NULL DEFAULT '{}'::jsonb,
    pulled_at timestamptz NOT NULL,
    PRIMARY KEY (account_id, person_id)
);

-- CRM snapshot per account, replaced by each daily pull.
CREATE TABLE leadflow.crm_accounts (
    account_id text NOT NULL,
    crm_account_id text NOT NULL,
    name text,
    website_domain text,
    pulled_at timestamptz NOT NULL,
    PRIMARY KEY (account_id, crm_account_id)
);
CREATE TABLE leadflow.crm_contacts (
    account_id text NOT NULL,
    crm_contact_id text NOT NULL,
    crm_account_id text,
    email_key text,
    created_at timestamptz,
    pulled_at timestamptz NOT NULL,
    PRIMARY KEY (account_id, crm_contact_id)
);
CREATE TABLE leadflow.crm_opportunities (
    account_id text NOT NULL,
    opportunity_id text NOT NULL,
    crm_account_id text,
    name text,
    stage text,
    amount numeric,
    is_closed boolean NOT NULL,
    is_won boolean NOT NULL,
    created_at timestamptz NOT NULL,
    close_date date,
    pulled_at timestamptz NOT NULL,
    PRIMARY KEY (account_id, opportunity_id)
);
CREATE TABLE leadflow.crm_contact_roles (
    account_id text NOT NULL,
    role_id text NOT NULL,
    opportunity_id text NOT NULL,
    crm_contact_id text NOT NULL,
    role text,
    is_primary boolean NOT NULL DEFAULT false,
    pulled_at timestamptz NOT NULL,
    PRIMARY KEY (account_id, role_id)
);
-- Converted CRM leads: followed to their contact and opportunity.
CREATE TABLE leadflow.crm_converted_leads (
    account_id text NOT NULL,
    crm_lead_id text NOT NULL,
    email_key text,
    converted_date date,
    crm_contact_id text,
    crm_account_id text,
    opportunity_id text,
    pulled_at timestamptz NOT NULL,
    PRIMARY KEY (account_id, crm_lead_id)
);

-- Attribution results. An account's rows are replaced as a whole in one
-- transaction, so readers never see a mix of rule versions.
CREATE TABLE leadflow.attribution (
    account_id text NOT NULL,
    lead_id bigint NOT NULL,
    opportunity_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('triggered', 'influenced')),
    matched_by text NOT NULL CHECK (matched_by IN ('contact', 'account')),
    days_before integer NOT NULL,
    rule_version integer NOT NULL,
    computed_at timestamptz NOT NULL,
    run_id text NOT NULL,
    PRIMARY KEY (account_id, lead_id, opportunity_id, kind)
);

-- Per account, step and run: what each step did, so a downstream step skips
-- an account whose upstream step or check failed.
CREATE TABLE leadflow.step_runs (
    run_id text NOT NULL,
    step text NOT NULL,
    account_id text NOT NULL,
    status text NOT NULL CHECK (status IN ('success', 'failed', 'blocked', 'skipped')),
    rows_in integer NOT NULL DEFAULT 0,
    rows_out integer NOT NULL DEFAULT 0,
    rows_rejected integer NOT NULL DEFAULT 0,
    detail text,
    window_start timestamptz,
    window_end timestamptz,
    -- The run's event clock (see leadflow.runtime); finished_at is wall time.
    event_at timestamptz,
    finished_at timestamptz NOT NULL,
    PRIMARY KEY (run_id, step, account_id)
);

-- Great Expectations results, one row per expectation, account, check and run.
CREATE TABLE leadflow.dq_results (
    run_id text NOT NULL,
    check_name text NOT NULL,
    account_id text NOT NULL,
    expectation text NOT NULL,
    column_name text NOT NULL DEFAULT '',
    success boolean NOT NULL,
    observed jsonb,
    checked_at timestamptz NOT NULL,
    PRIMARY KEY (run_id, check_name, account_id, expectation, column_name)
);

-- Daily service-level report, one row per account, promise and report day.
CREATE TABLE leadflow.service_levels (
    report_date date NOT NULL,
    account_id text NOT NULL,
    promise text NOT NULL,
    target_minutes integer NOT NULL,
    measured integer NOT NULL,
    met integer NOT NULL,
    breached integer NOT NULL,
    p95_minutes numeric,
    max_minutes numeric,
    breached_refs text[] NOT NULL DEFAULT '{}',
    computed_at timestamptz NOT NULL,
    run_id text NOT NULL,
    PRIMARY KEY (report_date, account_id, promise)
);

-- Alerts sent, without personal data.
CREATE TABLE leadflow.alerts (
    alert_id bigserial PRIMARY KEY,
    kind text NOT NULL,
    account_id text,
    dag_id text,
    run_id text,
    task_id text,
    summary text NOT NULL,
    channels text[] NOT NULL,
    sent_at timestamptz NOT NULL
);
