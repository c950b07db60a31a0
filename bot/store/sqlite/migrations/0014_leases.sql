-- Named leases between processes (issue 15): the daemon's leader holds 'leader' and renews
-- it; a row whose expires_at has passed is free for anyone. Times are ISO-8601 UTC text.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL CHECK (holder <> ''),
    expires_at TEXT NOT NULL
);
