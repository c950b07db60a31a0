-- Claims expire. A dispatcher that claims rows ('pending' -> 'sending') leases them until
-- `lease_until` and renews the lease of each message right before sending it. Rows left in
-- 'sending' by a process that died (the daemon, or the CLI's `subscribe` / `digest --now`)
-- become claimable again by any process once their lease has passed; nothing has to run at
-- startup to find them, and no process takes rows another live process is still sending.
ALTER TABLE deliveries ADD COLUMN lease_until TEXT;

-- Rows in 'sending' before this migration belonged to a process of an older version,
-- which is gone by now: their lease has expired.
UPDATE deliveries SET lease_until = updated_at WHERE state = 'sending';

CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE state = 'sending';
