-- Papers, their full-text index, and what we remember about each source.
-- Datetimes are ISO-8601 UTC text of fixed width (isoformat with microseconds), so text
-- order is time order. Lists (authors, categories, sources) are JSON arrays.

-- `id` is an explicit INTEGER PRIMARY KEY (a rowid alias) because the FTS index refers to
-- rows by rowid, and VACUUM may renumber the implicit rowid of a table without one.
-- `key` (arXiv id without version, or feed:<sha1>) is what everything else uses.
CREATE TABLE papers (
    id           INTEGER PRIMARY KEY,
    key          TEXT    NOT NULL UNIQUE CHECK (key <> ''),
    version      INTEGER CHECK (version IS NULL OR version >= 1),
    title        TEXT    NOT NULL,
    abstract     TEXT    NOT NULL DEFAULT '',
    authors      TEXT    NOT NULL DEFAULT '[]' CHECK (json_type(authors) = 'array'),
    categories   TEXT    NOT NULL DEFAULT '[]' CHECK (json_type(categories) = 'array'),
    published    TEXT,
    updated      TEXT,
    link_abs     TEXT,
    link_pdf     TEXT,
    link_hf      TEXT,
    link_code    TEXT,
    upvotes      INTEGER CHECK (upvotes IS NULL OR upvotes >= 0),
    comments     INTEGER CHECK (comments IS NULL OR comments >= 0),
    github_stars INTEGER CHECK (github_stars IS NULL OR github_stars >= 0),
    sources      TEXT    NOT NULL DEFAULT '[]' CHECK (json_type(sources) = 'array'),
    first_seen   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL,
    -- The date list_papers filters and sorts on; indexed below.
    sort_date    TEXT    GENERATED ALWAYS AS (coalesce(published, first_seen)) VIRTUAL
);

CREATE INDEX papers_by_sort_date ON papers (sort_date DESC, key DESC);

-- What the full-text index sees: authors as one space-joined string, not JSON.
CREATE VIEW papers_fts_source AS
SELECT id,
       title,
       abstract,
       (SELECT group_concat(value, ' ') FROM json_each(papers.authors)) AS authors
FROM papers;

-- External content over the view above rather than contentless or a full copy: the text
-- is stored once (in papers), yet FTS5 can still read it back for snippet()/highlight()
-- and for the 'rebuild' command should a later migration change the tokenizer.
CREATE VIRTUAL TABLE papers_fts USING fts5 (
    title,
    abstract,
    authors,
    content = 'papers_fts_source',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Triggers keep the index in step with papers. An external-content index forgets a row
-- only when given the exact values it indexed, hence the 'delete' rows built from old.*.
CREATE TRIGGER papers_fts_after_insert AFTER INSERT ON papers BEGIN
    INSERT INTO papers_fts (rowid, title, abstract, authors)
    VALUES (new.id, new.title, new.abstract,
            (SELECT group_concat(value, ' ') FROM json_each(new.authors)));
END;

CREATE TRIGGER papers_fts_after_delete AFTER DELETE ON papers BEGIN
    INSERT INTO papers_fts (papers_fts, rowid, title, abstract, authors)
    VALUES ('delete', old.id, old.title, old.abstract,
            (SELECT group_concat(value, ' ') FROM json_each(old.authors)));
END;

-- Upvote changes are the commonest update; they must not re-index the text.
CREATE TRIGGER papers_fts_after_update AFTER UPDATE OF title, abstract, authors ON papers
WHEN old.title IS NOT new.title
  OR old.abstract IS NOT new.abstract
  OR old.authors IS NOT new.authors
BEGIN
    INSERT INTO papers_fts (papers_fts, rowid, title, abstract, authors)
    VALUES ('delete', old.id, old.title, old.abstract,
            (SELECT group_concat(value, ' ') FROM json_each(old.authors)));
    INSERT INTO papers_fts (rowid, title, abstract, authors)
    VALUES (new.id, new.title, new.abstract,
            (SELECT group_concat(value, ' ') FROM json_each(new.authors)));
END;

CREATE TABLE sources_state (
    source_id     TEXT PRIMARY KEY CHECK (source_id <> ''),
    http_cache    TEXT NOT NULL DEFAULT '{}' CHECK (json_type(http_cache) = 'object'),
    last_success  TEXT,
    last_error    TEXT,
    last_error_at TEXT,
    last_note     TEXT
);
