-- 0006_slack (SQLite): Slack at Slack's limits.
--
-- * message_refs.shown: what each stored message shows now (a hash of its
--   rendering), so a copy already showing a request's latest state is not
--   updated again (coalesced chat.update calls under rate limits).
-- * view_submissions: the Slack view id of every request modal that created
--   a request, so a re-submitted or replayed view_submission creates at most
--   one request.
-- * notify_requester jobs are delivered in order per request like notify
--   jobs, but independently of them.

ALTER TABLE message_refs ADD COLUMN shown TEXT NOT NULL DEFAULT '';

CREATE TABLE view_submissions (
    view_id    TEXT    NOT NULL PRIMARY KEY,
    request_id INTEGER NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    created_at TEXT    NOT NULL
);

CREATE INDEX jobs_notify_requester ON jobs (request_id, id) WHERE kind = 'notify_requester';
