-- Learned relevance: the fitted TF-IDF vocabulary, one vector per paper, and each user's
-- 👍 / 👎. (Numbered 0010 on the lead's plan; renumber at merge if 0009 is taken.)

-- The vectorizer in use. Only one row: a refit replaces it and every vector in the same
-- transaction, so all stored vectors always share its vocabulary.
CREATE TABLE vectorizer (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    version   INTEGER NOT NULL CHECK (version >= 1),
    kind      TEXT    NOT NULL CHECK (kind <> ''),
    n_docs    INTEGER NOT NULL CHECK (n_docs >= 0),
    fitted_at TEXT    NOT NULL,
    state     BLOB    NOT NULL
);

-- A paper's vector: float32 weights and int32 feature indices, L2-normalised.
CREATE TABLE paper_vectors (
    paper_key TEXT    PRIMARY KEY REFERENCES papers (key) ON DELETE CASCADE,
    version   INTEGER NOT NULL,
    vector    BLOB    NOT NULL
) WITHOUT ROWID;

-- One rating per (user, paper); the latest wins. sub_id: the subscription that brought the
-- paper (NULL from recommend, the CLI or when unknown); kept when it is removed.
CREATE TABLE feedback (
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    paper_key TEXT    NOT NULL REFERENCES papers (key) ON DELETE CASCADE,
    rating    INTEGER NOT NULL CHECK (rating IN (-1, 1)),
    sub_id    INTEGER,
    rated_at  TEXT    NOT NULL,
    PRIMARY KEY (user_id, paper_key)
) WITHOUT ROWID;

-- Optional per subscription: instant alerts scored below it wait for the digest.
ALTER TABLE subscriptions ADD COLUMN min_relevance REAL
    CHECK (min_relevance IS NULL OR (min_relevance >= 0 AND min_relevance <= 1));
