-- 0001_initial: optin's first schema.
--
-- Conventions: times are INTEGER nanoseconds since the Unix epoch (exact round trips of the
-- core's timestamps; 1677 to 2262); ids are TEXT UUIDs
-- (hyphenated, lower case); phone numbers are INTEGER E.164 digits (`PhoneNumber::key`); hashes
-- are lower-case hex TEXT. Tables are STRICT so that a wrong type is refused, not converted.
-- Never edit this file once applied anywhere: the migration runner checks its SHA-256.

-- The operator's credentials: one row, holding only the SHA-256 of the operator token.
CREATE TABLE operator (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    token_hash TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- Tenants. A business is never deleted: its ledger refers to it.
CREATE TABLE businesses (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- A business's message categories. `slot` is the category's bit in consent bits: fixed for the
-- business's lifetime, because categories are only ever appended (slots 0..63).
CREATE TABLE categories (
    business_id TEXT NOT NULL REFERENCES businesses (id),
    slot INTEGER NOT NULL CHECK (slot BETWEEN 0 AND 63),
    name TEXT NOT NULL,
    template_category TEXT NOT NULL CHECK (template_category IN ('marketing', 'utility', 'authentication')),
    PRIMARY KEY (business_id, slot),
    UNIQUE (business_id, name)
) STRICT, WITHOUT ROWID;

-- The extra brand names a notice may use to name its business, in the order they were given.
-- Replaced as a whole by `set_brand_names`.
CREATE TABLE brand_names (
    business_id TEXT NOT NULL REFERENCES businesses (id),
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (business_id, position)
) STRICT, WITHOUT ROWID;

-- Business API keys. Only the SHA-256 of the secret is kept (looked up on every request); a
-- revoked key keeps its row, with `revoked_at` set, so that it stays listed.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    business_id TEXT NOT NULL REFERENCES businesses (id),
    secret_hash TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
CREATE INDEX api_keys_by_business ON api_keys (business_id, created_at);

-- Notices: the exact texts people were shown when opting in. Immutable; a changed text is a new
-- row with the business's next `version` (1, 2, 3...). `warnings` is a JSON array of warning codes.
CREATE TABLE notices (
    id TEXT PRIMARY KEY,
    business_id TEXT NOT NULL REFERENCES businesses (id),
    version INTEGER NOT NULL CHECK (version >= 1),
    language TEXT NOT NULL,
    text TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    warnings TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (business_id, version)
) STRICT;

-- The consent ledger: every opt-in and opt-out, append-only (see the triggers below).
-- `seq` is a global, never reused order of insertion (AUTOINCREMENT): processes sharing the file
-- follow each other's writes by reading `seq > last seen`. Each business has its own hash chain:
-- `chain_index` 1, 2, 3..., `content` is the event's canonical JSON, `content_hash` its SHA-256,
-- `hash` = SHA-256(prev_hash || content_hash). `event_id` and `phone` repeat what `content` says,
-- for lookups; verification checks that they agree.
CREATE TABLE consent_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    business_id TEXT NOT NULL REFERENCES businesses (id),
    chain_index INTEGER NOT NULL CHECK (chain_index >= 1),
    event_id TEXT NOT NULL,
    phone INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    content TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    UNIQUE (business_id, chain_index)
) STRICT;
CREATE INDEX consent_events_by_contact ON consent_events (business_id, phone, chain_index);

-- Events are facts: they are never changed or removed.
CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events
BEGIN
    SELECT RAISE(ABORT, 'consent_events is append-only');
END;
CREATE TRIGGER consent_events_no_delete BEFORE DELETE ON consent_events
BEGIN
    SELECT RAISE(ABORT, 'consent_events is append-only');
END;

-- The current consent of each contact per category: the projection of the ledger that
-- `optin_core::consent::apply` maintains, written in the same transaction as the event.
CREATE TABLE consent_state (
    business_id TEXT NOT NULL REFERENCES businesses (id),
    phone INTEGER NOT NULL,
    category TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('opted_in', 'opted_out')),
    since INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    method TEXT,
    notice_id TEXT,
    last_opt_out_at INTEGER,
    PRIMARY KEY (business_id, phone, category),
    FOREIGN KEY (business_id, category) REFERENCES categories (business_id, name)
) STRICT, WITHOUT ROWID;

-- The head of each business's chain (its last index and hash), written with each event. Kept apart
-- from the events so that removing events at the end of a chain is detected.
CREATE TABLE chain_heads (
    business_id TEXT PRIMARY KEY REFERENCES businesses (id),
    last_index INTEGER NOT NULL CHECK (last_index >= 1),
    last_hash TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- Responses remembered per `Idempotency-Key`, replayed when the same key comes again.
CREATE TABLE saved_responses (
    business_id TEXT NOT NULL REFERENCES businesses (id),
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (business_id, key)
) STRICT;

-- One counter, bumped by triggers on every change to businesses, categories, brand names and API
-- keys, whoever makes it. Processes that cache these (API key lookups, businesses) compare it to
-- know when to drop their caches.
CREATE TABLE tenancy_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
) STRICT;
INSERT INTO tenancy_version (id, version) VALUES (1, 0);

CREATE TRIGGER businesses_bump_on_insert AFTER INSERT ON businesses
BEGIN UPDATE tenancy_version SET version = version + 1; END;
CREATE TRIGGER businesses_bump_on_update AFTER UPDATE ON businesses
BEGIN UPDATE tenancy_version SET version = version + 1; END;
CREATE TRIGGER businesses_bump_on_delete AFTER DELETE ON businesses
BEGIN UPDATE tenancy_version SET version = version + 1; END;
CREATE TRIGGER categories_bump_on_insert AFTER INSERT ON categories
BEGIN UPDATE tenancy_version SET version = version + 1; END;
CREATE TRIGGER categories_bump_on_update AFTER UPDATE ON categories
BEGIN UPDATE tenancy_version SET version = version + 1; END;
CREATE TRIGGER categories_bump_on_delete AFTER DELETE ON categories
BEGIN UPDATE tenancy_version SET version = version + 1; END;
CREATE TRIGGER brand_names_bump_on_insert AFTER INSERT ON brand_names
BEGIN UPDATE tenancy_version SET version = version + 1; END;
CREATE TRIGGER brand_names_bump_on_update AFTER UPDATE ON brand_names
BEGIN UPDATE tenancy_version SET version = version + 1; END;
CREATE TRIGGER brand_names_bump_on_delete AFTER DELETE ON brand_names
BEGIN UPDATE tenancy_version SET version = version + 1; END;
CREATE TRIGGER api_keys_bump_on_insert AFTER INSERT ON api_keys
BEGIN UPDATE tenancy_version SET version = version + 1; END;
CREATE TRIGGER api_keys_bump_on_update AFTER UPDATE ON api_keys
BEGIN UPDATE tenancy_version SET version = version + 1; END;
CREATE TRIGGER api_keys_bump_on_delete AFTER DELETE ON api_keys
BEGIN UPDATE tenancy_version SET version = version + 1; END;
