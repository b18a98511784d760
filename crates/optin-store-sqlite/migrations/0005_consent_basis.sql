-- 0005_consent_basis: double opt-in and consent lifetimes in the consent projection, and the
-- index frequency caps count sends with.
--
-- Same conventions as 0001 to 0004: STRICT tables, times as INTEGER nanoseconds since the Unix
-- epoch, ids as TEXT UUIDs, phone numbers as INTEGER E.164 digits (`PhoneNumber::key`).
-- Never edit this file once applied anywhere: the migration runner checks its SHA-256.

-- `consent_state` gains the status `pending_confirmation` (a double opt-in not yet confirmed) and,
-- for opt-ins, what the consent rests on (`basis`: express, implied_purchase, implied_inquiry) and
-- where its lifetime starts (`basis_at`). SQLite cannot change a CHECK constraint, so the table is
-- rebuilt; every existing opt-in was express, from its collection time (`since`).
CREATE TABLE consent_state_new (
    business_id TEXT NOT NULL REFERENCES businesses (id),
    phone INTEGER NOT NULL,
    category TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('opted_in', 'opted_out', 'pending_confirmation')),
    since INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    method TEXT,
    notice_id TEXT,
    last_opt_out_at INTEGER,
    basis TEXT CHECK (basis IN ('express', 'implied_purchase', 'implied_inquiry')),
    basis_at INTEGER,
    PRIMARY KEY (business_id, phone, category),
    FOREIGN KEY (business_id, category) REFERENCES categories (business_id, name),
    CHECK ((basis IS NULL) = (basis_at IS NULL)),
    CHECK ((status = 'opted_out') = (basis IS NULL))
) STRICT, WITHOUT ROWID;
INSERT INTO consent_state_new
SELECT business_id, phone, category, status, since, event_id, method, notice_id, last_opt_out_at,
       CASE status WHEN 'opted_in' THEN 'express' END,
       CASE status WHEN 'opted_in' THEN since END
FROM consent_state;
DROP TABLE consent_state;
ALTER TABLE consent_state_new RENAME TO consent_state;

-- A recipient's recent messages of one category, for frequency caps; and whether there are any at
-- all, so that an audience is not looked up number by number when none was sent.
CREATE INDEX forwarded_messages_by_recipient ON forwarded_messages (business_id, category, phone, sent_at);
CREATE INDEX forwarded_messages_by_category ON forwarded_messages (business_id, category, sent_at);
