-- Engagement events and lead scores as an application sees them: the
-- default plan, tracked and bulk events, resets, back-dated events, custom
-- rules, tiers, fit points, decay, engagement segments and bad input.
\set SHOW_CONTEXT never
CREATE ROLE score_app LOGIN IN ROLE audience_user;
SELECT audience.create_tenant('scoring_test', 'score_app') IS NOT NULL AS created;
SELECT audience.create_tenant('scoring_other', 'score_app') IS NOT NULL AS created;
SET ROLE score_app;
SET audience.tenant = 'scoring_other';
INSERT INTO audience.contacts (email) VALUES ('stranger@example.com');
SET audience.tenant = 'scoring_test';
SELECT audience.define_field('industry', 'text');
INSERT INTO audience.contacts (email, first_name, attributes) VALUES
    ('ann@example.com', 'Ann', '{"industry": "SaaS"}'),
    ('bob@example.com', 'Bob', '{"industry": "Retail"}'),
    ('cy@example.com', 'Cy', '{}');

-- Every tenant starts with the default plan.
SELECT kind, url_pattern, points, reset FROM audience.scoring_rules ORDER BY kind, url_pattern;

-- Each tracked event moves the score, activity times and status at once.
SELECT audience.track('ann@example.com', 'opened', 'spring') > 0 AS tracked;
SELECT score, last_opened_at IS NOT NULL AS opened, last_activity_at IS NOT NULL AS active FROM audience.contacts WHERE email = 'ann@example.com';
SELECT audience.track(' ANN@example.com ', 'clicked', 'spring', 'https://example.com/blog') > 0 AS tracked;
SELECT audience.track('ann@example.com', 'visited', url => 'https://example.com/PRICING?plan=pro') > 0 AS tracked;
SELECT audience.track('ann@example.com', 'visited', url => 'https://example.com/about') > 0 AS tracked;
SELECT audience.track('ann@example.com', 'replied') > 0 AS tracked;
SELECT score, audience.score_tier(score) AS tier, event_count, status FROM audience.contacts WHERE email = 'ann@example.com';
SELECT audience.track('ann@example.com', 'bounced') > 0 AS tracked;
SELECT score, status FROM audience.contacts WHERE email = 'ann@example.com';

-- Unsubscribing resets engagement to 0; later events count again, earlier
-- (back-dated) ones do not.
SELECT audience.track('bob@example.com', 'clicked') > 0 AS tracked;
SELECT audience.track('bob@example.com', 'unsubscribed', occurred_at => now() - interval '1 day') > 0 AS tracked;
SELECT score, status, score_reset_at IS NOT NULL AS reset FROM audience.contacts WHERE email = 'bob@example.com';
SELECT audience.track('bob@example.com', 'clicked', occurred_at => now() - interval '2 days') > 0 AS tracked;
SELECT score FROM audience.contacts WHERE email = 'bob@example.com';
SELECT audience.track('bob@example.com', 'replied') > 0 AS tracked;
SELECT score FROM audience.contacts WHERE email = 'bob@example.com';
-- Unsubscribing outranks a bounce, in either order.
SELECT audience.track('bob@example.com', 'bounced') > 0 AS tracked;
SELECT status FROM audience.contacts WHERE email = 'bob@example.com';

-- A multi-row INSERT is scored per statement, like single events.
INSERT INTO audience.events (contact_id, kind, url, occurred_at)
SELECT c.id, (ARRAY['opened', 'clicked', 'visited', 'sent'])[1 + i % 4], '/pricing/' || i, now() - make_interval(mins => i)
  FROM audience.contacts c CROSS JOIN generate_series(1, 2500) i
 WHERE c.email = 'cy@example.com';
SELECT score, event_count, last_clicked_at > now() - interval '1 hour' AS recent_click FROM audience.contacts WHERE email = 'cy@example.com';
SELECT audience.recompute_scores() AS corrected;

-- Custom rules rescore the tenant at once; patterns match any case.
SELECT audience.set_score('webinar_attended', 15);
SELECT audience.set_score('visited', 30, '/PRICING');
SELECT audience.set_score('clicked', 2);
SELECT audience.set_score_reset('bounced');
SELECT kind, url_pattern, points, reset FROM audience.scoring_rules ORDER BY kind, url_pattern;
SELECT email, score FROM audience.contacts ORDER BY email;
SELECT audience.track('cy@example.com', 'webinar_attended') > 0 AS tracked;
SELECT score FROM audience.contacts WHERE email = 'cy@example.com';
SELECT audience.recompute_scores() AS corrected;

-- Tiers and their distribution.
SELECT tier, contacts, min_score, max_score FROM audience.score_distribution;
SELECT audience.set_tiers(100000, 10);
SELECT tier, contacts FROM audience.score_distribution;
SELECT audience.set_tiers(50, 20);

-- Fit points follow the contact's fields.
SELECT audience.set_fit_score('SaaS companies', 'custom.industry = ''saas''', 15) AS changed;
SELECT email, fit_score, engagement_score, score FROM audience.contacts ORDER BY email;
UPDATE audience.contacts SET attributes = attributes || '{"industry": "SaaS"}' WHERE email = 'bob@example.com';
SELECT email, fit_score, score FROM audience.contacts ORDER BY email;
SELECT audience.set_fit_score('Named', 'first_name is not null', 5) AS changed;
SELECT email, fit_score FROM audience.contacts ORDER BY email;
SELECT audience.drop_fit_score('named') AS changed;
SELECT audience.set_fit_score('Loop', 'score > 10', 5);
\echo :SQLSTATE
SELECT audience.set_fit_score('Unknown', 'custom.size > 10', 5);
\echo :SQLSTATE
SELECT audience.recompute_scores() AS corrected;

-- Decay shrinks points older than one period, as of the last apply_decay.
INSERT INTO audience.contacts (email) VALUES ('old@example.com');
SELECT audience.track('old@example.com', 'replied', occurred_at => now() - interval '45 days') > 0 AS tracked;
SELECT audience.track('old@example.com', 'replied', occurred_at => now() - interval '75 days') > 0 AS tracked;
SELECT audience.track('old@example.com', 'replied') > 0 AS tracked;
SELECT audience.set_score_decay(50, '30 days');
SELECT score FROM audience.contacts WHERE email = 'old@example.com';
SELECT audience.apply_decay() > 0 AS decayed;
SELECT score FROM audience.contacts WHERE email = 'old@example.com';
SELECT audience.track('old@example.com', 'replied', occurred_at => now() - interval '40 days') > 0 AS tracked;
SELECT score FROM audience.contacts WHERE email = 'old@example.com';
SELECT audience.recompute_scores() AS corrected;
SELECT audience.set_score_decay(0);
SELECT score FROM audience.contacts WHERE email = 'old@example.com';

-- Engagement segments follow events, and a new send moves "last campaign"
-- for everyone: Ann opened spring, which was sent last until summer is.
SELECT audience.track('ann@example.com', 'sent', 'spring') > 0 AS tracked;
SELECT audience.create_segment('Clickers', 'clicked at least 2 times') IS NOT NULL AS created;
SELECT audience.create_segment('Opened last', 'opened last campaign') IS NOT NULL AS created;
SELECT audience.create_segment('Engaged', 'score >= 20') IS NOT NULL AS created;
SELECT segment, email FROM audience.segment_membership ORDER BY segment, email;
SELECT audience.track('bob@example.com', 'clicked') > 0 AS tracked;
INSERT INTO audience.events (contact_id, kind, campaign)
SELECT id, 'sent', 'summer' FROM audience.contacts WHERE email IN ('ann@example.com', 'cy@example.com');
SELECT segment, email FROM audience.segment_membership ORDER BY segment, email;
SELECT audience.track('cy@example.com', 'opened', 'summer') > 0 AS tracked;
SELECT segment, email FROM audience.segment_membership WHERE segment = 'Opened last' ORDER BY email;
-- Deleting events rescores their contacts.
DELETE FROM audience.events WHERE kind = 'webinar_attended';
SELECT email, score FROM audience.contacts WHERE email = 'cy@example.com';
SELECT audience.recompute_scores() AS corrected;

-- Bad input.
SELECT audience.track('nobody@example.com', 'opened');
\echo :SQLSTATE
SELECT audience.track('stranger@example.com', 'opened');
\echo :SQLSTATE
SELECT audience.track('ann@example.com', 'Opened Twice!');
\echo :SQLSTATE
SELECT audience.track('not an email', 'opened');
\echo :SQLSTATE
SELECT audience.set_score('opened', 1000000);
\echo :SQLSTATE
SELECT audience.set_score('visited', 5, '  ');
\echo :SQLSTATE
SELECT audience.set_score_decay(150);
\echo :SQLSTATE
SELECT audience.set_score_decay(10, '1 minute');
\echo :SQLSTATE
UPDATE audience.events SET kind = 'clicked';
\echo :SQLSTATE
UPDATE audience.contacts SET score = 1000;
\echo :SQLSTATE
-- Another tenant's contact cannot receive an event.
RESET ROLE;
SELECT id AS stranger FROM audience.contacts WHERE email = 'stranger@example.com' \gset
SET ROLE score_app;
INSERT INTO audience.events (contact_id, kind) VALUES (:'stranger', 'opened');
\echo :SQLSTATE
SELECT count(*) AS events_of_others FROM audience.events WHERE contact_id = :'stranger';
RESET ROLE;
