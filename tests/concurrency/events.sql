-- A multi-row insert of 20 events for contacts spread over the tenant.
\set start random(1, 380)
INSERT INTO audience.events (contact_id, kind, url)
SELECT id, 'visited', '/pricing' FROM audience.contacts
 WHERE email IN (SELECT 'c' || i || '@example.com' FROM generate_series(:start, :start + 19) i);
