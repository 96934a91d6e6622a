-- The schema of SQLite's 0001_schema.sql in PostgreSQL's types: the same tables, columns, keys and indexes, so
-- that the stores' SQL (advisor.adapters.sql) runs on both. Bodies stay JSON text, as the codec writes them.
CREATE TABLE hosts (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE vms (id TEXT PRIMARY KEY, host_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE recommendations (
    id TEXT PRIMARY KEY,
    created_at_s DOUBLE PRECISION NOT NULL,
    state TEXT NOT NULL,
    body TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX recommendations_by_time ON recommendations (created_at_s DESC, id DESC);
-- Which VMs each recommendation moves: a new proposal finds the open ones moving the same VMs.
CREATE TABLE recommendation_vms (
    vm_id TEXT NOT NULL,
    recommendation_id TEXT NOT NULL,
    PRIMARY KEY (vm_id, recommendation_id)
);
CREATE INDEX recommendation_vms_by_recommendation ON recommendation_vms (recommendation_id);
-- The full list of hosts assessed for each move (the recommendation keeps a summary): codec.pack_assessments.
CREATE TABLE assessments (
    recommendation_id TEXT NOT NULL,
    move_index INTEGER NOT NULL,
    body BYTEA NOT NULL,
    PRIMARY KEY (recommendation_id, move_index)
);
CREATE TABLE migrations (
    operation_id TEXT PRIMARY KEY,
    -- one execution per attempt of a move, enforced here so that a repeated request never starts a second
    -- migration, from any replica; a retry of a failed move is the next attempt
    recommendation_id TEXT NOT NULL,
    move_index INTEGER NOT NULL DEFAULT 0,
    attempt INTEGER NOT NULL DEFAULT 1,
    phase TEXT NOT NULL,
    created_at_s DOUBLE PRECISION NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (recommendation_id, move_index, attempt)
);
CREATE INDEX migrations_by_time ON migrations (created_at_s DESC, operation_id DESC);
-- Automation level and threshold per cluster, as set by an admin (clusters not listed use the settings).
CREATE TABLE automation (cluster TEXT PRIMARY KEY, body TEXT NOT NULL);
-- Every migration that ended, with what its prediction was made from: the training data the advisor gathers.
CREATE TABLE outcomes (
    operation_id TEXT PRIMARY KEY,
    finished_at_s DOUBLE PRECISION NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX outcomes_by_time ON outcomes (finished_at_s);
-- Bearer tokens: only a hash of each is kept.
CREATE TABLE tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at_s DOUBLE PRECISION NOT NULL,
    revoked_at_s DOUBLE PRECISION
);
-- Who did what, when, from where, and how it ended. Rows are never changed; old ones go by retention only.
CREATE TABLE audit (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_s DOUBLE PRECISION NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    peer TEXT NOT NULL,
    call TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_by_time ON audit (at_s);
CREATE FUNCTION audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END $$;
CREATE TRIGGER audit_is_append_only BEFORE UPDATE ON audit FOR EACH ROW EXECUTE FUNCTION audit_is_append_only();
-- Recent samples, saved so that a restarted advisor still knows what its VMs were doing.
CREATE TABLE samples (
    kind TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    times BYTEA NOT NULL,
    vals BYTEA NOT NULL,
    PRIMARY KEY (kind, entity_id)
);
-- One-time login codes of the web page (`advisor ui`): only a hash of each; a code opens one session, once,
-- for the token it names (by the token's hash: a token made again under the same name is another token).
CREATE TABLE web_login_codes (
    hash TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    created_at_s DOUBLE PRECISION NOT NULL,
    expires_at_s DOUBLE PRECISION NOT NULL,
    used_at_s DOUBLE PRECISION
);
-- Sessions of the web page: only a hash of each cookie's secret; a session lives while its token does.
CREATE TABLE web_sessions (
    hash TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    created_at_s DOUBLE PRECISION NOT NULL,
    expires_at_s DOUBLE PRECISION NOT NULL
);
CREATE INDEX web_sessions_by_token ON web_sessions (token_hash);
-- Each guest's last known definition (libvirt's domain XML), read while its host was up: what a restart elsewhere
-- defines and starts when that host dies.
CREATE TABLE definitions (
    vm_id TEXT PRIMARY KEY,
    host_id TEXT NOT NULL,
    persistent INTEGER NOT NULL,
    xml TEXT NOT NULL,
    read_at_s DOUBLE PRECISION NOT NULL
);
