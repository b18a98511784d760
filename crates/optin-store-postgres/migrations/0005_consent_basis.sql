-- 0005_consent_basis: double opt-in and consent lifetimes in the consent projection, and the
-- index frequency caps count sends with.
--
-- Same conventions as 0001 to 0004. Never edit this file once applied anywhere: the migration
-- runner checks its SHA-256.

-- `consent_state` gains the status `pending_confirmation` (a double opt-in not yet confirmed) and,
-- for opt-ins, what the consent rests on (`basis`) and where its lifetime starts (`basis_at`).
-- Every existing opt-in was express, from its collection time (`since`).
ALTER TABLE consent_state DROP CONSTRAINT consent_state_status_check;
ALTER TABLE consent_state ADD CONSTRAINT consent_state_status_check
    CHECK (status IN ('opted_in', 'opted_out', 'pending_confirmation'));
ALTER TABLE consent_state ADD COLUMN basis text
    CHECK (basis IN ('express', 'implied_purchase', 'implied_inquiry'));
ALTER TABLE consent_state ADD COLUMN basis_at bigint;
UPDATE consent_state SET basis = 'express', basis_at = since WHERE status = 'opted_in';
ALTER TABLE consent_state ADD CONSTRAINT consent_state_basis_only_for_opt_ins
    CHECK ((basis IS NULL) = (basis_at IS NULL) AND (status = 'opted_out') = (basis IS NULL));

-- A recipient's recent messages of one category, for frequency caps; and whether there are any at
-- all, so that an audience is not looked up number by number when none was sent.
CREATE INDEX forwarded_messages_by_recipient ON forwarded_messages (business_id, category, phone, sent_at);
CREATE INDEX forwarded_messages_by_category ON forwarded_messages (business_id, category, sent_at);
