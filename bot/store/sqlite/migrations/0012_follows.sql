-- Papers followed through their life (issue 14): who follows which paper, and each change
-- ingest saw on a followed paper (a new version with the values before and after, code
-- released, an upvote threshold crossed), kept until its notes are queued.
CREATE TABLE follows (
    owner       TEXT NOT NULL,
    paper_key   TEXT NOT NULL,
    channel     TEXT NOT NULL CHECK (channel IN ('email', 'discord')),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (owner, paper_key)
) WITHOUT ROWID;
CREATE INDEX follows_by_paper ON follows (paper_key);

CREATE TABLE paper_changes (
    id          INTEGER PRIMARY KEY,
    paper_key   TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('version', 'code', 'upvotes')),
    detail      TEXT    NOT NULL,  -- JSON: {"before": {...}, "after": {...}}
    changed_at  TEXT    NOT NULL,
    noted       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX paper_changes_by_paper ON paper_changes (paper_key, id);
CREATE INDEX paper_changes_to_note ON paper_changes (noted) WHERE noted = 0;
