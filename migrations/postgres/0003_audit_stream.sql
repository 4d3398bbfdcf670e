-- The SIEM stream's durable cursor: the last audit entry the receiver
-- acknowledged, and the lease that lets one process at a time send.
CREATE TABLE audit_streams (
    name         TEXT        PRIMARY KEY,
    cursor_seq   BIGINT      NOT NULL DEFAULT 0, -- last delivered entry
    lease_holder TEXT        NOT NULL DEFAULT '',
    lease_until  TIMESTAMPTZ,                    -- NULL: not leased
    updated_at   TIMESTAMPTZ NOT NULL
);

-- The newest signed checkpoint is looked up by action (`audit checkpoint`,
-- and before each new one); without this it is a scan of the whole log.
CREATE INDEX audit_log_action ON audit_log (action, seq);
