-- PostgreSQL schema, part two: people, their addresses and subscriptions, the outbox, and
-- ratings. The same tables as SQLite's 0002-0010, in PostgreSQL's types: booleans are
-- boolean, datetimes timestamptz, lists text[], JSON objects jsonb. Owners are text keys:
-- 'user:<users.id>' or 'channel:<discord id>'.

-- Identity columns are never reused: user and subscription ids go into signed links that
-- never expire, so an id must never name someone else after a row is deleted.
-- Addresses are unique and found regardless of case (SQLite: COLLATE NOCASE).
CREATE TABLE users (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    discord_id              text UNIQUE CHECK (discord_id IS NULL OR discord_id <> ''),
    email                   text CHECK (email IS NULL OR email <> ''),
    email_verified          boolean NOT NULL DEFAULT false,
    email_strikes           integer NOT NULL DEFAULT 0 CHECK (email_strikes >= 0),
    email_suppressed        boolean NOT NULL DEFAULT false,
    email_suppressed_reason text,
    timezone                text    NOT NULL DEFAULT 'UTC' CHECK (timezone <> ''),
    digest_hour             integer NOT NULL DEFAULT 8 CHECK (digest_hour BETWEEN 0 AND 23),
    digest_frequency        text    NOT NULL DEFAULT 'daily'
                            CHECK (digest_frequency IN ('daily', 'weekdays', 'weekly', 'off')),
    digest_weekday          integer NOT NULL DEFAULT 0 CHECK (digest_weekday BETWEEN 0 AND 6),
    paused                  boolean NOT NULL DEFAULT false,
    discord_dm_channel      text,
    discord_unreachable     boolean NOT NULL DEFAULT false,
    discord_notice_pending  boolean NOT NULL DEFAULT false,
    -- Manage links carry the generation they were signed with; a new one revokes older.
    manage_generation       integer NOT NULL DEFAULT 0 CHECK (manage_generation >= 0),
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_by_email ON users (lower(email));

-- `deliver`: the delivery modes, sorted (discord, email_digest, email_instant). One owner
-- cannot hold the same normalized query twice. A paused subscription matches nothing.
CREATE TABLE subscriptions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner         text NOT NULL CHECK (owner LIKE 'user:_%' OR owner LIKE 'channel:_%'),
    guild_id      text,
    query         text NOT NULL CHECK (query <> ''),
    normalized    text NOT NULL CHECK (normalized <> ''),
    deliver       text[] NOT NULL CHECK (cardinality(deliver) > 0),
    created_at    timestamptz NOT NULL,
    paused        boolean NOT NULL DEFAULT false,
    -- Optional: instant alerts scored below it wait for the digest.
    min_relevance double precision
                  CHECK (min_relevance IS NULL OR (min_relevance >= 0 AND min_relevance <= 1)),
    UNIQUE (owner, normalized)
);

-- A counter bumped by every change to subscriptions, by any process: the match step
-- reloads its compiled index only when it moved. Once per statement, not per row.
CREATE TABLE subscription_changes (
    id integer PRIMARY KEY CHECK (id = 1),
    n  bigint  NOT NULL
);
INSERT INTO subscription_changes (id, n) VALUES (1, 0);
CREATE FUNCTION paperbell_subscriptions_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE subscription_changes SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER subscriptions_changed AFTER INSERT OR UPDATE OR DELETE ON subscriptions
    FOR EACH STATEMENT EXECUTE FUNCTION paperbell_subscriptions_changed();

-- The outbox: every message paperbell owes someone, written in the same transaction as
-- the match (or digest, or address change) that calls for it. See SQLite's 0003 for the
-- kinds and keys. A claim moves rows 'pending' -> 'sending' until `lease_until`; a row
-- whose lease ran out (its process died) is claimable again by any process.
CREATE TABLE deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key             text    NOT NULL UNIQUE CHECK (key <> ''),
    owner           text    NOT NULL CHECK (owner LIKE 'user:_%' OR owner LIKE 'channel:_%'),
    channel         text    NOT NULL CHECK (channel IN ('email', 'discord')),
    kind            text    NOT NULL CHECK (kind IN ('alert', 'digest', 'confirm')),
    paper_key       text,
    digest_date     date,
    payload         jsonb   NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
    state           text    NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'suppressed')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL,
    lease_until     timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,  -- the last change of state
    sent_at         timestamptz,
    CHECK ((kind = 'alert') = (paper_key IS NOT NULL)),
    CHECK ((kind = 'digest') = (digest_date IS NOT NULL))
);
-- The claim's three walks, each in order (see claims.py): transactional mail first, then
-- rows whose lease ran out, then every due pending row oldest first.
CREATE INDEX deliveries_due_by_kind ON deliveries (kind, next_attempt_at, id)
    WHERE state = 'pending';
CREATE INDEX deliveries_leased ON deliveries (lease_until, id) WHERE state = 'sending';
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX deliveries_by_owner ON deliveries (owner, state);
CREATE INDEX deliveries_by_paper ON deliveries (owner, paper_key) WHERE paper_key IS NOT NULL;
-- One digest per owner and local date, however many processes run the digest tick.
CREATE UNIQUE INDEX deliveries_one_digest ON deliveries (owner, digest_date)
    WHERE kind = 'digest';
-- Manage-link mails counted per owner and day (the daily cap).
CREATE INDEX deliveries_confirm_by_owner ON deliveries (owner, created_at)
    WHERE kind = 'confirm';

-- Which digest a match went out in (the column is 0001's; deliveries exist only now).
ALTER TABLE matches ADD FOREIGN KEY (digest_id) REFERENCES deliveries (id);

-- Every confirmation mail asked for: the per-address daily limit counts these, a code is
-- checked against the issue times of the last 24 hours, `wrong_codes` caps guessing.
CREATE TABLE confirmations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id),
    address     text   NOT NULL CHECK (address <> ''),
    issued_at   timestamptz NOT NULL,
    wrong_codes integer NOT NULL DEFAULT 0 CHECK (wrong_codes >= 0)
);
CREATE INDEX confirmations_by_address ON confirmations (lower(address), issued_at);

-- One rating per (user, paper); the latest wins. sub_id: the subscription that brought
-- the paper (NULL when unknown); kept when it is removed.
CREATE TABLE feedback (
    user_id   bigint  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    paper_key text    NOT NULL REFERENCES papers (key) ON DELETE CASCADE,
    rating    integer NOT NULL CHECK (rating IN (-1, 1)),
    sub_id    bigint,
    rated_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, paper_key)
);
