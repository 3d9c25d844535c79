-- Deterministic benchmark audience: :scale contacts in tenant "bench" with
-- skewed countries, six sources, 0-3 of seven tags, two custom fields,
-- created_at over two years, and :events engagement events per contact on
-- average over the last 120 days.
\set ON_ERROR_STOP on
SELECT setseed(0.42);
SELECT audience.create_tenant('bench') IS NOT NULL AS created;
SET audience.tenant = 'bench';
SELECT audience.define_field('industry', 'text'), audience.define_field('budget', 'number');

INSERT INTO audience.contacts (email, first_name, last_name, company, city, country, source, lead_status,
                               assigned_to, reachability, phone_type, tags, attributes, created_at,
                               last_activity_at)
SELECT 'user' || g || '@' || (ARRAY['example.com', 'acme.com', 'mail.org', 'corp.io'])[1 + g % 4],
       (ARRAY['Ann', 'Bob', 'Cy', 'Di', 'Ed', 'Flo'])[1 + g % 6],
       (ARRAY['Lee', 'Ray', 'Shaw', 'Diaz', 'Kim'])[1 + g % 5],
       CASE WHEN g % 7 = 0 THEN 'Acme Corp' WHEN g % 3 = 0 THEN NULL ELSE 'Company ' || g % 1000 END,
       (ARRAY['Toronto', 'Berlin', 'Paris', 'Boston', 'London', 'Madrid'])[1 + (g * 7) % 6],
       (ARRAY['US', 'US', 'US', 'US', 'CA', 'GB', 'GB', 'DE', 'FR', 'ES', 'IT', 'IN', 'BR', 'AU'])[1 + floor(random() * 14)::int],
       (ARRAY['manual', 'csv_import', 'api', 'form', 'website', 'facebook'])[1 + floor(random() * 6)::int],
       (ARRAY['new', 'nurture', 'hot', 'warm', 'cold'])[1 + floor(random() * 5)::int],
       CASE WHEN random() < 0.75 THEN 'agent-' || (1 + floor(random() * 8)::int) END,
       floor(random() * 101)::int,
       (ARRAY['mobile', 'landline', 'unknown'])[1 + floor(random() * 3)::int],
       ARRAY(SELECT t FROM unnest(ARRAY['VIP', 'Buyer', 'Seller', 'Newsletter', 'Referral', 'Invalid_Phone', 'Webinar 2025']) t
              WHERE random() < 0.2 + 0 * g),
       jsonb_build_object('industry', (ARRAY['SaaS', 'Technology', 'Retail', 'Finance', 'Health'])[1 + floor(random() * 5)::int])
         || CASE WHEN random() < 0.7 THEN jsonb_build_object('budget', floor(random() * 1000000)::int) ELSE '{}' END,
       now() - random() * interval '730 days',
       CASE WHEN random() < 0.8 THEN now() - random() * interval '365 days' END
  FROM generate_series(1, :scale) g;

INSERT INTO audience.events (contact_id, kind, campaign, url, occurred_at)
SELECT c.id,
       (ARRAY['sent', 'sent', 'sent', 'opened', 'opened', 'clicked', 'visited', 'replied'])[1 + floor(random() * 8)::int] AS kind,
       (ARRAY['2026-08-news', '2026-09-webinar', '2026-10-sale', '2026-11-black-friday'])[1 + floor(random() * 4)::int],
       (ARRAY[NULL, '/pricing', '/docs', '/blog'])[1 + floor(random() * 4)::int],
       now() - random() * interval '120 days'
  FROM audience.contacts c, generate_series(1, :events) e
 WHERE random() < 0.9;
ANALYZE audience.contacts;
ANALYZE audience.events;
