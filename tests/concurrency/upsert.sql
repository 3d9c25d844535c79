\set n random(1, 400)
\set reach random(0, 100)
\set plan random(1, 3)
SELECT audience.upsert_contact(jsonb_build_object('email', 'C' || :n || '@Example.com ', 'reachability', :reach,
                                                  'plan', (ARRAY['free', 'pro', 'team'])[:plan]));
