-- tufa server schema, version 5: whether a targets document has delegations of its own. An update
-- parses only the stored roles that may delegate (and the ones it changes): a publish into one of
-- 16,384 hash bins no longer reads the others. NULL would mean "not known": it is read as true.
ALTER TABLE metadata ADD COLUMN delegates boolean;
-- Existing rows: a canonical document with delegations carries the key "delegations" followed by a
-- colon, which an escaped string never does (its quote would be preceded by a backslash): a
-- document without delegations may be marked true (a custom field of that name), never the other way.
UPDATE metadata SET delegates = position('"delegations":'::bytea IN data) > 0
  WHERE role NOT IN ('root', 'snapshot', 'timestamp');
-- The delegating roles of a collection, found without visiting each of its roles.
CREATE INDEX metadata_delegating ON metadata (collection_id, role) WHERE delegates;
