-- The schema as advisor 0.1 left it at its hand-written version 4, in SQLite. Tables that exist already (a
-- database from before yoyo, brought to version 4 by advisor.adapters.sqlite.db) are kept as they are.
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hosts (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vms (id TEXT PRIMARY KEY, host_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS recommendations (
    id TEXT PRIMARY KEY,
    created_at_s REAL NOT NULL,
    state TEXT NOT NULL,
    body TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS recommendations_by_time ON recommendations (created_at_s DESC, id DESC);
-- Which VMs each recommendation moves: a new proposal finds the open ones moving the same VMs.
CREATE TABLE IF NOT EXISTS recommendation_vms (
    vm_id TEXT NOT NULL,
    recommendation_id TEXT NOT NULL,
    PRIMARY KEY (vm_id, recommendation_id)
);
-- The full list of hosts assessed for each move (the recommendation keeps a summary): codec.pack_assessments.
CREATE TABLE IF NOT EXISTS assessments (
    recommendation_id TEXT NOT NULL,
    move_index INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (recommendation_id, move_index)
);
CREATE TABLE IF NOT EXISTS migrations (
    operation_id TEXT PRIMARY KEY,
    -- one execution per attempt of a move, enforced here so that a repeated request never starts a second
    -- migration; a retry of a failed move is the next attempt
    recommendation_id TEXT NOT NULL,
    move_index INTEGER NOT NULL DEFAULT 0,
    attempt INTEGER NOT NULL DEFAULT 1,
    phase TEXT NOT NULL,
    created_at_s REAL NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (recommendation_id, move_index, attempt)
);
CREATE INDEX IF NOT EXISTS migrations_by_time ON migrations (created_at_s DESC, operation_id DESC);
-- Automation level and threshold per cluster, as set by an admin (clusters not listed use the settings).
CREATE TABLE IF NOT EXISTS automation (cluster TEXT PRIMARY KEY, body TEXT NOT NULL);
-- Every migration that ended, with what its prediction was made from: the training data the advisor gathers.
CREATE TABLE IF NOT EXISTS outcomes (
    operation_id TEXT PRIMARY KEY,
    finished_at_s REAL NOT NULL,
    body TEXT NOT NULL
);
-- Bearer tokens: only a hash of each is kept.
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at_s REAL NOT NULL,
    revoked_at_s REAL
);
-- Who did what, when, from where, and how it ended. Rows are never changed; old ones go by retention only.
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at_s REAL NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    peer TEXT NOT NULL,
    call TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_is_append_only BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
-- Recent samples, saved so that a restarted advisor still knows what its VMs were doing.
CREATE TABLE IF NOT EXISTS samples (
    kind TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    times BLOB NOT NULL,
    vals BLOB NOT NULL,
    PRIMARY KEY (kind, entity_id)
);
-- One-time login codes of the web page (`advisor ui`): only a hash of each; a code opens one session, once,
-- for the token it names (by the token's hash: a token made again under the same name is another token).
CREATE TABLE IF NOT EXISTS web_login_codes (
    hash TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    created_at_s REAL NOT NULL,
    expires_at_s REAL NOT NULL,
    used_at_s REAL
);
-- Sessions of the web page: only a hash of each cookie's secret; a session lives while its token does.
CREATE TABLE IF NOT EXISTS web_sessions (
    hash TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    created_at_s REAL NOT NULL,
    expires_at_s REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS web_sessions_by_token ON web_sessions (token_hash);
-- Each guest's last known definition (libvirt's domain XML), read while its host was up: what a restart elsewhere
-- defines and starts when that host dies.
CREATE TABLE IF NOT EXISTS definitions (
    vm_id TEXT PRIMARY KEY,
    host_id TEXT NOT NULL,
    persistent INTEGER NOT NULL,
    xml TEXT NOT NULL,
    read_at_s REAL NOT NULL
);
-- From here on yoyo keeps the schema's history; version 5 in `meta` makes an advisor from before yoyo (which
-- knows versions 1 to 4) refuse this database rather than miss what later migrations change.
INSERT INTO meta (key, value) VALUES ('schema_version', '5') ON CONFLICT (key) DO UPDATE SET value = excluded.value;
