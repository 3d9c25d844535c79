--------------------------------------------------------------------------
-- CSV import: reports, the list imported contacts join, progress
--------------------------------------------------------------------------
CREATE TYPE audience.import_report AS (
    import_id uuid,
    rows      bigint,
    inserted  bigint,
    updated   bigint,
    unchanged bigint,
    rejected  bigint,
    segment   text,
    errors    jsonb
);
COMMENT ON TYPE audience.import_report IS 'What an import did: row counts, the list its contacts joined, and every rejected row';

CREATE TABLE audience.imports (
    tenant_id   uuid        NOT NULL DEFAULT audience.current_tenant()
                            REFERENCES audience.tenants (id) ON DELETE CASCADE,
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    imported_at timestamptz NOT NULL DEFAULT now(),
    imported_by text        NOT NULL DEFAULT current_user,
    rows        bigint      NOT NULL,
    inserted    bigint      NOT NULL,
    updated     bigint      NOT NULL,
    unchanged   bigint      NOT NULL,
    rejected    bigint      NOT NULL,
    segment     text,
    options     jsonb       NOT NULL DEFAULT '{}',
    errors      jsonb       NOT NULL DEFAULT '[]',
    PRIMARY KEY (tenant_id, id)
);
COMMENT ON TABLE audience.imports IS 'The report of every import';
COMMENT ON COLUMN audience.imports.errors IS 'Rejected rows and skipped columns: [{"line", "column", "value", "message"}]';
SELECT pg_catalog.pg_extension_config_dump('audience.imports', '');

-- The static list an import adds to: the named one (created when missing)
-- or a new "Import <timestamp>" list.
CREATE FUNCTION audience.import_list(name text) RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    wanted text := coalesce(nullif(btrim(name), ''), 'Import ' || to_char(now(), 'YYYY-MM-DD HH24:MI:SS'));
    -- A value, not a call in the query: Citus routes by it (sql/citus.sql).
    tenant uuid := audience.current_tenant();
BEGIN
    IF NOT EXISTS (SELECT FROM audience.segments s
                    WHERE s.tenant_id = tenant AND audience.fold(s.name) = audience.fold(wanted)) THEN
        BEGIN
            PERFORM audience.create_list(wanted, 'Contacts imported from CSV');
        EXCEPTION WHEN unique_violation THEN
            -- A concurrent import created it first and has committed.
        END;
    END IF;
    RETURN (audience.find_list(wanted)).name;
END
$$;
COMMENT ON FUNCTION audience.import_list(text) IS 'The static list an import adds its contacts to, created when missing';

-- Adds imported contacts (known to exist) to the import's list, and brings
-- segments that refer to the list up to date. Contacts the import created
-- (`created`) can be in no list yet, and nobody else sees them before it
-- commits: they join without being looked up in the list first.
CREATE FUNCTION audience.import_to_list(name text, contacts uuid[], created uuid[] DEFAULT '{}') RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    list audience.segments := audience.find_list(name);
    changes bigint := audience.apply_membership(list.tenant_id, list.id, contacts, '{}');
BEGIN
    IF cardinality(created) > 0 THEN
        changes := changes + audience.apply_membership(list.tenant_id, list.id, created, '{}', known_new => true);
    END IF;
    IF changes > 0 AND EXISTS (SELECT FROM audience.segments s
                                WHERE s.tenant_id = list.tenant_id AND list.id = ANY (s.depends_on)) THEN
        PERFORM audience.maintain_membership(list.tenant_id::text, (contacts || created)::text[], ARRAY[list.id::text]);
    END IF;
    RETURN changes;
END
$$;
COMMENT ON FUNCTION audience.import_to_list(text, uuid[], uuid[]) IS 'Adds contacts an import wrote to its list, those it created without looking them up (for import_csv)';

-- Every import function runs the one pipeline through this.
CREATE FUNCTION audience.run_import(form text, data bytea, path text, options jsonb) RETURNS audience.import_report
LANGUAGE plpgsql
AS $$
DECLARE
    report audience.import_report;
BEGIN
    -- A deadlock with a concurrent writer (possible once an import spans
    -- several batches) rolls back this attempt, which frees the other
    -- writer, and the import starts over.
    FOR attempt IN 1..3 LOOP
        BEGIN
            SELECT r.* INTO report FROM audience.import_contacts(form, data, path, coalesce(options, '{}')) r;
            EXIT;
        EXCEPTION WHEN deadlock_detected THEN
            IF attempt = 3 THEN
                RAISE;
            END IF;
        END;
    END LOOP;
    RETURN report;
END
$$;
COMMENT ON FUNCTION audience.run_import(text, bytea, text, jsonb) IS 'Runs an import (csv or workbook data, or a csv_file or workbook_file path), starting over after a deadlock (for the import functions)';

CREATE FUNCTION audience.import_csv(data bytea, options jsonb DEFAULT '{}') RETURNS audience.import_report
LANGUAGE sql
AS $$ SELECT audience.run_import('csv', data, NULL, options) $$;
COMMENT ON FUNCTION audience.import_csv(bytea, jsonb) IS 'Imports contacts from CSV bytes in the encoding option''s encoding (utf8, latin1, windows-1252); good rows are written, bad rows reported';

CREATE FUNCTION audience.import_csv(data text, options jsonb DEFAULT '{}') RETURNS audience.import_report
LANGUAGE plpgsql
AS $$
BEGIN
    IF coalesce(options, '{}') ? 'encoding' AND lower(options->>'encoding') NOT IN ('utf8', 'utf-8') THEN
        RAISE EXCEPTION 'text is already decoded: the encoding option applies to bytea input'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass the file''s bytes, e.g. pg_read_binary_file(…) or a bytea parameter.';
    END IF;
    RETURN audience.run_import('csv', convert_to(data, 'UTF8'), NULL, options);
END
$$;
COMMENT ON FUNCTION audience.import_csv(text, jsonb) IS 'Imports contacts from CSV text; good rows are written, bad rows reported';

CREATE FUNCTION audience.import_csv_file(path text, options jsonb DEFAULT '{}') RETURNS audience.import_report
LANGUAGE sql
AS $$ SELECT audience.run_import('csv_file', NULL, path, options) $$;
COMMENT ON FUNCTION audience.import_csv_file(text, jsonb) IS 'Imports contacts from a CSV file on the database server, read in batches (superusers and members of pg_read_server_files)';

CREATE FUNCTION audience.import_xlsx(data bytea, options jsonb DEFAULT '{}') RETURNS audience.import_report
LANGUAGE sql
AS $$ SELECT audience.run_import('workbook', data, NULL, options) $$;
COMMENT ON FUNCTION audience.import_xlsx(bytea, jsonb) IS 'Imports contacts from a sheet of an Excel (.xlsx, .xls) or OpenDocument (.ods) workbook: the first, or the sheet option''s';

CREATE FUNCTION audience.import_xlsx_file(path text, options jsonb DEFAULT '{}') RETURNS audience.import_report
LANGUAGE sql
AS $$ SELECT audience.run_import('workbook_file', NULL, path, options) $$;
COMMENT ON FUNCTION audience.import_xlsx_file(text, jsonb) IS 'Imports contacts from a workbook file on the database server (superusers and members of pg_read_server_files)';

CREATE VIEW audience.import_progress AS
SELECT p.pid, a.usename::text AS imported_by, a.query_start AS started_at,
       p.bytes_processed AS bytes_read, p.bytes_total,
       round(100.0 * p.bytes_processed / nullif(p.bytes_total, 0), 1) AS percent,
       p.tuples_processed AS rows_done, p.tuples_excluded AS rows_rejected
  FROM pg_catalog.pg_stat_progress_copy p
  JOIN pg_catalog.pg_stat_activity a ON a.pid = p.pid
 WHERE p.relid = 'audience.contacts'::regclass AND p.type = 'CALLBACK';
COMMENT ON VIEW audience.import_progress IS 'One row per running import (of any session), with bytes and rows done';
