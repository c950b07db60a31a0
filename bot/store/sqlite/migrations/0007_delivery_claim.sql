-- Claiming transactional mail first: confirmations jump the queue of bulk alerts and
-- digests, so the claim looks them up by kind (a range of this index) before it walks the
-- due rows oldest first (deliveries_due). The row id is in the index for the tie-break.
CREATE INDEX deliveries_due_by_kind ON deliveries (kind, next_attempt_at) WHERE state = 'pending';
