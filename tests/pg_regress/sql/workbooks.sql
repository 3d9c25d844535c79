-- Spreadsheets and files on the database server, through the one import
-- pipeline: an application role imports workbook bytes; a superuser (and
-- only one, or a member of pg_read_server_files) imports server files.
-- The workbooks are written by `cargo run -p audience-core --example
-- workbooks` next to the cluster's data directory.
\set SHOW_CONTEXT never
\set VERBOSITY terse
CREATE ROLE sheet_app LOGIN IN ROLE audience_user;
CREATE ROLE file_reader LOGIN IN ROLE audience_user, pg_read_server_files;
SELECT audience.create_tenant('sheets', 'sheet_app') IS NOT NULL AS created;
SELECT audience.grant_tenant('file_reader', 'sheets');
CREATE TEMP TABLE workbook (name text, data bytea);
INSERT INTO workbook
SELECT name, pg_read_binary_file(current_setting('data_directory') || '/../' || name)
  FROM unnest(ARRAY['contacts.xlsx', 'contacts.ods', 'empty.xlsx']) AS name;
GRANT SELECT ON workbook TO sheet_app;

SET ROLE sheet_app;
SET audience.tenant = 'sheets';
SELECT audience.define_field('budget', 'number');
SELECT audience.define_field('signed_up', 'date');
SELECT audience.define_field('vip', 'boolean');
SELECT audience.define_field('revenue', 'text');
SELECT audience.create_segment('VIPs', 'custom.vip = true') IS NOT NULL AS created;

-- The first sheet: number, date and boolean cells into fields of those
-- types, a number into a text field as it is shown (not 99000.50000000001),
-- a phone number with all its digits, a formula's value, a blank row; the
-- header's blank and merged cells are skipped and reported on its line.
SELECT (r).rows, (r).inserted, (r).rejected, (r).segment, jsonb_pretty((r).errors) AS errors
  FROM (SELECT audience.import_xlsx(data, '{"segment": "From Excel"}') AS r FROM workbook WHERE name = 'contacts.xlsx') imported;
SELECT email, first_name, phone, company, source, attributes FROM audience.contacts ORDER BY email;
SELECT email FROM audience.members('VIPs') ORDER BY email;
SELECT email FROM audience.members('From Excel') ORDER BY email;
SELECT rows, inserted, rejected, segment, options FROM audience.imports ORDER BY imported_at;

-- Another sheet by name; the same workbook again changes nothing.
SELECT (r).rows, (r).inserted, (r).updated, (r).unchanged
  FROM (SELECT audience.import_xlsx(data, '{"sheet": "Leads", "tags": ["Lead"], "on_conflict": "skip"}') AS r
          FROM workbook WHERE name = 'contacts.xlsx') imported;
SELECT email, city, tags FROM audience.contacts WHERE email = 'eve@example.com';
SELECT (r).rows, (r).inserted, (r).updated, (r).unchanged
  FROM (SELECT audience.import_xlsx(data, '{"segment": "From Excel"}') AS r FROM workbook WHERE name = 'contacts.xlsx') imported;

-- OpenDocument, and a sheet without cells: an empty report, no list.
SELECT (r).rows, (r).inserted, (r).rejected FROM (SELECT audience.import_xlsx(data) AS r FROM workbook WHERE name = 'contacts.ods') imported;
SELECT email, attributes FROM audience.contacts WHERE email = 'fay@example.com';
SELECT (r).rows, (r).inserted, (r).segment, (r).errors FROM (SELECT audience.import_xlsx(data) AS r FROM workbook WHERE name = 'empty.xlsx') imported;

-- Bad input: each its own error, nothing written.
SELECT count(*) AS contacts_before FROM audience.contacts;
SELECT count(*) AS imports_before FROM audience.imports;
SELECT audience.import_xlsx(convert_to(E'email\nzed@example.com\n', 'UTF8'));
\echo :SQLSTATE
SELECT audience.import_xlsx(substring(data FROM 1 FOR 300)) FROM workbook WHERE name = 'contacts.xlsx';
\echo :SQLSTATE
SELECT audience.import_xlsx(data, '{"sheet": "Deals"}') FROM workbook WHERE name = 'contacts.xlsx';
\echo :SQLSTATE
\set VERBOSITY default
SELECT audience.import_xlsx(data, '{"sheet": "Deals"}') FROM workbook WHERE name = 'contacts.xlsx';
\set VERBOSITY terse
SELECT audience.import_xlsx(data, '{"delimiter": ";"}') FROM workbook WHERE name = 'contacts.xlsx';
\echo :SQLSTATE
SELECT audience.import_xlsx(NULL);
\echo :SQLSTATE
SELECT audience.import_csv(E'email\nzed@example.com\n', '{"sheet": "Leads"}');
\echo :SQLSTATE
-- Server files are refused before they are opened, whether they exist or not.
SELECT audience.import_csv_file('../sample_audience.csv');
\echo :SQLSTATE
SELECT audience.import_xlsx_file('/no/such/file.xlsx');
\echo :SQLSTATE
SELECT count(*) AS contacts_after FROM audience.contacts;
SELECT count(*) AS imports_after FROM audience.imports;
RESET ROLE;

-- A member of pg_read_server_files imports server files (a relative path
-- is read from the data directory); missing files
-- and directories are errors of their own.
SET ROLE file_reader;
SET audience.tenant = 'sheets';
SELECT (r).rows, (r).inserted, (r).rejected, (r).segment
  FROM (SELECT audience.import_xlsx_file('../contacts.xlsx', '{"sheet": "Leads", "segment": "From a file"}') AS r) imported;
SELECT audience.import_csv_file('../missing.csv');
\echo :SQLSTATE
SELECT audience.import_csv_file('..');
\echo :SQLSTATE
SELECT audience.import_xlsx_file('../sample_audience.csv');
\echo :SQLSTATE
RESET ROLE;

-- As a superuser: the sample audience from its file gives what the same
-- bytes give through import_csv (one pipeline), streamed in batches.
SELECT audience.create_tenant('file_copy', 'sheet_app') IS NOT NULL AS created;
SELECT audience.create_tenant('bytes_copy', 'sheet_app') IS NOT NULL AS created;
SET audience.tenant = 'file_copy';
SELECT audience.define_field('Industry', 'text');
SET client_min_messages = warning;
CREATE TEMP TABLE from_file AS
SELECT r.* FROM audience.import_csv_file('../sample_audience.csv', '{"segment": "Sample"}') r;
SET audience.tenant = 'bytes_copy';
SELECT audience.define_field('Industry', 'text');
CREATE TEMP TABLE from_bytes AS
SELECT r.* FROM audience.import_csv(pg_read_binary_file('../sample_audience.csv'), '{"segment": "Sample"}') r;
RESET client_min_messages;
SELECT f.rows, f.inserted + f.updated AS imported, f.rejected, f.errors = b.errors AS same_errors,
       (f.rows, f.inserted, f.updated, f.unchanged, f.rejected) = (b.rows, b.inserted, b.updated, b.unchanged, b.rejected) AS same_counts
  FROM from_file f, from_bytes b;
SELECT count(*) AS differing_contacts FROM (
    (SELECT email, first_name, last_name, company, phone, country, city, lead_status, tags, attributes
       FROM audience.contacts c JOIN audience.tenants t ON t.id = c.tenant_id WHERE t.name = 'file_copy'
     EXCEPT
     SELECT email, first_name, last_name, company, phone, country, city, lead_status, tags, attributes
       FROM audience.contacts c JOIN audience.tenants t ON t.id = c.tenant_id WHERE t.name = 'bytes_copy')
) differ;
