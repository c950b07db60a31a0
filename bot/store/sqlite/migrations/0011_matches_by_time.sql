-- Why (not) this paper, and empty days explained (issue 14): `status` counts the matches
-- of the last 24 hours, across owners, without reading the whole table.
CREATE INDEX matches_by_time ON matches (matched_at);
