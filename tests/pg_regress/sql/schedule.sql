-- schedule_refresh through pg_cron, for real: the job runs within a minute
-- and brings a time-relative segment's stored membership up to date.
\set SHOW_CONTEXT never
CREATE EXTENSION pg_cron;
SELECT audience.create_tenant('cron_test') IS NOT NULL AS created;
SET audience.tenant = 'cron_test';
INSERT INTO audience.contacts (email, created_at) VALUES
    ('fresh@example.com', now()),
    ('leaving@example.com', now() - interval '1 hour' + interval '1 second');
SELECT audience.create_segment('Last hour', 'created_at within 1 hours') IS NOT NULL AS created;
SELECT pg_sleep(2);
SELECT member_count AS stored, audience.count('Last hour') AS live FROM audience.segments WHERE name = 'Last hour';
SELECT audience.schedule_refresh('* * * * *') > 0 AS scheduled;
SELECT jobname, schedule, command FROM cron.job;
DO $wait$
BEGIN
    FOR second IN 1..150 LOOP
        EXIT WHEN EXISTS (SELECT FROM cron.job_run_details WHERE status IN ('succeeded', 'failed'));
        PERFORM pg_sleep(1);
    END LOOP;
END
$wait$;
SELECT status, return_message FROM cron.job_run_details;
SELECT member_count AS stored, audience.count('Last hour') AS live FROM audience.segments WHERE name = 'Last hour';
SELECT c.email, m.change FROM audience.membership_changes m JOIN audience.contacts c ON c.id = m.contact_id
 WHERE m.tenant_id = audience.current_tenant() ORDER BY m.at, m.change, c.email;
SELECT cron.unschedule('audience-refresh');
