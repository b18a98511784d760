-- 0003_forwarded: the messages the send proxy forwarded, and the category of a signal.
--
-- Same conventions as 0001 and 0002: STRICT tables, times as INTEGER nanoseconds since the Unix
-- epoch, ids as TEXT UUIDs, phone numbers as INTEGER E.164 digits (`PhoneNumber::key`).
-- Never edit this file once applied anywhere: the migration runner checks its SHA-256.

-- A business's own messages that `POST /proxy/...` allowed and the upstream accepted, by the
-- platform's message id, so that later status webhooks are attributed to the template and the
-- business category. `template_name` and `template_language` are both set or both null.
CREATE TABLE forwarded_messages (
    business_id TEXT NOT NULL REFERENCES businesses (id),
    message_id TEXT NOT NULL,
    phone INTEGER NOT NULL,
    phone_number_id TEXT NOT NULL,
    template_name TEXT,
    template_language TEXT,
    category TEXT,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (business_id, message_id),
    CHECK ((template_name IS NULL) = (template_language IS NULL))
) STRICT, WITHOUT ROWID;

-- The business category a signal is about: for the status of a forwarded template message, the
-- category the template is linked to.
ALTER TABLE signals ADD COLUMN category TEXT;
