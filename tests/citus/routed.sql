-- Single-tenant work as the application (role app, bound to acme): every
-- command Citus sends, from the coordinator or from a worker's triggers,
-- goes to the worker that holds acme (run.sh has the role log them all).
-- Statements of the application's own name the tenant by its id: Citus
-- routes by values it sees when planning.
SELECT audience.current_tenant() AS tenant \gset
SELECT audience.upsert_contact('{"email": "routed@example.com", "country": "Germany", "industry": "SaaS"}') IS NOT NULL AS upserted;
SELECT audience.track('routed@example.com', 'visited', url => 'https://example.com/pricing') AS tracked;
UPDATE audience.contacts SET lead_status = 'hot' WHERE tenant_id = :'tenant' AND email = 'routed@example.com';
SELECT count(*) AS found FROM audience.search('routed@example.com');
SELECT audience.add_to_list('Webinar guests', ARRAY(SELECT id FROM audience.search('routed@example.com'))) AS listed;
SELECT count(*) AS members FROM audience.members('Webinar guests');
SELECT inserted FROM audience.import_csv(convert_to(E'email,country\nrouted.import@example.com,FR\n', 'UTF8'));
-- (A query segment's refresh runs the SQL its author wrote, routed or not.)
SELECT audience.refresh('Pricing visitors') AS refreshed;
SELECT audience.recompute_scores() AS recomputed;
DELETE FROM audience.contacts WHERE tenant_id = :'tenant' AND email LIKE 'routed%';
