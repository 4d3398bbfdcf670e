-- 0001_init (SQLite): requests and approvals, the job queue, the
-- hash-chained audit log and the small tables.
--
-- Times are TEXT written by package store in one fixed-width UTC form,
-- 'YYYY-MM-DD HH:MM:SS.ffffff', so comparing the text orders by time.
-- NULL means "not set". Booleans are 0/1.

CREATE TABLE requests (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: people see "#id"
    kind               TEXT    NOT NULL CHECK (kind IN ('add', 'remove')),
    state              TEXT    NOT NULL CHECK (state IN ('pending', 'approved', 'executing', 'completed',
                                                         'failed', 'denied', 'cancelled', 'expired', 'revoked')),
    requester_id       TEXT    NOT NULL,
    requester_email    TEXT    NOT NULL DEFAULT '',
    subject_id         TEXT    NOT NULL,
    subject_email      TEXT    NOT NULL DEFAULT '',
    subject_uuid       TEXT    NOT NULL DEFAULT '',
    role_id            TEXT    NOT NULL,
    role_name          TEXT    NOT NULL DEFAULT '',
    reason             TEXT    NOT NULL DEFAULT '',
    duration_ns        INTEGER NOT NULL DEFAULT 0, -- 0 = permanent
    approvals_required INTEGER NOT NULL DEFAULT 1,
    auto_approved      BOOLEAN NOT NULL DEFAULT 0,
    decided_by         TEXT    NOT NULL DEFAULT '',
    decision_reason    TEXT    NOT NULL DEFAULT '',
    failure_reason     TEXT    NOT NULL DEFAULT '',
    membership_id      TEXT    NOT NULL DEFAULT '',
    created_at         TEXT    NOT NULL,
    updated_at         TEXT    NOT NULL,
    expires_at         TEXT,
    remind_at          TEXT,
    reminded_at        TEXT,
    decided_at         TEXT,
    completed_at       TEXT,
    revoke_at          TEXT,
    revoked_at         TEXT,
    revoke_queued      BOOLEAN NOT NULL DEFAULT 0,
    version            INTEGER NOT NULL DEFAULT 1 -- compare-and-set by UpdateRequest
);

-- One subject cannot have two open requests of the same kind for one role.
CREATE UNIQUE INDEX requests_one_open ON requests (subject_id, role_id, kind)
    WHERE state IN ('pending', 'approved', 'executing');
CREATE INDEX requests_requester ON requests (requester_id, id);
CREATE INDEX requests_subject_uuid ON requests (subject_uuid, id);
CREATE INDEX requests_role ON requests (role_id, id);
CREATE INDEX requests_state ON requests (state, id);
-- The scheduler's due selectors.
CREATE INDEX requests_expires ON requests (expires_at) WHERE state = 'pending';
CREATE INDEX requests_remind ON requests (remind_at) WHERE state = 'pending';
CREATE INDEX requests_revoke ON requests (revoke_at) WHERE state = 'completed' AND revoke_queued = 0;

CREATE TABLE approvals (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id     INTEGER NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    approver_id    TEXT    NOT NULL,
    approver_email TEXT    NOT NULL DEFAULT '',
    approved_at    TEXT    NOT NULL,
    UNIQUE (request_id, approver_id)
);

CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: notify order and stale leases
    kind        TEXT    NOT NULL,
    state       TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'failed')),
    request_id  INTEGER NOT NULL DEFAULT 0, -- 0 when not about one request
    payload     TEXT    NOT NULL DEFAULT '',
    attempts    INTEGER NOT NULL DEFAULT 0,
    run_at      TEXT    NOT NULL,
    lease_token TEXT    NOT NULL DEFAULT '',
    lease_until TEXT,
    last_error  TEXT    NOT NULL DEFAULT '',
    created_at  TEXT    NOT NULL
);

CREATE INDEX jobs_due ON jobs (state, run_at, id);
CREATE INDEX jobs_notify ON jobs (request_id, id) WHERE kind = 'notify';

-- Append only: the store never updates or deletes a row, and these
-- triggers refuse anyone else who tries. The hash chain is what detects a
-- change made by someone who drops them.
CREATE TABLE audit_log (
    seq           INTEGER PRIMARY KEY, -- 1, 2, 3… without gaps
    at            TEXT    NOT NULL,
    actor_id      TEXT    NOT NULL,
    actor_email   TEXT    NOT NULL DEFAULT '',
    action        TEXT    NOT NULL,
    request_id    INTEGER NOT NULL DEFAULT 0,
    role_id       TEXT    NOT NULL DEFAULT '',
    role_name     TEXT    NOT NULL DEFAULT '',
    subject_id    TEXT    NOT NULL DEFAULT '',
    subject_email TEXT    NOT NULL DEFAULT '',
    details       TEXT    NOT NULL DEFAULT '{}', -- exact text the hash covers
    prev_hash     TEXT    NOT NULL,
    hash          TEXT    NOT NULL
);

CREATE INDEX audit_log_at ON audit_log (at, seq);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE rejected');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: DELETE rejected');
END;

-- The newest entry's seq and hash, kept apart from the entries so that
-- deleting the last entry is detectable; every append locks this row. It
-- may only move forward by one, onto an entry that exists.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL
);

INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '');

CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head
WHEN NEW.id <> OLD.id
  OR NEW.seq <> OLD.seq + 1
  OR NOT EXISTS (SELECT 1 FROM audit_log WHERE seq = NEW.seq AND hash = NEW.hash)
BEGIN
    SELECT RAISE(ABORT, 'audit_head may only advance to the newest audit_log entry');
END;

CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN
    SELECT RAISE(ABORT, 'audit_head cannot be deleted');
END;

CREATE TABLE owner_overrides (
    role_id    TEXT    NOT NULL,
    user_id    TEXT    NOT NULL, -- Slack user id
    present    BOOLEAN NOT NULL, -- 1 adds the owner, 0 removes them
    changed_by TEXT    NOT NULL DEFAULT '',
    changed_at TEXT    NOT NULL,
    PRIMARY KEY (role_id, user_id)
);

CREATE TABLE message_refs (
    request_id INTEGER NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    channel    TEXT    NOT NULL,
    ts         TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    PRIMARY KEY (request_id, channel)
);

CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
