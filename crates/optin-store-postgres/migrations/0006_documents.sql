-- 0006_documents: scanned consent forms (paper, in person), kept by the SHA-256 of their content.
--
-- Same conventions as 0001 to 0005. Never edit this file once applied anywhere: the migration
-- runner checks its SHA-256.

-- One row per business and content: the same file uploaded twice is kept once. `media_type` was
-- told from the content. Opt-ins name a document by `document_sha256` in their evidence.
CREATE TABLE documents (
    business_id uuid NOT NULL REFERENCES businesses (id),
    sha256 text NOT NULL CHECK (length(sha256) = 64),
    media_type text NOT NULL,
    size bigint NOT NULL CHECK (size > 0),
    content bytea NOT NULL,
    uploaded_at bigint NOT NULL,
    CONSTRAINT documents_pkey PRIMARY KEY (business_id, sha256)
);
COMMENT ON TABLE documents IS 'Scanned consent forms by the SHA-256 of their content.';
