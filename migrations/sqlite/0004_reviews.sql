-- 0004_reviews (SQLite): access reviews and break-glass post-hoc reviews.
--
-- * reviews: one row per review. kind 'access' lists a role's members for
--   its owners to keep or remove, until deadline_at; kind 'break_glass' is
--   the post-hoc review of one break-glass grant (request_id), open until an
--   owner acknowledges or revokes it. remind_at is when owners next hear
--   about it. State changes compare-and-set on version.
-- * At most one open access review per role: replicas that start the same
--   scheduled review at once insert one row, the others get a conflict.
-- * review_items: the members an access review lists, as PostHog showed
--   them when it started; decision '' until an owner (or the deadline)
--   answers, and only the first answer is written.
-- * review_messages: every Slack copy of a review (one message per page and
--   channel), so each answer updates them all.

CREATE TABLE reviews (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL CHECK (kind IN ('access', 'break_glass')),
    state       TEXT    NOT NULL CHECK (state IN ('open', 'closed')),
    role_id     TEXT    NOT NULL,
    role_name   TEXT    NOT NULL DEFAULT '',
    request_id  INTEGER NOT NULL DEFAULT 0, -- break_glass: the grant reviewed
    started_by  TEXT    NOT NULL,           -- Slack id, or 'system' for the schedule
    started_at  TEXT    NOT NULL,
    deadline_at TEXT,                       -- access only
    remind_at   TEXT,
    unanswered  TEXT    NOT NULL DEFAULT 'keep' CHECK (unanswered IN ('keep', 'remove')),
    outcome     TEXT    NOT NULL DEFAULT '', -- break_glass: acknowledged | revoked
    closed_by   TEXT    NOT NULL DEFAULT '',
    closed_at   TEXT,
    version     INTEGER NOT NULL DEFAULT 1
);

CREATE UNIQUE INDEX reviews_one_open_access ON reviews (role_id) WHERE kind = 'access' AND state = 'open';
CREATE INDEX reviews_role ON reviews (role_id, kind, id);
CREATE INDEX reviews_remind ON reviews (remind_at) WHERE state = 'open';
CREATE INDEX reviews_deadline ON reviews (deadline_at) WHERE state = 'open';
CREATE INDEX reviews_started_by ON reviews (started_by, kind, started_at);
CREATE INDEX reviews_request ON reviews (request_id) WHERE request_id <> 0;

CREATE TABLE review_items (
    review_id      INTEGER NOT NULL REFERENCES reviews (id) ON DELETE CASCADE,
    position       INTEGER NOT NULL, -- order shown, from 0; pages follow it
    membership_id  TEXT    NOT NULL,
    user_uuid      TEXT    NOT NULL,
    email          TEXT    NOT NULL DEFAULT '',
    name           TEXT    NOT NULL DEFAULT '',
    last_login     TEXT,
    two_factor     BOOLEAN, -- NULL: PostHog did not say
    grant_id       INTEGER NOT NULL DEFAULT 0, -- 0: access from outside accessbot
    grant_ends_at  TEXT,
    decision       TEXT    NOT NULL DEFAULT '' CHECK (decision IN ('', 'keep', 'remove')),
    decided_by     TEXT    NOT NULL DEFAULT '',
    decided_at     TEXT,
    removal_id     INTEGER NOT NULL DEFAULT 0, -- the removal request a Remove queued
    PRIMARY KEY (review_id, membership_id)
);

CREATE UNIQUE INDEX review_items_position ON review_items (review_id, position);

CREATE TABLE review_messages (
    review_id  INTEGER NOT NULL REFERENCES reviews (id) ON DELETE CASCADE,
    channel    TEXT    NOT NULL,
    page       INTEGER NOT NULL,
    ts         TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    PRIMARY KEY (review_id, channel, page)
);
