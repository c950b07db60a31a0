-- People, what they subscribed to, and which papers each owner has been told about.
-- Owners are text keys used across tables: 'user:<users.id>' or 'channel:<discord id>'.
-- Booleans are 0/1 integers; datetimes ISO-8601 UTC text as in 0001.

-- AUTOINCREMENT: user and subscription ids go into signed links that never expire, so an
-- id must never be reused for someone else after a row is deleted.
CREATE TABLE users (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    discord_id              TEXT UNIQUE CHECK (discord_id IS NULL OR discord_id <> ''),
    email                   TEXT UNIQUE COLLATE NOCASE CHECK (email IS NULL OR email <> ''),
    email_verified          INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    email_strikes           INTEGER NOT NULL DEFAULT 0 CHECK (email_strikes >= 0),
    email_suppressed        INTEGER NOT NULL DEFAULT 0 CHECK (email_suppressed IN (0, 1)),
    email_suppressed_reason TEXT,
    timezone                TEXT    NOT NULL DEFAULT 'UTC' CHECK (timezone <> ''),
    digest_hour             INTEGER NOT NULL DEFAULT 8 CHECK (digest_hour BETWEEN 0 AND 23),
    digest_frequency        TEXT    NOT NULL DEFAULT 'daily'
                            CHECK (digest_frequency IN ('daily', 'weekdays', 'weekly', 'off')),
    digest_weekday          INTEGER NOT NULL DEFAULT 0 CHECK (digest_weekday BETWEEN 0 AND 6),
    paused                  INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    discord_dm_channel      TEXT,
    discord_unreachable     INTEGER NOT NULL DEFAULT 0 CHECK (discord_unreachable IN (0, 1)),
    discord_notice_pending  INTEGER NOT NULL DEFAULT 0 CHECK (discord_notice_pending IN (0, 1)),
    created_at              TEXT    NOT NULL,
    updated_at              TEXT    NOT NULL
);

-- `deliver` is a JSON array of delivery modes (discord, email_instant, email_digest).
-- One owner cannot hold the same normalized query twice.
CREATE TABLE subscriptions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    owner      TEXT NOT NULL CHECK (owner GLOB 'user:?*' OR owner GLOB 'channel:?*'),
    guild_id   TEXT,
    query      TEXT NOT NULL CHECK (query <> ''),
    normalized TEXT NOT NULL CHECK (normalized <> ''),
    deliver    TEXT NOT NULL
               CHECK (json_type(deliver) = 'array' AND json_array_length(deliver) > 0),
    created_at TEXT NOT NULL,
    UNIQUE (owner, normalized)
);

-- A recipient hears of a paper once, whatever the source or channel: the primary key is
-- the promise, and INSERT OR IGNORE keeps a second cycle from alerting again.
-- `sub_ids` lists every subscription of the owner that caught the paper; `words` the
-- paper's words that matched. `digest_wanted` marks a match waiting for a digest.
CREATE TABLE matches (
    owner         TEXT    NOT NULL,
    paper_key     TEXT    NOT NULL REFERENCES papers (key),
    sub_ids       TEXT    NOT NULL
                  CHECK (json_type(sub_ids) = 'array' AND json_array_length(sub_ids) > 0),
    words         TEXT    NOT NULL DEFAULT '[]' CHECK (json_type(words) = 'array'),
    score         REAL    NOT NULL DEFAULT 0,
    matched_at    TEXT    NOT NULL,
    digest_wanted INTEGER NOT NULL DEFAULT 0 CHECK (digest_wanted IN (0, 1)),
    PRIMARY KEY (owner, paper_key)
) WITHOUT ROWID;
