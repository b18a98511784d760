-- 0007_checks_without_lists: the CHECK constraints of the two tables written on hot paths say
-- `a = 'x' OR a = 'y'` instead of `a IN ('x', 'y')`.
--
-- Same conventions as 0001 to 0006. Never edit this file once applied anywhere: the migration
-- runner checks its SHA-256.
--
-- Why: SQLite evaluates a CHECK's `IN (list)` by building a temporary B-tree of the list on every
-- row written (`OpenEphemeral`: a B-tree and a pager opened and closed each time). An upsert of
-- `consent_state` checks two such lists twice (insert and update), which made each upsert about
-- five times slower than the row it writes (measured: 19 µs against 3.8 µs). Same rules, same
-- rows; SQLite cannot change a CHECK constraint, so both tables are rebuilt.
CREATE TABLE consent_state_new (
    business_id TEXT NOT NULL REFERENCES businesses (id),
    phone INTEGER NOT NULL,
    category TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status = 'opted_in' OR status = 'opted_out' OR status = 'pending_confirmation'),
    since INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    method TEXT,
    notice_id TEXT,
    last_opt_out_at INTEGER,
    basis TEXT CHECK (basis = 'express' OR basis = 'implied_purchase' OR basis = 'implied_inquiry'),
    basis_at INTEGER,
    PRIMARY KEY (business_id, phone, category),
    FOREIGN KEY (business_id, category) REFERENCES categories (business_id, name),
    CHECK ((basis IS NULL) = (basis_at IS NULL)),
    CHECK ((status = 'opted_out') = (basis IS NULL))
) STRICT, WITHOUT ROWID;
INSERT INTO consent_state_new SELECT * FROM consent_state;
DROP TABLE consent_state;
ALTER TABLE consent_state_new RENAME TO consent_state;

CREATE TABLE inbox_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    business_id TEXT NOT NULL REFERENCES businesses (id),
    received_at INTEGER NOT NULL,
    body BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state = 'pending' OR state = 'processed' OR state = 'failed'),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    note TEXT,
    claimed_until INTEGER,
    processed_at INTEGER
) STRICT;
INSERT INTO inbox_new SELECT * FROM inbox;
-- Ids are never reused (AUTOINCREMENT), even those of rows since removed: the counter moves too.
DELETE FROM sqlite_sequence WHERE name = 'inbox_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'inbox_new', seq FROM sqlite_sequence WHERE name = 'inbox';
DROP TABLE inbox;
ALTER TABLE inbox_new RENAME TO inbox;
CREATE INDEX inbox_by_state ON inbox (state, id);
CREATE INDEX inbox_by_business ON inbox (business_id, id);
