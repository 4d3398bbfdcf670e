package store

import (
	"context"
	"errors"
	"time"

	"github.com/uptrace/bun"

	"github.com/accessbot/accessbot/workflow"
)

// auditRow is a row of audit_log. Details is TEXT on both databases: jsonb
// would reorder keys and spacing, and the hash covers the exact text.
type auditRow struct {
	bun.BaseModel `bun:"table:audit_log,alias:l"`

	Seq          int64  `bun:"seq,pk"`
	At           dbTime `bun:"at"`
	ActorID      string `bun:"actor_id"`
	ActorEmail   string `bun:"actor_email"`
	Action       string `bun:"action"`
	RequestID    int64  `bun:"request_id"`
	RoleID       string `bun:"role_id"`
	RoleName     string `bun:"role_name"`
	SubjectID    string `bun:"subject_id"`
	SubjectEmail string `bun:"subject_email"`
	Details      string `bun:"details"`
	PrevHash     string `bun:"prev_hash"`
	Hash         string `bun:"hash"`
}

func newAuditRow(e *workflow.AuditEntry) *auditRow {
	return &auditRow{
		Seq:          e.Seq,
		At:           newTime(e.Time),
		ActorID:      e.ActorID,
		ActorEmail:   e.ActorEmail,
		Action:       string(e.Action),
		RequestID:    e.RequestID,
		RoleID:       e.RoleID,
		RoleName:     e.RoleName,
		SubjectID:    e.SubjectID,
		SubjectEmail: e.SubjectEmail,
		Details:      e.Details,
		PrevHash:     e.PrevHash,
		Hash:         e.Hash,
	}
}

// auditHeadRow is the single row of audit_head: the Seq and Hash of the
// newest entry, kept apart from the entries so that deleting the last entry
// is detectable, and locked by every append so appends form one chain.
type auditHeadRow struct {
	bun.BaseModel `bun:"table:audit_head,alias:h"`

	ID   int64  `bun:"id,pk"`
	Seq  int64  `bun:"seq"`
	Hash string `bun:"hash"`
}

// AppendAudit appends e to the log. It locks the chain head (SELECT … FOR
// UPDATE on PostgreSQL; SQLite's write lock is already held), calls
// workflow.Seal(e, headSeq, headHash), inserts the entry and moves the
// head, so concurrent appends from any number of goroutines and processes
// form one chain without gaps. A zero Time is set from the clock and empty
// Details become "{}". e.Seq, Time, PrevHash and Hash are set on return.
func (t *tx) AppendAudit(ctx context.Context, e *workflow.AuditEntry) error {
	if err := t.writable("append audit"); err != nil {
		return err
	}
	old := *e
	t.onRollback(func() {
		e.Seq, e.Time, e.Details, e.PrevHash, e.Hash = old.Seq, old.Time, old.Details, old.PrevHash, old.Hash
	})
	return appendAudit(ctx, t.btx, t.db.dialect, t.db.now(), e)
}

func appendAudit(ctx context.Context, idb bun.IDB, dialect string, now time.Time, e *workflow.AuditEntry) error {
	head, err := lockAuditHead(ctx, idb, dialect, "append audit")
	if err != nil {
		return err
	}
	return appendAuditAfter(ctx, idb, head, now, e)
}

// lockAuditHead reads the chain head, locking it (FOR UPDATE on PostgreSQL;
// SQLite's write lock is already held) until the transaction ends; op
// names the caller in errors.
func lockAuditHead(ctx context.Context, idb bun.IDB, dialect, op string) (auditHeadRow, error) {
	var head auditHeadRow
	q := idb.NewSelect().Model(&head).Where("h.id = 1")
	if dialect == DialectPostgres {
		q = q.For("UPDATE")
	}
	if err := q.Scan(ctx); err != nil {
		if noRows(err) {
			return head, wrap(op, errors.New("audit_head row is missing"))
		}
		return head, wrap(op+": lock head", err)
	}
	return head, nil
}

// appendAuditAfter appends e after head, which the transaction has locked
// (lockAuditHead), and moves the head to it.
func appendAuditAfter(ctx context.Context, idb bun.IDB, head auditHeadRow, now time.Time, e *workflow.AuditEntry) error {
	if e.Time.IsZero() {
		e.Time = now
	}
	if e.Details == "" {
		e.Details = "{}"
	}
	workflow.Seal(e, head.Seq, head.Hash)
	if _, err := idb.NewInsert().Model(newAuditRow(e)).Exec(ctx); err != nil {
		// A unique violation here means the head was not locked: a bug or
		// tampering, not a user conflict.
		return wrap("append audit: insert", err)
	}
	if _, err := idb.NewUpdate().Model((*auditHeadRow)(nil)).
		Set("seq = ?", e.Seq).Set("hash = ?", e.Hash).Where("id = 1").
		Exec(ctx); err != nil {
		return wrap("append audit: move head", err)
	}
	return nil
}

// AuditHead returns the Seq and Hash of the newest entry as recorded in
// audit_head; (0, "") for an empty log.
func (db *DB) AuditHead(ctx context.Context) (int64, string, error) {
	var head auditHeadRow
	if err := db.read.NewSelect().Model(&head).Where("h.id = 1").Scan(ctx); err != nil {
		if noRows(err) {
			return 0, "", nil
		}
		return 0, "", wrap("read audit head", err)
	}
	return head.Seq, head.Hash, nil
}
