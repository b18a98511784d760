-- The WhatsApp channel: senders, settings, the webhook inbox, contacts seen in threads,
-- webhook deduplication of consent, templates, quality signals and the messages optin sent.
--
-- The conventions of 0001 hold: times are bigint nanoseconds since the Unix epoch, phone numbers
-- are their E.164 digits as a bigint, every table is scoped by `business_id`. Values the platform
-- defines (template statuses, quality scores, signal kinds) are not constrained here: Meta adds
-- values often and the store parses them on the way out. Values optin defines are checked.

-- The business phone numbers a business sends from and gets webhooks for. Meta's
-- `phone_number_id` is globally unique: a number belongs to one business only. `seq` keeps
-- registration order when two creation times are equal.
CREATE TABLE senders (
    phone_number_id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    business_id uuid NOT NULL REFERENCES businesses (id),
    display_phone_number text NOT NULL,
    waba_id text NOT NULL,
    provider text NOT NULL CHECK (provider IN ('cloud_api', '360dialog')),
    base_url text NOT NULL,
    api_version text NOT NULL,
    credential text NOT NULL,
    created_at bigint NOT NULL,
    CONSTRAINT senders_pkey PRIMARY KEY (phone_number_id)
);
CREATE INDEX senders_business ON senders (business_id, created_at, seq);
COMMENT ON TABLE senders IS 'WhatsApp business numbers per business; credential is a secret (token or API key).';

-- Per-business JSON settings documents (`webhook`, `whatsapp_policy`), validated before they
-- are stored and kept opaque here.
CREATE TABLE settings_documents (
    business_id uuid NOT NULL REFERENCES businesses (id),
    name text NOT NULL,
    content text NOT NULL,
    updated_at bigint NOT NULL,
    CONSTRAINT settings_documents_pkey PRIMARY KEY (business_id, name)
);
COMMENT ON TABLE settings_documents IS 'Named settings documents per business (replaced as a whole).';

-- Webhook deliveries exactly as received, processed later by any server. A processor claims
-- pending deliveries with `FOR UPDATE SKIP LOCKED` and holds each until `claimed_until`; a claim
-- that expires (the processor crashed) makes the delivery claimable again.
CREATE TABLE inbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    business_id uuid NOT NULL REFERENCES businesses (id),
    received_at bigint NOT NULL,
    body bytea NOT NULL,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'processed', 'failed')),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    note text,
    claimed_until bigint,
    processed_at bigint
);
-- Claiming scans only what is pending, oldest first.
CREATE INDEX inbox_pending ON inbox (id) WHERE state = 'pending';
-- Listing a business's deliveries, newest first.
CREATE INDEX inbox_business ON inbox (business_id, id);
COMMENT ON TABLE inbox IS 'Webhook deliveries as received: pending until processed (or failed), claimed with a lease.';

-- People seen writing in WhatsApp threads, known by phone number, by business-scoped user id,
-- or both; each identity belongs to one contact of the business. `last_inbound_at` starts the
-- 24-hour service window; `last_asked_at` is when optin last asked the contact to opt in.
CREATE TABLE thread_contacts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    business_id uuid NOT NULL REFERENCES businesses (id),
    phone bigint,
    user_id text,
    last_inbound_at bigint,
    last_asked_at bigint,
    CHECK (phone IS NOT NULL OR user_id IS NOT NULL)
);
CREATE UNIQUE INDEX thread_contacts_phone ON thread_contacts (business_id, phone) WHERE phone IS NOT NULL;
CREATE UNIQUE INDEX thread_contacts_user_id ON thread_contacts (business_id, user_id) WHERE user_id IS NOT NULL;
COMMENT ON TABLE thread_contacts IS 'Contacts seen in threads (by phone and/or user id) and their service window.';

-- Keys of consent events recorded from webhooks (delivered at least once): inserted in the same
-- transaction as the event, so a key is used by exactly one event.
CREATE TABLE consent_dedupe (
    business_id uuid NOT NULL REFERENCES businesses (id),
    key text NOT NULL,
    event_id uuid NOT NULL,
    recorded_at bigint NOT NULL,
    CONSTRAINT consent_dedupe_pkey PRIMARY KEY (business_id, key)
);
COMMENT ON TABLE consent_dedupe IS 'Dedupe keys of consent events from webhooks: one event per key.';

-- A business's message templates by (name, language), imported and then moved by webhooks.
-- `updated_at` is the time of the latest change applied: older changes are ignored.
CREATE TABLE templates (
    business_id uuid NOT NULL REFERENCES businesses (id),
    name text NOT NULL,
    language text NOT NULL,
    category text NOT NULL CHECK (category IN ('marketing', 'utility', 'authentication')),
    status text NOT NULL,
    quality text,
    platform_id text,
    linked_category text,
    components text NOT NULL,
    updated_at bigint NOT NULL,
    CONSTRAINT templates_pkey PRIMARY KEY (business_id, name, language)
);
COMMENT ON TABLE templates IS 'Message templates per business (status and quality follow the platform''s webhooks).';

-- What the platform reported that is worth a look: message statuses, template and number
-- quality, account events, possible opt-outs. `dedupe_key` makes a redelivered webhook a no-op.
-- `detail` is JSON text, kept exactly as serialized.
CREATE TABLE signals (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    business_id uuid NOT NULL REFERENCES businesses (id),
    dedupe_key text NOT NULL,
    kind text NOT NULL,
    occurred_at bigint NOT NULL,
    received_at bigint NOT NULL,
    phone_number_id text,
    phone bigint,
    user_id text,
    message_id text,
    template_name text,
    template_language text,
    status text,
    error_codes bigint[] NOT NULL,
    detail text NOT NULL,
    CONSTRAINT signals_dedupe_key UNIQUE (business_id, dedupe_key)
);
CREATE INDEX signals_kind ON signals (business_id, kind, occurred_at);
CREATE INDEX signals_message ON signals (business_id, message_id) WHERE message_id IS NOT NULL;
CREATE INDEX signals_phone ON signals (business_id, phone) WHERE phone IS NOT NULL;
COMMENT ON TABLE signals IS 'Platform signals per business (statuses, quality, account events), deduplicated by key.';

-- Messages optin sent itself in threads (opt-in questions, opt-out confirmations), so that a
-- reply (`context.id`) finds what it answers. `categories` are the offered ones, in button order.
CREATE TABLE sent_messages (
    business_id uuid NOT NULL REFERENCES businesses (id),
    message_id text NOT NULL,
    phone bigint NOT NULL,
    phone_number_id text NOT NULL,
    purpose text NOT NULL CHECK (purpose IN ('opt_in_question', 'opt_out_confirmation')),
    categories text[] NOT NULL,
    notice_id uuid,
    sent_at bigint NOT NULL,
    CONSTRAINT sent_messages_pkey PRIMARY KEY (business_id, message_id)
);
COMMENT ON TABLE sent_messages IS 'Messages optin sent in threads, by platform message id.';
