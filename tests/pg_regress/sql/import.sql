-- CSV import and export as a migrating customer meets them: messy files,
-- every option, every kind of bad input, the report, and a round trip.
\set SHOW_CONTEXT never
CREATE ROLE import_app LOGIN IN ROLE audience_user;
SELECT audience.create_tenant('import_test', 'import_app') IS NOT NULL AS created;
SELECT audience.create_tenant('import_copy', 'import_app') IS NOT NULL AS created;
SET ROLE import_app;
SET audience.tenant = 'import_test';
SELECT audience.define_field('budget', 'number');
SELECT audience.define_field('Signed Up', 'date');
SELECT audience.create_segment('Big budgets', 'custom.budget >= 1000') IS NOT NULL AS created;

-- A BOM, CRLF line ends, semicolons, loose headers, a quoted newline, a
-- duplicate, a bad email, a bad number, a tags column and an unknown column.
SELECT (r).rows, (r).inserted, (r).updated, (r).unchanged, (r).rejected, (r).segment LIKE 'Import %' AS auto_list,
       jsonb_pretty((r).errors) AS errors
  FROM (SELECT audience.import_csv(
E'\uFEFFE-Mail;First Name;LAST_NAME;Company;Budget;Signed-Up;Tags;Shoe Size\r\n' ||
E'ann@example.com;Ann;Lee;"Lee;\r\nSons";1200;2025-03-01;VIP, Buyer;42\r\n' ||
E' BOB@Example.com ;Bob;Ray;;lots;;;44\r\n' ||
E'not-an-email;Cy;;;;;;\r\n' ||
E'ann@example.com;Annie;Lee;;1500;;vip;40\r\n') AS r) imported;
SELECT email, first_name, company, tags, attributes FROM audience.contacts ORDER BY email;
SELECT CASE WHEN name LIKE 'Import %' THEN 'Import <timestamp>' ELSE name END AS name, kind, members
  FROM audience.segment_overview WHERE name <> 'Everyone' ORDER BY name;
SELECT rows, inserted, rejected, jsonb_array_length(errors) AS errors FROM audience.imports;

-- Named list (created when missing), tags for every row, a source, and
-- the default on_conflict (update): empty cells never erase.
SELECT (r).rows, (r).inserted, (r).updated, (r).unchanged, (r).segment
  FROM (SELECT audience.import_csv(E'email,city,budget\nann@example.com,Rome,\nnew@example.com,Oslo,5\n',
                                   '{"segment": "Spring fair", "tags": ["Fair 2026"], "source": "Trade Show"}') AS r) imported;
SELECT email, city, source, tags, attributes FROM audience.contacts ORDER BY email;
SELECT email FROM audience.members('Spring fair') ORDER BY email;
-- The same file again changes nothing.
SELECT (r).rows, (r).inserted, (r).updated, (r).unchanged
  FROM (SELECT audience.import_csv(E'email,city,budget\nann@example.com,Rome,\nnew@example.com,Oslo,5\n',
                                   '{"segment": "Spring fair", "tags": ["Fair 2026"], "source": "Trade Show"}') AS r) imported;

-- skip keeps stored contacts; fill only fills empty fields; insert false
-- only updates.
SELECT (r).inserted, (r).updated, (r).unchanged
  FROM (SELECT audience.import_csv(E'email,city\nann@example.com,Paris\n', '{"on_conflict": "skip", "segment": "Spring fair"}') AS r) imported;
SELECT (r).inserted, (r).updated, (r).unchanged
  FROM (SELECT audience.import_csv(E'email,city,company\nann@example.com,Paris,Acme\n', '{"on_conflict": "fill", "segment": "Spring fair"}') AS r) imported;
SELECT email, city, company FROM audience.contacts WHERE email = 'ann@example.com';
SELECT (r).inserted, (r).updated, (r).rejected, (r).errors
  FROM (SELECT audience.import_csv(E'email,job_title\nann@example.com,CEO\nstranger@example.com,CTO\n',
                                   '{"insert": false, "segment": "Spring fair"}') AS r) imported;
SELECT count(*) AS strangers FROM audience.contacts WHERE email = 'stranger@example.com';

-- mapping, and create_fields for columns no field matches.
SELECT (r).inserted, (r).errors
  FROM (SELECT audience.import_csv(E'E-mail Address,Town,Fav Colour,Ignore Me\nmap@example.com,Lima,teal,x\n',
        '{"mapping": {"E-mail Address": "email", "Town": "city", "Ignore Me": null}, "create_fields": true, "segment": "Mapped"}') AS r) imported;
SELECT email, city, attributes FROM audience.contacts WHERE email = 'map@example.com';
SELECT name, type FROM audience.fields ORDER BY name;

-- Encodings: Latin-1 bytes decode when asked; otherwise the row is reported.
SELECT (r).inserted FROM (SELECT audience.import_csv(convert_to(E'email,city\nzoe@example.com,Z\u00fcrich\n', 'LATIN1'),
                                                     '{"encoding": "latin1", "segment": "Latin"}') AS r) imported;
SELECT (r).rejected, (r).errors FROM (SELECT audience.import_csv(convert_to(E'email,city\nzed@example.com,Z\u00fcrich\n', 'LATIN1'),
                                                     '{"segment": "Latin"}') AS r) imported;
SELECT email, city FROM audience.contacts WHERE email LIKE 'z%' ORDER BY email;

-- A quote that never closes fails the file with its line; an empty file
-- gives an empty report.
SELECT (r).inserted, (r).rejected, (r).errors
  FROM (SELECT audience.import_csv(E'email,city\nq1@example.com,"Rome\nq2@example.com,Oslo\n', '{"segment": "Quotes"}') AS r) imported;
SELECT (r).rows, (r).inserted, (r).rejected, (r).segment, (r).errors FROM (SELECT audience.import_csv('') AS r) imported;

-- Bad files and options are errors, and nothing is written.
SELECT audience.import_csv(E'name,city\nAnn,Rome\n');
\echo :SQLSTATE
SELECT audience.import_csv(E'email\nx@example.com\n', '{"delimeter": ";"}');
\echo :SQLSTATE
SELECT audience.import_csv(E'email\nx@example.com\n', '{"on_conflict": "merge"}');
\echo :SQLSTATE
SELECT audience.import_csv(E'email\nx@example.com\n', '{"encoding": "latin1"}');
\echo :SQLSTATE
SELECT audience.import_csv(E'email\nx@example.com\n', '{"segment": "Big budgets"}');
\echo :SQLSTATE
SELECT audience.import_csv(E'email,town\nx@example.com,Rome\n', '{"mapping": {"town": "custom.town"}}');
\echo :SQLSTATE
SELECT count(*) AS not_imported FROM audience.contacts WHERE email = 'x@example.com';

-- Imported contacts entered dynamic segments through the usual triggers.
SELECT email FROM audience.members('Big budgets') ORDER BY email;
SELECT count(*) AS running_imports FROM audience.import_progress;

-- Export writes what import reads: a round trip into another tenant.
SELECT audience.export_csv('Spring fair', ARRAY['email', 'first_name', 'last_name', 'company', 'job_title', 'city', 'status', 'source']);
SELECT audience.export_csv('Spring fair', ARRAY['email', 'tags', 'budget']);
SELECT audience.export_csv('Spring fair', ARRAY['email', 'password']);
\echo :SQLSTATE
SELECT audience.export_csv('Everyone') AS everyone \gset
SET audience.tenant = 'import_copy';
SELECT audience.define_field('budget', 'number');
SELECT audience.define_field('Signed Up', 'date');
SELECT audience.define_field('fav_colour', 'text');
SELECT (r).rows, (r).inserted, (r).rejected FROM (SELECT audience.import_csv(:'everyone', '{"source": "csv_import"}') AS r) imported;
SELECT audience.export_csv('Everyone') = :'everyone' AS same_export;
RESET ROLE;

-- The shipped sample audience, as the demo loads it.
SET audience.tenant = 'import_copy';
SELECT audience.define_field('Industry', 'text');
SELECT (r).rows, (r).inserted + (r).updated AS imported, (r).rejected
  FROM (SELECT audience.import_csv(pg_read_binary_file(current_setting('data_directory') || '/../sample_audience.csv')) AS r) imported;
SELECT e->>'column' AS column, e->>'message' AS message, count(*)
  FROM audience.imports i, jsonb_array_elements(i.errors) e
 WHERE i.rows > 1000 GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 10;
