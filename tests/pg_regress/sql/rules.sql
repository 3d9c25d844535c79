-- The rule type: parsing, canonical text, JSON, checking against the
-- tenant's fields, explain and preview, as an application role.
\set SHOW_CONTEXT never
CREATE ROLE rules_app LOGIN IN ROLE audience_user;
SELECT audience.create_tenant('rules_test', 'rules_app') IS NOT NULL AS created;
SET ROLE rules_app;

-- Every example of the language, in canonical form.
SELECT r::audience.rule AS canonical FROM (VALUES
    ('country = ''US'' and reachability >= 70'),
    ('status IN (''active'') AND (lead_status = ''hot'' OR score > 50)'),
    ('tag ''VIP'' and not tag ''Invalid_Phone'''),
    ('source = ''facebook'' and created_at within 30 days'),
    ('industry = ''Technology'' and custom.budget > 500000.00 and city = ''Toronto'''),
    ('phone_type = ''mobile'' and assigned_to = ''agent-7'''),
    ('email ends with ''@example.com'' and company contains ''acme'''),
    ('last_activity_at before 90 days ago'),
    ('opened within 30 days'),
    ('clicked at least 3 times within 90 days'),
    ('visited ''/pricing'' within 7 days'),
    ('not opened last campaign'),
    ('in segment ''Hot leads in Ontario'' and not in segment ''Suppressed'''),
    ('EVERYONE')) AS examples(r);

-- Invalid text fails at cast time with the position and what was expected.
SELECT 'country = '::audience.rule;
\echo :SQLSTATE
SELECT 'country = ''US'' and and'::audience.rule;
SELECT 'score > ''high'''::audience.rule;
\echo :SQLSTATE
SELECT ('not ' || repeat('(', 5000) || 'everyone' || repeat(')', 5000))::audience.rule;
\echo :SQLSTATE

-- JSON round trip.
SELECT audience.rule_to_json('country = ''US'' and not tag ''VIP'' or clicked at least 3 times within 30 days');
SELECT audience.rule_from_json('{"and": [{"field": "custom.budget", "op": ">", "value": 500000}, {"segment": "VIP"}, {"event": "visited", "url": "/pricing", "within": "7 days"}]}');
SELECT audience.rule_from_json('{"field": "score", "op": "~", "value": 1}');
SELECT audience.rule_from_json(audience.rule_to_json(r))::text = r::text AS round_trips
  FROM (VALUES ('score between 1 and 5 or city is null'::audience.rule)) v(r);

-- Use needs a tenant: fields and segments are the tenant's.
SELECT audience.preview('everyone');
SET audience.tenant = 'rules_test';
SELECT audience.define_field('industry', 'text');
SELECT audience.define_field('budget', 'number');
INSERT INTO audience.contacts (email, country, city, lead_status, reachability, tags, attributes) VALUES
    ('a@example.com', 'US', 'Toronto', 'hot', 80, '{VIP}', '{"industry": "Technology", "budget": 900000}'),
    ('b@example.com', 'us', 'toronto', 'new', 60, '{vip,Invalid_Phone}', '{"industry": "technology", "budget": 100}'),
    ('c@acme.com', 'CA', NULL, 'cold', 90, '{}', '{}'),
    ('d@example.com', 'DE', 'Berlin', 'hot', NULL, '{Buyer}', '{"industry": "SaaS"}');
SELECT r, audience.preview(r::audience.rule) FROM (VALUES
    ('everyone'),
    ('country = ''us'' and reachability >= 70'),
    ('tag ''vip'' and not tag ''invalid_phone'''),
    ('industry = ''TECHNOLOGY'' and custom.budget > 500000 and city = ''toronto'''),
    ('not city = ''Toronto'''),
    ('city != ''Toronto'''),
    ('email ends with ''@example.com'' and not lead_status in (''new'')'),
    ('company contains ''%'' or email starts with ''c@'''),
    ('reachability is null or custom.budget between 50 and 150'),
    ('created_at within 1 hours and created_at before 1 days ago')) AS rules(r);

-- Checks that need the tenant happen at use.
SELECT audience.preview('shoe_size = 42');
\echo :SQLSTATE
SELECT audience.preview('custom.budget > ''lots''');
\echo :SQLSTATE
SELECT audience.preview('industry within 3 days');
SELECT audience.preview('in segment ''Nope''');
\echo :SQLSTATE

-- Values are bound, never pasted into the SQL.
SELECT audience.explain('country = ''US'' and city = ''x''''; DROP TABLE audience.contacts; --'' and tag ''VIP''') ~ '\$1 = ''[0-9a-f-]+'' \(the current tenant\)' AS names_tenant;
SELECT regexp_replace(audience.explain('city = ''x''''; DROP TABLE audience.contacts; --'''), '\$1 = ''[0-9a-f-]+''', '$1 = <tenant>');
SELECT audience.preview('city = ''x''''; DROP TABLE audience.contacts; --''');
SELECT count(*) AS contacts_still_there FROM audience.contacts;
RESET ROLE;
