-- tufa server schema, version 3: pending updates (threshold signing).

-- An update whose signatures do not meet every threshold yet, kept apart from published metadata:
-- nothing here is ever served to clients. `id` is the sha256 of the signed parts (core's
-- proposalId), so two proposals for one version with different content are two rows.
-- `documents` maps role name to the base64 of the exact document bytes, signatures merged so far.
CREATE TABLE pending_updates (
  collection_id  bigint NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
  id             text NOT NULL CHECK (id ~ '^[0-9a-f]{64}$'),
  documents      jsonb NOT NULL,
  created_at     timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL,
  expires_at     timestamptz NOT NULL,
  PRIMARY KEY (collection_id, id)
);
CREATE INDEX pending_updates_by_expiry ON pending_updates (expires_at);
