-- The outbox: every message paperbell owes someone, written in the same transaction as
-- the match (or digest, or address change) that calls for it, then sent by the dispatcher.
--
-- kind 'alert' is one paper (paper_key); 'digest' one local date (digest_date, the row
-- IS the record of "the digest for that date exists"); 'confirm' one confirmation mail
-- (payload: address, issued). Keys are unique and stable across retries, e.g.
-- alert:email:user:3:2403.16981, digest:email:user:3:2026-11-21,
-- confirm:email:a@example.org:2026-11-21T09:00:00.000000+00:00.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    key             TEXT    NOT NULL UNIQUE CHECK (key <> ''),
    owner           TEXT    NOT NULL CHECK (owner GLOB 'user:?*' OR owner GLOB 'channel:?*'),
    channel         TEXT    NOT NULL CHECK (channel IN ('email', 'discord')),
    kind            TEXT    NOT NULL CHECK (kind IN ('alert', 'digest', 'confirm')),
    paper_key       TEXT,
    digest_date     TEXT,
    payload         TEXT    NOT NULL DEFAULT '{}' CHECK (json_type(payload) = 'object'),
    state           TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'suppressed')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TEXT    NOT NULL,
    last_error      TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,  -- the last change of state
    sent_at         TEXT,
    CHECK ((kind = 'alert') = (paper_key IS NOT NULL)),
    CHECK ((kind = 'digest') = (digest_date IS NOT NULL))
);

-- What the dispatcher claims: due pending rows, oldest first.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_by_owner ON deliveries (owner, state);
CREATE INDEX deliveries_by_paper ON deliveries (owner, paper_key) WHERE paper_key IS NOT NULL;
-- One digest per owner and local date, however often or from however many processes the
-- digest tick runs.
CREATE UNIQUE INDEX deliveries_one_digest ON deliveries (owner, digest_date)
    WHERE kind = 'digest';

-- Which digest a digest-wanted match went out in; NULL while it waits.
ALTER TABLE matches ADD COLUMN digest_id INTEGER REFERENCES deliveries (id);
CREATE INDEX matches_waiting_for_digest ON matches (owner)
    WHERE digest_wanted = 1 AND digest_id IS NULL;
CREATE INDEX matches_by_digest ON matches (digest_id) WHERE digest_id IS NOT NULL;

-- Every confirmation mail asked for: the per-address daily limit counts these, and a
-- 6-digit code is checked against the issue times of the last 24 hours. `wrong_codes`
-- counts wrong guesses, so a code cannot be found by trying all million of them.
CREATE TABLE confirmations (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    address     TEXT    NOT NULL COLLATE NOCASE CHECK (address <> ''),
    issued_at   TEXT    NOT NULL,
    wrong_codes INTEGER NOT NULL DEFAULT 0 CHECK (wrong_codes >= 0)
);
CREATE INDEX confirmations_by_address ON confirmations (address, issued_at);
