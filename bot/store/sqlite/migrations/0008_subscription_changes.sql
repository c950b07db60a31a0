-- A counter bumped by every change to subscriptions (added, removed, delivery changed),
-- by any process: the match step's compiled index compares it before each chunk and
-- reloads only when it moved, so it plans with what people chose a moment ago.
CREATE TABLE subscription_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO subscription_changes (id, n) VALUES (1, 0);
CREATE TRIGGER subscriptions_added AFTER INSERT ON subscriptions
BEGIN UPDATE subscription_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER subscriptions_changed AFTER UPDATE ON subscriptions
BEGIN UPDATE subscription_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER subscriptions_removed AFTER DELETE ON subscriptions
BEGIN UPDATE subscription_changes SET n = n + 1 WHERE id = 1; END;
