-- Published segment views for BI tools: typed profile and custom field
-- columns, every column commented, Row Level Security through
-- security_invoker; they survive renames and rule edits, gain new custom
-- fields, and go with their segment.
\set SHOW_CONTEXT never
CREATE ROLE publishing_app LOGIN IN ROLE audience_user;
CREATE ROLE publishing_bi LOGIN IN ROLE audience_reader;
SELECT audience.create_tenant('publishing', 'publishing_app') IS NOT NULL AS created,
       audience.create_tenant('publishing_other', 'publishing_app') IS NOT NULL AS other;
SELECT audience.grant_tenant('publishing_bi', 'publishing');
SET ROLE publishing_app;
SET audience.tenant = 'publishing';
SELECT audience.define_field('budget', 'number'), audience.define_field('signed_up', 'date'),
       audience.define_field('tier', 'text', 'Customer tier');
INSERT INTO audience.contacts (email, country, tags, attributes) VALUES
    ('de@pub.test', 'DE', '{VIP}', '{"budget": 1500.5, "signed_up": "2026-01-02", "tier": "gold"}'),
    ('us@pub.test', 'US', '{}', '{"budget": 20}');
SELECT audience.create_segment('Germans', 'country = ''DE''') IS NOT NULL AS segment;
SELECT audience.publish_segment('Germans');
SELECT segment, view_name, qualified_name, published_at > now() - interval '1 hour' AS just_now FROM audience.published_views;
SELECT email, country, tags, budget, signed_up, custom_tier, tier FROM audience_views.germans;
SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, col_description(a.attrelid, a.attnum) AS comment
  FROM pg_attribute a WHERE a.attrelid = 'audience_views.germans'::regclass AND a.attnum > 0 ORDER BY a.attnum;
SELECT obj_description('audience_views.germans'::regclass, 'pg_class') AS view_comment;
-- Renames and rule edits leave the view valid; a new custom field becomes
-- a column.
SELECT audience.update_segment('Germans', new_name => 'Americans', rule => 'country = ''US''') IS NOT NULL AS edited;
SELECT audience.define_field('newsletter', 'boolean');
SELECT email, budget, newsletter FROM audience_views.germans;
-- A custom field named like the prefixed column of another gains a prefix
-- of its own.
SELECT audience.define_field('custom_tier', 'text');
SELECT email, custom_tier, custom_custom_tier FROM audience_views.germans;
SELECT segment, view_name FROM audience.published_views;
-- Names: given ones are quoted, never run; taken, unknown and repeated
-- ones are refused.
SELECT audience.create_segment('Everyone else', 'not country = ''US''') IS NOT NULL AS segment;
SELECT audience.publish_segment('Everyone else', 'x"; DROP TABLE audience.contacts; --');
SELECT audience.publish_segment('Everyone', 'public.all contacts');
SELECT view_name, qualified_name FROM audience.published_views ORDER BY view_name;
SELECT count(*) AS contacts_still_there FROM audience.contacts;
SELECT audience.publish_segment('Americans', 'another');
\echo :SQLSTATE
SELECT audience.unpublish_segment('Americans');
SELECT audience.publish_segment('Americans', 'public.all contacts');
\echo :SQLSTATE
SELECT audience.publish_segment('Nope');
\echo :SQLSTATE
SELECT audience.publish_segment('Americans', repeat('v', 64));
\echo :SQLSTATE
-- The other tenant sees no row of this one through the views.
SET audience.tenant = 'publishing_other';
SELECT count(*) AS other_tenant_rows FROM "audience_views"."public.all contacts";
RESET ROLE;
-- A BI login bound to the tenant reads the views, and writes nothing.
SET ROLE publishing_bi;
SET audience.tenant = 'publishing';
SELECT count(*) AS bi_rows FROM "audience_views"."public.all contacts";
SELECT audience.publish_segment('Americans');
\echo :SQLSTATE
RESET ROLE;
-- Dropping a segment drops its view.
SET ROLE publishing_app;
SELECT audience.drop_segment('Everyone else');
SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'audience_views'::regnamespace ORDER BY 1;
SELECT audience.unpublish_segment('Everyone'), audience.unpublish_segment('Everyone');
RESET ROLE;
RESET audience.tenant;
