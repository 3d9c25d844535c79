-- Tags, list edits and segment edits.
\set n random(1, 400)
\set pick random(1, 4)
SELECT CASE :pick
    WHEN 1 THEN (SELECT audience.tag(id, 'VIP') FROM audience.contacts WHERE email = 'c' || :n || '@example.com')::text
    WHEN 2 THEN (SELECT audience.untag(id, 'vip') FROM audience.contacts WHERE email = 'c' || :n || '@example.com')::text
    WHEN 3 THEN audience.add_to_list('Hand picked', ARRAY(SELECT id FROM audience.contacts WHERE email LIKE 'c' || :n || '%'))::text
    ELSE audience.update_segment('Shifting', rule => format('reachability > %s', :n % 100)::audience.rule)::text
END;
