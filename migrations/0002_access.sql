-- tufa server schema, version 2: access tokens and the audit log.

-- Access tokens. The token itself is never stored: `token_id` (public, in the token) finds the
-- row and `secret_hash` (sha256 of the secret part) is compared in constant time.
CREATE TABLE tokens (
  name          text PRIMARY KEY,
  token_id      text NOT NULL UNIQUE,
  secret_hash   bytea NOT NULL,
  scopes        text[] NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_used_at  timestamptz,
  revoked_at    timestamptz
);

-- Every write, accepted or refused: who (token name), from where, on what, and the outcome
-- ('accepted' or the refusal code). Never a token, never a key.
CREATE TABLE audit_log (
  id          bigserial PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  token_name  text,
  remote_addr text,
  gun         text,
  action      text NOT NULL,
  roles       jsonb NOT NULL DEFAULT '{}'::jsonb,
  request_id  text,
  outcome     text NOT NULL
);
CREATE INDEX audit_log_by_gun ON audit_log (gun, id);
CREATE INDEX audit_log_by_time ON audit_log (at, id);
