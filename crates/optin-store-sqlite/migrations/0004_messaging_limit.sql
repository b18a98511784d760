-- 0004_messaging_limit: who a business reached with business-initiated messages, for its
-- messaging limit (unique recipients per moving 24 hours).
--
-- Same conventions as 0001 to 0003: STRICT tables, times as INTEGER nanoseconds since the Unix
-- epoch, ids as TEXT UUIDs, phone numbers as INTEGER E.164 digits (`PhoneNumber::key`).
-- Never edit this file once applied anywhere: the migration runner checks its SHA-256.

-- One row per business and recipient: `last_at` is the latest time a place under the limit was
-- reserved for them (it only moves forward). The recipients counted against the limit at a time
-- `t` are the rows with `last_at > t - 24 h`; older rows are kept (at most one per person) and
-- count again once the person is reached again.
CREATE TABLE recipient_reservations (
    business_id TEXT NOT NULL REFERENCES businesses (id),
    phone INTEGER NOT NULL,
    last_at INTEGER NOT NULL,
    PRIMARY KEY (business_id, phone)
) STRICT, WITHOUT ROWID;
CREATE INDEX recipient_reservations_by_time ON recipient_reservations (business_id, last_at);
