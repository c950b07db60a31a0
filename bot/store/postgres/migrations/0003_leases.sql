-- Named leases between processes (issue 15): the daemon's leader holds 'leader' and renews
-- it; a row whose expires_at has passed is free for anyone. The database's clock decides,
-- so processes on machines whose clocks disagree still agree on who holds it.
CREATE TABLE leases (
    name       text PRIMARY KEY,
    holder     text NOT NULL CHECK (holder <> ''),
    expires_at timestamptz NOT NULL
);
