-- 30 overlapping rows, some new contacts, into one list.
\set start random(1, 420)
SELECT (audience.import_csv('email,city,tags' || E'\n' ||
        string_agg(format('c%s@example.com,%s,imported', i, (ARRAY['Rome', 'Oslo'])[1 + i % 2]), E'\n'),
        '{"segment": "Imported"}')).rejected
  FROM generate_series(:start, :start + 29) i;
