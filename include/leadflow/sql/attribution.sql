-- Attribution of one account's converted leads to CRM opportunities.
-- Called after the account's rows were deleted, in the same transaction.
-- Triggered: matched through the opportunity's contacts (contact roles, or a
-- converted CRM lead's own opportunity), converted before the opportunity was
-- created and at most triggered_days before it.
-- Influenced: matched by contact or by the business-email domain of a CRM
-- account (never a free-mail domain), converted before the opportunity closed
-- (or before now while it is open) and at most influenced_days before it was
-- created. A triggered opportunity is always influenced too.
WITH eligible AS (
    SELECT
        l.lead_id,
        l.converted_at,
        p.email_key,
        lower(split_part(coalesce(l.business_email, l.email), '@', 2)) AS domain
    FROM leadflow.leads AS l
    INNER JOIN leadflow.people AS p ON l.person_id = p.person_id
    INNER JOIN leadflow.review_queue AS r ON l.lead_id = r.lead_id
    WHERE
        l.account_id = %(account)s
        AND r.status <> 'rejected'
        AND (NOT l.is_test OR %(include_tests)s)
        AND (NOT l.is_spam OR %(include_spam)s)
),

lead_contacts AS (
    SELECT e.lead_id, c.crm_contact_id
    FROM eligible AS e
    INNER JOIN leadflow.crm_contacts AS c
        ON c.account_id = %(account)s AND e.email_key = c.email_key
    UNION
    SELECT e.lead_id, cl.crm_contact_id
    FROM eligible AS e
    INNER JOIN leadflow.crm_converted_leads AS cl
        ON cl.account_id = %(account)s AND e.email_key = cl.email_key
    WHERE cl.crm_contact_id IS NOT NULL
),

contact_opportunities AS (
    SELECT lc.lead_id, cr.opportunity_id
    FROM lead_contacts AS lc
    INNER JOIN leadflow.crm_contact_roles AS cr
        ON cr.account_id = %(account)s AND lc.crm_contact_id = cr.crm_contact_id
    UNION
    SELECT e.lead_id, cl.opportunity_id
    FROM eligible AS e
    INNER JOIN leadflow.crm_converted_leads AS cl
        ON cl.account_id = %(account)s AND e.email_key = cl.email_key
    WHERE cl.opportunity_id IS NOT NULL
),

account_opportunities AS (
    SELECT e.lead_id, o.opportunity_id
    FROM eligible AS e
    INNER JOIN leadflow.crm_accounts AS a
        ON a.account_id = %(account)s AND e.domain = a.website_domain
    INNER JOIN leadflow.crm_opportunities AS o
        ON o.account_id = %(account)s AND a.crm_account_id = o.crm_account_id
    WHERE e.domain <> ALL(%(free_mail)s)
),

matches AS (
    SELECT lead_id, opportunity_id, bool_or(by_contact) AS by_contact
    FROM (
        SELECT lead_id, opportunity_id, true AS by_contact FROM contact_opportunities
        UNION ALL
        SELECT lead_id, opportunity_id, false AS by_contact FROM account_opportunities
    ) AS m
    GROUP BY lead_id, opportunity_id
),

scored AS (
    SELECT
        m.lead_id,
        m.opportunity_id,
        m.by_contact,
        e.converted_at,
        o.created_at,
        floor(extract(EPOCH FROM o.created_at - e.converted_at) / 86400)::integer AS days_before,
        m.by_contact
        AND e.converted_at < o.created_at
        AND o.created_at - e.converted_at <= make_interval(days => %(triggered_days)s) AS is_triggered,
        e.converted_at < CASE
            WHEN o.is_closed THEN (o.close_date + 1)::timestamp AT TIME ZONE 'UTC'
            ELSE %(now)s
        END
        AND e.converted_at >= o.created_at - make_interval(days => %(influenced_days)s) AS is_influenced
    FROM matches AS m
    INNER JOIN eligible AS e ON m.lead_id = e.lead_id
    INNER JOIN leadflow.crm_opportunities AS o
        ON o.account_id = %(account)s AND m.opportunity_id = o.opportunity_id
)

INSERT INTO leadflow.attribution (
    account_id, lead_id, opportunity_id, kind, matched_by, days_before, rule_version, computed_at, run_id
)
SELECT
    %(account)s,
    lead_id,
    opportunity_id,
    'triggered',
    'contact',
    days_before,
    %(rule_version)s,
    %(now)s,
    %(run)s
FROM scored
WHERE is_triggered
UNION ALL
SELECT
    %(account)s,
    lead_id,
    opportunity_id,
    'influenced',
    CASE WHEN by_contact THEN 'contact' ELSE 'account' END,
    days_before,
    %(rule_version)s,
    %(now)s,
    %(run)s
FROM scored
WHERE is_triggered OR is_influenced
