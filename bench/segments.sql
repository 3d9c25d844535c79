-- 50 dynamic segments mixing fields, tags, custom fields, status and OR
-- (bench/run.sh's curve scenario makes 200: past 50, thresholds repeat
-- those of 1–50 with other countries, tags and owners).
SELECT count(audience.create_segment('Segment ' || n, rule::audience.rule))
  FROM (SELECT n, CASE n % 10
      WHEN 0 THEN format('country = %L and reachability >= %s', (ARRAY['US','CA','GB','DE','FR'])[1 + n % 5], 40 + t)
      WHEN 1 THEN format('tag %L and not tag ''Invalid_Phone''', (ARRAY['VIP','Buyer','Seller','Referral'])[1 + n % 4])
      WHEN 2 THEN format('industry = %L and custom.budget > %s', (ARRAY['SaaS','Retail','Finance'])[1 + n % 3], t * 10000)
      WHEN 3 THEN format('status = ''active'' and (lead_status = ''hot'' or score > %s)', t)
      WHEN 4 THEN format('source = %L or city = %L', (ARRAY['facebook','form','api'])[1 + n % 3], (ARRAY['Toronto','Berlin'])[1 + n % 2])
      WHEN 5 THEN format('reachability between %s and %s', t, t + 30)
      WHEN 6 THEN format('email ends with %L and lead_status in (''new'', ''nurture'')', (ARRAY['@example.com','@acme.com'])[1 + n % 2])
      WHEN 7 THEN format('assigned_to = %L and phone_type = ''mobile''', 'agent-' || (1 + n % 8))
      WHEN 8 THEN format('country in (''US'', ''CA'') and tag %L', (ARRAY['Newsletter','Webinar 2025'])[1 + n % 2])
      ELSE format('company contains %L or reachability < %s', 'acme', n % 20)
    END AS rule
  FROM generate_series(1, 50) n, LATERAL (SELECT (n - 1) % 50 + 1) threshold(t)) s;
