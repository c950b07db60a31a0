-- Papers stored but not yet matched against subscriptions. Written in the same transaction
-- as the papers, cleared in the same transaction as the match records, so a crash or a
-- cancelled cycle between the two steps never loses an alert: the next cycle matches them.
CREATE TABLE match_queue (
    paper_key    TEXT PRIMARY KEY REFERENCES papers(key) ON DELETE CASCADE,
    upvotes_only INTEGER NOT NULL CHECK (upvotes_only IN (0, 1)),  -- an update, not news
    queued_at    TEXT NOT NULL,
    -- Bumped whenever the paper is queued again, so a match step only clears what it read
    -- (an upvote change stored while it was matching stays queued for the next one).
    version      INTEGER NOT NULL DEFAULT 0
);
