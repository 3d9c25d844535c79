-- The demo: a tenant, the sample audience, a first look at it, and segments.
\pset footer off
CREATE EXTENSION audience;
SELECT audience.create_tenant('acme') IS NOT NULL AS "created tenant acme";
SELECT audience.use_tenant('acme') IS NOT NULL AS "using tenant acme";
-- Applications log in as a role granted audience_user; this one lands in acme.
CREATE ROLE app LOGIN IN ROLE audience_user;
ALTER ROLE app SET audience.tenant = 'acme';

SELECT audience.define_field('Industry', 'text') AS industry,
       audience.define_field('Budget', 'number') AS budget,
       audience.define_field('Signed Up', 'date') AS signed_up;

CREATE TEMP TABLE sample (
    email text, first_name text, last_name text, company text, job_title text, phone text,
    country text, city text, source text, lead_status text, assigned_to text, tags text,
    industry text, budget text, signed_up text);
\set sample :datadir '/sample_audience.csv'
COPY sample FROM :'sample' WITH (FORMAT csv, HEADER true);

-- One upsert per row, so a bad row is reported and the rest still load.
DO $load$
DECLARE
    r sample;
    loaded int := 0;
BEGIN
    FOR r IN SELECT * FROM sample LOOP
        BEGIN
            PERFORM audience.upsert_contact(jsonb_strip_nulls(jsonb_build_object(
                'email', r.email, 'first_name', r.first_name, 'last_name', r.last_name,
                'company', r.company, 'job_title', r.job_title, 'phone', r.phone,
                'country', r.country, 'city', r.city, 'source', r.source,
                'lead_status', r.lead_status, 'assigned_to', r.assigned_to,
                'tags', to_jsonb(regexp_split_to_array(coalesce(r.tags, ''), '[;,]')),
                'industry', r.industry, 'budget', r.budget, 'signed_up', r.signed_up)));
            loaded := loaded + 1;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'rejected %: %', r.email, SQLERRM;
        END;
    END LOOP;
    RAISE NOTICE 'loaded % of % rows', loaded, (SELECT count(*) FROM sample);
END
$load$;

\echo
\echo Tenants
SELECT name, created_at::date FROM audience.tenants;
\echo Contacts by country
SELECT country, count(*) AS contacts FROM audience.contacts GROUP BY country ORDER BY 2 DESC LIMIT 10;
\echo A few contacts, normalised
SELECT email, first_name, last_name, phone, phone_type, country, tags, attributes
  FROM audience.contacts ORDER BY email LIMIT 5;
\echo Tags
SELECT * FROM audience.tag_summary;
\echo Custom fields
SELECT name, type, label FROM audience.fields ORDER BY name;
\echo 'Search: industry:SaaS country:CA tag:VIP'
SELECT email, company, city FROM audience.search('industry:SaaS country:CA tag:VIP') LIMIT 5;

\echo Segments: membership is computed once and kept in step by triggers
SELECT audience.create_segment('Hot leads in Canada', 'country = ''CA'' and lead_status = ''hot''') IS NOT NULL AS "Hot leads in Canada",
       audience.create_segment('Reachable VIPs', 'tag ''VIP'' and not tag ''Invalid_Phone''') IS NOT NULL AS "Reachable VIPs",
       audience.create_segment('Big SaaS budgets', 'industry = ''SaaS'' and custom.budget > 1000000') IS NOT NULL AS "Big SaaS budgets",
       audience.create_segment('Signed up this year', 'signed_up >= ''2026-01-01''') IS NOT NULL AS "Signed up this year",
       audience.create_list('Webinar guests') IS NOT NULL AS "Webinar guests";
SELECT audience.add_to_list('Webinar guests', ARRAY(SELECT id FROM audience.search('tag:"Webinar 2025" country:DE'))) AS "added to Webinar guests";
SELECT audience.preview('in segment ''Reachable VIPs'' and in segment ''Hot leads in Canada''') AS "preview: reachable VIPs among hot Canadian leads";
\echo A hot Canadian lead goes cold: the segment follows in the same statement
SELECT audience.count('Hot leads in Canada') AS "Hot leads in Canada before";
UPDATE audience.contacts SET lead_status = 'cold'
 WHERE id = (SELECT id FROM audience.members('Hot leads in Canada') ORDER BY email LIMIT 1);
SELECT name, kind, members, rule FROM audience.segment_overview;
