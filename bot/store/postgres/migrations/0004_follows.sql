-- Papers followed through their life (issue 14), as SQLite's 0012 and 0013: who follows
-- which paper, each change ingest saw on a followed paper (kept until its notes are
-- queued), and arXiv's comment and journal reference on the paper, so a new version can say
-- what changed in them.
CREATE TABLE follows (
    owner      text NOT NULL CHECK (owner LIKE 'user:_%' OR owner LIKE 'channel:_%'),
    paper_key  text NOT NULL CHECK (paper_key <> ''),
    channel    text NOT NULL CHECK (channel IN ('email', 'discord')),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (owner, paper_key)
);
CREATE INDEX follows_by_paper ON follows (paper_key);

CREATE TABLE paper_changes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    paper_key  text    NOT NULL,
    kind       text    NOT NULL CHECK (kind IN ('version', 'code', 'upvotes')),
    detail     jsonb   NOT NULL CHECK (jsonb_typeof(detail) = 'object'),
    changed_at timestamptz NOT NULL,
    noted      boolean NOT NULL DEFAULT false
);
CREATE INDEX paper_changes_by_paper ON paper_changes (paper_key, id);
CREATE INDEX paper_changes_to_note ON paper_changes (id) WHERE NOT noted;

ALTER TABLE papers ADD COLUMN arxiv_comment text NOT NULL DEFAULT '';
ALTER TABLE papers ADD COLUMN journal_ref text NOT NULL DEFAULT '';
