-- Small facts paperbell keeps about itself between runs, one value per key, e.g. the hash
-- of the Discord command set last synced (so commands are re-synced only when they change).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
