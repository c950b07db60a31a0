-- Self-service on the web (issue 12).
-- manage_generation: manage links carry the generation they were signed with; "send me a
-- new link" bumps it, so every older link stops working (nothing secret is stored).
ALTER TABLE users ADD COLUMN manage_generation INTEGER NOT NULL DEFAULT 0
    CHECK (manage_generation >= 0);
-- A paused subscription stays listed but matches nothing until resumed.
ALTER TABLE subscriptions ADD COLUMN paused INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1));
-- Kind 'confirm' also carries the other transactional mail, a manage link (payload
-- purpose 'manage'): claimed first like a confirmation, never behind a backlog of alerts.
-- The newest matches of an owner, for their page, feeds and exports.
CREATE INDEX matches_by_owner_time ON matches (owner, matched_at);
