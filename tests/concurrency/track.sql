\set n random(1, 400)
\set kind random(1, 3)
SELECT audience.track('c' || :n || '@example.com', (ARRAY['opened', 'clicked', 'replied'])[:kind], 'spring');
