-- Contacts: normalisation on every write path, validation, custom fields,
-- tags, search and GDPR, as an application role.
\set SHOW_CONTEXT never
CREATE ROLE app LOGIN IN ROLE audience_user;
SELECT audience.create_tenant('contacts_test', 'app') IS NOT NULL AS created;
SET ROLE app;
SET audience.tenant = 'contacts_test';

-- Emails are trimmed and lower-cased; phones become E.164 in the contact's
-- country; countries become ISO alpha-2.
INSERT INTO audience.contacts (email, phone, country, source)
VALUES ('  Ann.Smith@Example.COM ', '030 1234567', 'deu', 'Facebook');
SELECT email, phone, phone_type, country, source, status, lead_status, score FROM audience.contacts;
UPDATE audience.contacts SET phone = '07911 123456', country = 'gb';
SELECT phone, phone_type, country FROM audience.contacts;
UPDATE audience.contacts SET phone = 'ask reception';
SELECT phone, phone_type FROM audience.contacts;

-- Invalid input is rejected with a message naming the field and value.
INSERT INTO audience.contacts (email) VALUES ('not-an-email');
\echo :SQLSTATE
INSERT INTO audience.contacts (email, country) VALUES ('x@example.com', 'Narnia');
INSERT INTO audience.contacts (email) VALUES ('ann.smith@example.com');   -- duplicate after normalisation
\echo :SQLSTATE
INSERT INTO audience.contacts (email, status) VALUES ('y@example.com', 'asleep');
SELECT count(*) AS contacts FROM audience.contacts;

-- Custom fields are typed.
SELECT audience.define_field('Industry', 'text');
SELECT audience.define_field('Budget', 'number', 'Budget (USD)');
SELECT audience.define_field('Signed Up', 'date');
SELECT audience.define_field('Newsletter', 'boolean');
SELECT audience.define_field('budget', 'date');      -- same name, other type
SELECT audience.define_field('colour', 'colour');    -- unknown type
\echo :SQLSTATE
SELECT audience.define_field('Email', 'text');       -- a standard field
SELECT name, type, label FROM audience.fields ORDER BY name;
SELECT audience.upsert_contact('{"email": "BOB@example.com", "first_name": "Bob", "Industry": "SaaS", "budget": "1250.5", "signed_up": "2026-07-29", "newsletter": "yes", "tags": ["VIP", "vip", " Buyer "]}') IS NOT NULL AS upserted;
SELECT email, first_name, tags, attributes FROM audience.contacts WHERE email = 'bob@example.com';
SELECT audience.upsert_contact('{"email": "bob@example.com", "budget": "lots"}');
\echo :SQLSTATE
SELECT audience.upsert_contact('{"email": "bob@example.com", "colour": "red"}');
\echo :SQLSTATE
SELECT audience.upsert_contact('{"first_name": "No Email"}');
SELECT audience.upsert_contact('[1, 2]');
SELECT audience.upsert_contact(NULL);
-- Keys naming the same column (matched trimmed and in any case) are refused.
SELECT audience.upsert_contact('{"email": "bob@example.com", " Email": "rob@example.com"}');
\echo :SQLSTATE
UPDATE audience.contacts SET attributes = '{"signed_up": "29/07/2026"}';
-- An update changes only the given keys.
SELECT audience.upsert_contact('{"email": "bob@example.com", "city": "Toronto", "budget": 900000}') IS NOT NULL AS updated;
SELECT email, first_name, city, attributes FROM audience.contacts WHERE email = 'bob@example.com';
SELECT count(*) AS contacts FROM audience.contacts;

-- Tags compare case-insensitively and never repeat.
SELECT audience.tag(id, 'vip', 'Webinar 2025', 'Webinar 2025') FROM audience.contacts WHERE email = 'bob@example.com';
SELECT audience.untag(id, 'BUYER') FROM audience.contacts WHERE email = 'bob@example.com';
SELECT audience.tag(id, 'VIP') FROM audience.contacts WHERE email = 'ann.smith@example.com';
SELECT audience.tag('00000000-0000-0000-0000-000000000000', 'VIP');
SELECT * FROM audience.tag_summary;
SELECT audience.rename_tag('vip', 'Very Important');
SELECT email, tags FROM audience.contacts ORDER BY email;

-- Search: field:value (standard or custom), tag:, free words, quotes.
SELECT email FROM audience.search('industry:saas');
SELECT email FROM audience.search('tag:"very important" city:toronto');
SELECT email FROM audience.search('ann example');
SELECT email FROM audience.search('tag:"Very Important"') ORDER BY email;
SELECT email FROM audience.search('shoe_size:42');
\echo :SQLSTATE
SELECT email FROM audience.search('tag:"Very');

-- GDPR: export everything, then forget.
SELECT jsonb_pretty(audience.export_contact(' BOB@example.com ') #- '{contact,id}' #- '{contact,created_at}' #- '{contact,updated_at}');
SELECT audience.forget_contact('bob@example.com');
SELECT audience.forget_contact('bob@example.com');
SELECT audience.export_contact('bob@example.com');
RESET ROLE;
