-- 0002_whatsapp: the WhatsApp channel.
--
-- Same conventions as 0001: STRICT tables, times as INTEGER nanoseconds since the Unix epoch, ids
-- as TEXT UUIDs, phone numbers as INTEGER E.164 digits (`PhoneNumber::key`), JSON as TEXT.
-- Never edit this file once applied anywhere: the migration runner checks its SHA-256.

-- The WhatsApp business numbers a business sends from and receives webhooks for. Meta's
-- `phone_number_id` is globally unique: webhooks name it, and it routes them to one business.
-- `credential` (an access token or a 360dialog API key) is a secret: never shown or logged.
CREATE TABLE senders (
    phone_number_id TEXT PRIMARY KEY,
    business_id TEXT NOT NULL REFERENCES businesses (id),
    display_phone_number TEXT NOT NULL,
    waba_id TEXT NOT NULL,
    provider TEXT NOT NULL CHECK (provider IN ('cloud_api', '360dialog')),
    base_url TEXT NOT NULL,
    api_version TEXT NOT NULL,
    credential TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX senders_by_business ON senders (business_id, created_at);

-- Named JSON documents of per-business settings (`webhook`, `whatsapp_policy`), validated by the
-- use cases; opaque here. Replaced as a whole.
CREATE TABLE settings_documents (
    business_id TEXT NOT NULL REFERENCES businesses (id),
    name TEXT NOT NULL,
    content TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (business_id, name)
) STRICT, WITHOUT ROWID;

-- The webhook inbox: every delivery exactly as received, durable before the endpoint answers 200,
-- then processed by workers. `id` is never reused (AUTOINCREMENT): it is the delivery's public id.
-- A worker claims pending rows by setting `claimed_until` (a lease: after a crash, the row is
-- claimed again once it expired) and counting `attempts`; finishing sets `state`, `note` and
-- `processed_at` and releases the claim.
CREATE TABLE inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    business_id TEXT NOT NULL REFERENCES businesses (id),
    received_at INTEGER NOT NULL,
    body BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'processed', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    note TEXT,
    claimed_until INTEGER,
    processed_at INTEGER
) STRICT;
-- Claiming: the oldest pending rows.
CREATE INDEX inbox_by_state ON inbox (state, id);
-- Listing a business's deliveries, newest first.
CREATE INDEX inbox_by_business ON inbox (business_id, id);

-- People seen writing in a business's threads, known by phone number, by business-scoped user id,
-- or both (linked when a message carries both; two rows that turn out to be one person are merged
-- into the phone's row). `last_inbound_at` (the start of the 24-hour service window) only moves
-- forward; `last_asked_at` is when optin last asked the contact to opt in.
CREATE TABLE thread_contacts (
    id INTEGER PRIMARY KEY,
    business_id TEXT NOT NULL REFERENCES businesses (id),
    phone INTEGER,
    user_id TEXT,
    last_inbound_at INTEGER,
    last_asked_at INTEGER,
    CHECK (phone IS NOT NULL OR user_id IS NOT NULL)
) STRICT;
CREATE UNIQUE INDEX thread_contacts_by_phone ON thread_contacts (business_id, phone) WHERE phone IS NOT NULL;
CREATE UNIQUE INDEX thread_contacts_by_user_id ON thread_contacts (business_id, user_id) WHERE user_id IS NOT NULL;

-- Keys of consent events recorded from webhooks (delivered at least once): a key is inserted in
-- the same transaction as its event, so the same key never records a second event.
CREATE TABLE consent_dedupe (
    business_id TEXT NOT NULL REFERENCES businesses (id),
    key TEXT NOT NULL,
    PRIMARY KEY (business_id, key)
) STRICT, WITHOUT ROWID;

-- A business's message templates by (name, language), as imported from the platform and kept up
-- to date by its webhooks. `updated_at` is the platform time of the last change applied: older
-- changes (webhooks arrive out of order) are ignored. `components` is the JSON array as imported.
CREATE TABLE templates (
    business_id TEXT NOT NULL REFERENCES businesses (id),
    name TEXT NOT NULL,
    language TEXT NOT NULL,
    category TEXT NOT NULL CHECK (category IN ('marketing', 'utility', 'authentication')),
    status TEXT NOT NULL,
    quality TEXT,
    platform_id TEXT,
    linked_category TEXT,
    components TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (business_id, name, language)
) STRICT, WITHOUT ROWID;

-- Quality signals from webhooks (message statuses, template and number quality, account events,
-- user preferences, possible opt-outs), kept for people and reports. `dedupe_key` makes recording
-- idempotent per business. `error_codes` is a JSON array of integers, `detail` a JSON value.
CREATE TABLE signals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    business_id TEXT NOT NULL REFERENCES businesses (id),
    dedupe_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    phone_number_id TEXT,
    phone INTEGER,
    user_id TEXT,
    message_id TEXT,
    template_name TEXT,
    template_language TEXT,
    status TEXT,
    error_codes TEXT NOT NULL,
    detail TEXT NOT NULL,
    UNIQUE (business_id, dedupe_key)
) STRICT;
-- Paging through a business's signals in order (entries of an index on business_id are sorted
-- by rowid within a business), and the filters people use most.
CREATE INDEX signals_by_business ON signals (business_id, id);
CREATE INDEX signals_by_kind ON signals (business_id, kind, occurred_at);
CREATE INDEX signals_by_message ON signals (business_id, message_id) WHERE message_id IS NOT NULL;
CREATE INDEX signals_by_phone ON signals (business_id, phone) WHERE phone IS NOT NULL;

-- Messages optin sent itself in threads (opt-in questions, opt-out confirmations), so that a
-- reply naming one (`context.id`) is understood. `categories` is a JSON array of category names,
-- in button order.
CREATE TABLE sent_messages (
    business_id TEXT NOT NULL REFERENCES businesses (id),
    message_id TEXT NOT NULL,
    phone INTEGER NOT NULL,
    phone_number_id TEXT NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('opt_in_question', 'opt_out_confirmation')),
    categories TEXT NOT NULL,
    notice_id TEXT,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (business_id, message_id)
) STRICT, WITHOUT ROWID;
