-- PostgreSQL schema, part one: papers and their full-text index, sources' state, the match
-- queue, match records, meta, and paper vectors. Accounts, the outbox and feedback come in
-- 0002 (they refer to users); 0002 also adds the foreign key matches.digest_id ->
-- deliveries(id), which cannot exist before deliveries does.
-- Datetimes are timestamptz; lists are text[]; JSON objects jsonb.

-- Search folds case and diacritics and does not stem, like SQLite's unicode61 tokenizer:
-- stems are the matcher's business; the index only proposes candidates.
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE TEXT SEARCH CONFIGURATION paperbell (COPY = pg_catalog.simple);
ALTER TEXT SEARCH CONFIGURATION paperbell
    ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part
    WITH unaccent, simple;

-- array_to_string is only STABLE (element output may depend on settings); for text[] it is
-- immutable, which a generated column needs.
CREATE FUNCTION paperbell_join(text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT array_to_string($1, ' ') $$;

CREATE TABLE papers (
    key          text PRIMARY KEY CHECK (key <> ''),
    version      integer CHECK (version IS NULL OR version >= 1),
    title        text NOT NULL,
    abstract     text NOT NULL DEFAULT '',
    authors      text[] NOT NULL DEFAULT '{}',
    categories   text[] NOT NULL DEFAULT '{}',
    published    timestamptz,
    updated      timestamptz,
    link_abs     text,
    link_pdf     text,
    link_hf      text,
    link_code    text,
    upvotes      integer CHECK (upvotes IS NULL OR upvotes >= 0),
    comments     integer CHECK (comments IS NULL OR comments >= 0),
    github_stars integer CHECK (github_stars IS NULL OR github_stars >= 0),
    sources      text[] NOT NULL DEFAULT '{}',
    first_seen   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    sort_date    timestamptz GENERATED ALWAYS AS (coalesce(published, first_seen)) STORED,
    -- Title words weigh most (A), then authors (B), then the abstract (C): the weights
    -- search ranks with are in bot/store/postgres/papers.py.
    search       tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('paperbell', title), 'A')
        || setweight(to_tsvector('paperbell', paperbell_join(authors)), 'B')
        || setweight(to_tsvector('paperbell', abstract), 'C')
    ) STORED
);
CREATE INDEX papers_by_sort_date ON papers (sort_date DESC, key DESC);
CREATE INDEX papers_search ON papers USING gin (search);

CREATE TABLE sources_state (
    source_id     text PRIMARY KEY CHECK (source_id <> ''),
    http_cache    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(http_cache) = 'object'),
    last_success  timestamptz,
    last_error    text,
    last_error_at timestamptz,
    last_note     text
);

-- Papers stored but not yet matched; see SQLite's 0005 for why `version`.
CREATE TABLE match_queue (
    paper_key    text PRIMARY KEY REFERENCES papers (key) ON DELETE CASCADE,
    upvotes_only boolean NOT NULL,
    queued_at    timestamptz NOT NULL,
    version      integer NOT NULL DEFAULT 0
);
CREATE INDEX match_queue_by_time ON match_queue (queued_at DESC, paper_key DESC);

-- One owner hears of one paper once: the primary key is the promise.
CREATE TABLE matches (
    owner         text NOT NULL CHECK (owner LIKE 'user:_%' OR owner LIKE 'channel:_%'),
    paper_key     text NOT NULL REFERENCES papers (key),
    sub_ids       bigint[] NOT NULL CHECK (cardinality(sub_ids) > 0),
    words         text[] NOT NULL DEFAULT '{}',
    score         double precision NOT NULL DEFAULT 0,
    matched_at    timestamptz NOT NULL,
    digest_wanted boolean NOT NULL DEFAULT false,
    digest_id     bigint,  -- the digest delivery it went out in; NULL while it waits
    PRIMARY KEY (owner, paper_key)
);
CREATE INDEX matches_waiting_for_digest ON matches (owner)
    WHERE digest_wanted AND digest_id IS NULL;
CREATE INDEX matches_by_digest ON matches (digest_id) WHERE digest_id IS NOT NULL;
CREATE INDEX matches_by_owner_time ON matches (owner, matched_at);
CREATE INDEX matches_by_time ON matches (matched_at);
CREATE INDEX matches_by_sub ON matches USING gin (sub_ids);

CREATE TABLE meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- The vectorizer in use (one row) and one vector per paper made with it.
CREATE TABLE vectorizer (
    id        integer PRIMARY KEY CHECK (id = 1),
    version   integer NOT NULL CHECK (version >= 1),
    kind      text NOT NULL CHECK (kind <> ''),
    n_docs    integer NOT NULL CHECK (n_docs >= 0),
    fitted_at timestamptz NOT NULL,
    state     bytea NOT NULL
);
CREATE TABLE paper_vectors (
    paper_key text PRIMARY KEY REFERENCES papers (key) ON DELETE CASCADE,
    version   integer NOT NULL,
    vector    bytea NOT NULL
);
