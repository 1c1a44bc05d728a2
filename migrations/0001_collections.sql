-- tufa server schema, version 1. Applied once, in a transaction, by the server at start.

-- One row per GUN. Created when its first online key is created (before its first root).
CREATE TABLE collections (
  id          bigserial PRIMARY KEY,
  gun         text NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Every version of every role, exactly the bytes that were signed and are served.
CREATE TABLE metadata (
  collection_id  bigint NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
  role           text NOT NULL,
  version        integer NOT NULL CHECK (version > 0),
  data           bytea NOT NULL,
  sha256         text NOT NULL,
  expires        timestamptz NOT NULL,
  created_at     timestamptz NOT NULL,
  -- Signed by the server's online key (timestamp, a server-held snapshot): the re-signer's concern.
  server_signed  boolean NOT NULL DEFAULT false,
  PRIMARY KEY (collection_id, role, version)
);

-- Online private keys (timestamp, snapshot), AES-256-GCM under the operator's master key.
CREATE TABLE online_keys (
  collection_id  bigint NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
  role           text NOT NULL CHECK (role IN ('timestamp', 'snapshot')),
  keyid          text NOT NULL,
  public_key     text NOT NULL,
  private_key    bytea NOT NULL,
  seq            bigserial,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (collection_id, role, keyid)
);

-- The changefeed: ids are taken under a global lock held to commit, so they follow commit order.
CREATE TABLE changes (
  id          bigserial PRIMARY KEY,
  gun         text NOT NULL,
  version     integer NOT NULL,
  sha256      text,
  category    text NOT NULL CHECK (category IN ('update', 'deletion')),
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX changes_by_gun ON changes (gun, id);

-- Server-wide values (the master key check).
CREATE TABLE settings (
  name   text PRIMARY KEY,
  value  bytea NOT NULL
);
