-- 0006_documents: scanned consent forms (paper, in person), kept by the SHA-256 of their content.
--
-- Same conventions as 0001 to 0005. Never edit this file once applied anywhere: the migration
-- runner checks its SHA-256.

-- One row per business and content: the same file uploaded twice is kept once. `media_type` was
-- told from the content. Opt-ins name a document by `document_sha256` in their evidence.
CREATE TABLE documents (
    business_id TEXT NOT NULL REFERENCES businesses (id),
    sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL CHECK (size > 0),
    content BLOB NOT NULL,
    uploaded_at INTEGER NOT NULL,
    PRIMARY KEY (business_id, sha256)
) STRICT, WITHOUT ROWID;
