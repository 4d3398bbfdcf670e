-- 0002_grants (SQLite): the grant lifecycle.
--
-- * grant_id: an extension request names the grant (a completed addition)
--   it extends. Extensions are stored with kind 'add' and grant_id > 0
--   (SQLite cannot widen the kind CHECK without rebuilding the table, which
--   would cascade-delete approvals); package store maps them to the
--   workflow's kind "extend" on both databases.
-- * overdue_since / overdue_notified_at: a revocation PostHog refused or
--   could not take is overdue until it succeeds; owners and admins are told
--   at once and daily.
-- * next_warning_at: when the holder gets the next expiry warning.
-- * At most one open request per person and role, whatever its kind.
-- * Revocations abandoned by earlier versions (failed revoke jobs) are
--   queued again: a grant always ends.

ALTER TABLE requests ADD COLUMN grant_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN overdue_since TEXT;
ALTER TABLE requests ADD COLUMN overdue_notified_at TEXT;
ALTER TABLE requests ADD COLUMN next_warning_at TEXT;

DROP INDEX requests_one_open;
CREATE UNIQUE INDEX requests_one_open ON requests (subject_id, role_id)
    WHERE state IN ('pending', 'approved', 'executing');
CREATE INDEX requests_grant ON requests (grant_id) WHERE grant_id <> 0;
CREATE INDEX requests_warn ON requests (next_warning_at) WHERE state = 'completed';
CREATE INDEX requests_overdue ON requests (overdue_notified_at) WHERE state = 'completed';

UPDATE jobs SET state = 'queued', attempts = 0, lease_token = '', lease_until = NULL
 WHERE kind = 'revoke' AND state = 'failed';
