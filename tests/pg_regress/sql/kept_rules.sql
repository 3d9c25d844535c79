-- Each backend keeps its tenants' parsed rules between statements. A rule,
-- field or fit rule changed in another session must reach it before its
-- next statement, every time (the second change below was once missed by
-- a backend that had just learned of the first).
\set SHOW_CONTEXT never
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE ROLE kept_app LOGIN IN ROLE audience_user;
SELECT audience.create_tenant('kept_rules', 'kept_app') IS NOT NULL AS created;
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=%s',
       split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'),
       current_database(), current_user));
SELECT dblink_exec('other', 'SET ROLE kept_app');
SELECT dblink_exec('other', 'SET audience.tenant = ''kept_rules''');

SET ROLE kept_app;
SET audience.tenant = 'kept_rules';
SELECT audience.create_segment('Threshold', 'reachability > 50') IS NOT NULL AS created;
INSERT INTO audience.contacts (email, reachability) VALUES ('kim@example.com', 60);
SELECT audience.in_segment(id, 'Threshold') AS at_60_over_50 FROM audience.contacts;

-- Another session raises the bar; this one writes next.
RESET ROLE;
SELECT * FROM dblink('other', 'SELECT audience.update_segment(''Threshold'', rule => ''reachability > 70'')::text') AS t(done text);
SET ROLE kept_app;
UPDATE audience.contacts SET reachability = 65;
SELECT audience.in_segment(id, 'Threshold') AS at_65_over_70 FROM audience.contacts;

-- And lowers it again.
RESET ROLE;
SELECT * FROM dblink('other', 'SELECT audience.update_segment(''Threshold'', rule => ''reachability > 60'')::text') AS t(done text);
SET ROLE kept_app;
UPDATE audience.contacts SET reachability = 66;
SELECT audience.in_segment(id, 'Threshold') AS at_66_over_60 FROM audience.contacts;

-- A new segment and a fit rule from the other session are used here too.
RESET ROLE;
SELECT * FROM dblink('other', 'SELECT audience.create_segment(''Romans'', ''city = ''''Rome'''''')::text IS NOT NULL') AS t(created boolean);
SELECT * FROM dblink('other', 'SELECT audience.set_fit_score(''Roman'', ''city = ''''Rome'''''', 7)') AS t(changed bigint);
SET ROLE kept_app;
UPDATE audience.contacts SET city = 'Rome';
SELECT audience.in_segment(id, 'Romans') AS in_romans, fit_score FROM audience.contacts;

-- A change rolled back in this session leaves the rules as they were.
BEGIN;
SELECT audience.update_segment('Threshold', rule => 'reachability > 90');
ROLLBACK;
UPDATE audience.contacts SET reachability = 67;
SELECT audience.in_segment(id, 'Threshold') AS at_67_over_60 FROM audience.contacts;

RESET ROLE;
SELECT dblink_disconnect('other');
