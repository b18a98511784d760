-- The messages the send proxy forwarded, and the category of a signal.
--
-- The conventions of 0001 and 0002 hold: times are bigint nanoseconds since the Unix epoch,
-- phone numbers are their E.164 digits as a bigint, every table is scoped by `business_id`.

-- A business's own messages that `POST /proxy/...` allowed and the upstream accepted, by the
-- platform's message id, so that later status webhooks are attributed to the template and the
-- business category. `template_name` and `template_language` are both set or both null.
CREATE TABLE forwarded_messages (
    business_id uuid NOT NULL REFERENCES businesses (id),
    message_id text NOT NULL,
    phone bigint NOT NULL,
    phone_number_id text NOT NULL,
    template_name text,
    template_language text,
    category text,
    sent_at bigint NOT NULL,
    CONSTRAINT forwarded_messages_pkey PRIMARY KEY (business_id, message_id),
    CONSTRAINT forwarded_messages_template CHECK ((template_name IS NULL) = (template_language IS NULL))
);
COMMENT ON TABLE forwarded_messages IS 'Messages the send proxy forwarded, by platform message id.';

-- The business category a signal is about: for the status of a forwarded template message, the
-- category the template is linked to.
ALTER TABLE signals ADD COLUMN category text;
