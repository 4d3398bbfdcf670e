package store

import (
	"context"

	"github.com/accessbot/accessbot/workflow"
)

var _ workflow.CheckpointStore = (*DB)(nil)

// AppendCheckpoint appends the entry build returns (nothing when it returns
// nil) in one transaction that holds the chain head's lock, so the entry
// build makes from the head (headSeq, headHash, and the action of that
// entry, read in the same transaction) is the very next one.
func (db *DB) AppendCheckpoint(ctx context.Context, build func(headSeq int64, headHash string, headAction workflow.Action) (*workflow.AuditEntry, error)) (*workflow.AuditEntry, error) {
	var out *workflow.AuditEntry
	err := db.inTx(ctx, false, func(ctx context.Context, t *tx) error {
		out = nil
		head, err := lockAuditHead(ctx, t.btx, db.dialect, "append checkpoint")
		if err != nil {
			return err
		}
		var action string
		if head.Seq > 0 {
			err := t.btx.QueryRowContext(ctx, "SELECT action FROM audit_log WHERE seq = ?", head.Seq).Scan(&action)
			if err != nil && !noRows(err) { // a missing entry is verify's to report
				return wrap("append checkpoint: newest entry", err)
			}
		}
		e, err := build(head.Seq, head.Hash, workflow.Action(action))
		if err != nil || e == nil {
			return err
		}
		if err := appendAuditAfter(ctx, t.btx, head, db.now(), e); err != nil {
			return err
		}
		out = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// NewestAudit returns the newest entry with action a, nil when there is none.
func (db *DB) NewestAudit(ctx context.Context, a workflow.Action) (*workflow.AuditEntry, error) {
	rows, err := db.read.DB.QueryContext(ctx, selectAudit(db.dialect)+" WHERE action = $1 ORDER BY seq DESC LIMIT 1", string(a))
	if err != nil {
		return nil, wrap("read newest audit entry", err)
	}
	var out *workflow.AuditEntry
	err = db.eachAuditRow(ctx, db.read.DB, rows, func(e *workflow.AuditEntry) error {
		c := *e
		out = &c
		return nil
	})
	return out, err
}
