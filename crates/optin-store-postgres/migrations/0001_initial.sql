-- optin's PostgreSQL schema, first version.
--
-- Conventions:
-- * Times are bigint nanoseconds since the Unix epoch (UTC). jiff keeps nanoseconds and the
--   stores must give back exactly what they were given; timestamptz only keeps microseconds.
-- * Phone numbers are their E.164 digits as a bigint (`PhoneNumber::key`).
-- * Hashes are lower-case hex SHA-256 digests.
-- * The ledger (`consent_events`) is the truth; `consent_state` and `chain_heads` are what it
--   folds to, written in the same transaction as each event.

-- The operator: one row holding the hash of the operator token (never the token itself).
CREATE TABLE operator (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    token_hash text NOT NULL,
    updated_at bigint NOT NULL
);
COMMENT ON TABLE operator IS 'The operator token''s hash (a single row).';

-- Tenants. `seq` keeps creation order for listings when two creation times are equal.
CREATE TABLE businesses (
    id uuid PRIMARY KEY,
    seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    name text NOT NULL CHECK (name <> ''),
    created_at bigint NOT NULL
);
COMMENT ON TABLE businesses IS 'Tenants: each business has its own categories, keys, notices and ledger chain.';

-- A business's message categories. A category's slot is its bit in `ConsentBits`: slots are
-- 0, 1, 2... in creation order and never change; categories are never renamed nor removed.
CREATE TABLE categories (
    business_id uuid NOT NULL REFERENCES businesses (id),
    slot smallint NOT NULL CHECK (slot >= 0 AND slot < 64),
    name text NOT NULL,
    template_category text NOT NULL CHECK (template_category IN ('marketing', 'utility', 'authentication')),
    CONSTRAINT categories_pkey PRIMARY KEY (business_id, slot),
    CONSTRAINT categories_name_key UNIQUE (business_id, name)
);
COMMENT ON TABLE categories IS 'Message categories per business; slot = bit position in consent bits, stable forever.';

-- Other names a notice may use for the business, in the order they were given.
CREATE TABLE brand_names (
    business_id uuid NOT NULL REFERENCES businesses (id),
    position smallint NOT NULL CHECK (position >= 0),
    name text NOT NULL,
    CONSTRAINT brand_names_pkey PRIMARY KEY (business_id, position)
);
COMMENT ON TABLE brand_names IS 'Extra brand names a notice may use to name the business (replaced as a whole).';

-- API keys. Only the hash of a key's secret is stored; a revoked key stays for the audit trail.
CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    business_id uuid NOT NULL REFERENCES businesses (id),
    secret_hash text NOT NULL,
    label text NOT NULL,
    created_at bigint NOT NULL,
    revoked_at bigint,
    CONSTRAINT api_keys_secret_hash_key UNIQUE (secret_hash)
);
CREATE INDEX api_keys_business ON api_keys (business_id);
COMMENT ON TABLE api_keys IS 'Business API keys: secret hashes only; revoked_at set once, never cleared.';

-- Notice texts, immutable, numbered 1, 2, 3... per business in registration order.
CREATE TABLE notices (
    id uuid PRIMARY KEY,
    business_id uuid NOT NULL REFERENCES businesses (id),
    version integer NOT NULL CHECK (version > 0),
    language text NOT NULL,
    text text NOT NULL,
    text_sha256 text NOT NULL CHECK (text_sha256 ~ '^[0-9a-f]{64}$'),
    warnings jsonb NOT NULL,
    created_at bigint NOT NULL,
    CONSTRAINT notices_version_key UNIQUE (business_id, version)
);
COMMENT ON TABLE notices IS 'Registered notice texts (exact text, its SHA-256 and the check''s warnings); never changed.';

-- The ledger: every consent event of every business, each chained to the one before it in its
-- business's chain. `content` is the exact JSON string that was hashed (never re-serialized);
-- `event_id` and `phone` repeat what the content says so the ledger can be indexed, and the
-- verifier checks that they agree with it. Append-only (see the trigger below).
CREATE TABLE consent_events (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    business_id uuid NOT NULL REFERENCES businesses (id),
    chain_index bigint NOT NULL CHECK (chain_index > 0),
    event_id uuid NOT NULL,
    phone bigint NOT NULL,
    recorded_at bigint NOT NULL,
    content text NOT NULL,
    content_hash text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    prev_hash text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    CONSTRAINT consent_events_event_id_key UNIQUE (event_id),
    CONSTRAINT consent_events_chain_index_key UNIQUE (business_id, chain_index)
);
CREATE INDEX consent_events_contact ON consent_events (business_id, phone, chain_index);
COMMENT ON TABLE consent_events IS 'The hash-chained consent ledger, one chain per business; append-only.';

CREATE FUNCTION consent_events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'consent_events is append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER consent_events_append_only
    BEFORE UPDATE OR DELETE ON consent_events
    FOR EACH ROW EXECUTE FUNCTION consent_events_refuse_change();

CREATE TRIGGER consent_events_no_truncate
    BEFORE TRUNCATE ON consent_events
    FOR EACH STATEMENT EXECUTE FUNCTION consent_events_refuse_change();

-- The current consent per (business, contact, category): the ledger folded by
-- `optin_core::consent::apply`, updated in the same transaction as each event. Decisions read it.
CREATE TABLE consent_state (
    business_id uuid NOT NULL,
    phone bigint NOT NULL,
    category text NOT NULL,
    status text NOT NULL CHECK (status IN ('opted_in', 'opted_out')),
    since bigint NOT NULL,
    event_id uuid NOT NULL,
    method text,
    notice_id uuid,
    last_opt_out_at bigint,
    CONSTRAINT consent_state_pkey PRIMARY KEY (business_id, phone, category),
    CONSTRAINT consent_state_category_fkey FOREIGN KEY (business_id, category)
        REFERENCES categories (business_id, name)
);
COMMENT ON TABLE consent_state IS 'Current consent per contact and category, folded from consent_events.';

-- The head of each business's chain: locked (SELECT ... FOR UPDATE) by every append, which
-- serializes a business's appends across processes. The row exists from the business's
-- creation on, with last_index 0 and no hash until the first event.
CREATE TABLE chain_heads (
    business_id uuid PRIMARY KEY REFERENCES businesses (id),
    last_index bigint NOT NULL CHECK (last_index >= 0),
    last_hash text CHECK (last_hash ~ '^[0-9a-f]{64}$'),
    CHECK ((last_index = 0) = (last_hash IS NULL))
);
COMMENT ON TABLE chain_heads IS 'Each business''s ledger head; its row lock serializes appends to the chain.';

-- Responses remembered per Idempotency-Key; the first one saved is kept.
CREATE TABLE saved_responses (
    business_id uuid NOT NULL REFERENCES businesses (id),
    key text NOT NULL,
    request_fingerprint text NOT NULL,
    status integer NOT NULL CHECK (status BETWEEN 0 AND 65535),
    body text NOT NULL,
    created_at bigint NOT NULL,
    CONSTRAINT saved_responses_pkey PRIMARY KEY (business_id, key)
);
COMMENT ON TABLE saved_responses IS 'Responses replayed for a repeated Idempotency-Key (first one wins).';
