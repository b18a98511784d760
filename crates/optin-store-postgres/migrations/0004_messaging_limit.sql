-- Who a business reached with business-initiated messages, for its messaging limit (unique
-- recipients per moving 24 hours).
--
-- The conventions of 0001 to 0003 hold: times are bigint nanoseconds since the Unix epoch, phone
-- numbers are their E.164 digits as a bigint, every table is scoped by `business_id`.

-- One row per business and recipient: `last_at` is the latest time a place under the limit was
-- reserved for them (it only moves forward). The recipients counted against the limit at a time
-- `t` are the rows with `last_at > t - 24 h`; older rows are kept (at most one per person) and
-- count again once the person is reached again. Writers take a transaction-scoped advisory lock
-- on the business first, so counting and reserving are exact across servers.
CREATE TABLE recipient_reservations (
    business_id uuid NOT NULL REFERENCES businesses (id),
    phone bigint NOT NULL,
    last_at bigint NOT NULL,
    CONSTRAINT recipient_reservations_pkey PRIMARY KEY (business_id, phone)
);
CREATE INDEX recipient_reservations_by_time ON recipient_reservations (business_id, last_at);
COMMENT ON TABLE recipient_reservations IS 'Recipients of business-initiated messages, for the messaging limit.';
