package store

import (
	"context"
	"time"

	"github.com/uptrace/bun"

	"github.com/accessbot/accessbot/workflow"
)

// auditStreamRow is a row of audit_streams: a delivery cursor and its lease.
type auditStreamRow struct {
	bun.BaseModel `bun:"table:audit_streams,alias:st"`

	Name        string `bun:"name,pk"`
	CursorSeq   int64  `bun:"cursor_seq"`
	LeaseHolder string `bun:"lease_holder"`
	LeaseUntil  dbTime `bun:"lease_until"`
	UpdatedAt   dbTime `bun:"updated_at"`
}

// LeaseAuditStream takes or renews the lease of stream name for holder
// until now+ttl, when it is free, expired or already holder's, and returns
// the stream's cursor (the last delivered Seq). ok is false when another
// holder's lease is still running. The row is created on first use.
func (db *DB) LeaseAuditStream(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (cursor int64, ok bool, err error) {
	now = normTime(now)
	err = db.inTx(ctx, false, func(ctx context.Context, t *tx) error {
		ok = false
		row := &auditStreamRow{Name: name, UpdatedAt: newTime(now)}
		if _, err := t.btx.NewInsert().Model(row).On("CONFLICT (name) DO NOTHING").Exec(ctx); err != nil {
			return wrap("lease audit stream", err)
		}
		var res []auditStreamRow
		err := t.btx.NewUpdate().Model((*auditStreamRow)(nil)).
			Set("lease_holder = ?", holder).
			Set("lease_until = ?", newTime(now.Add(ttl))).
			Set("updated_at = ?", newTime(now)).
			Where("name = ?", name).
			Where("(lease_holder = ? OR lease_until IS NULL OR lease_until < ?)", holder, newTime(now)).
			Returning("cursor_seq").
			Scan(ctx, &res)
		if err != nil && !noRows(err) {
			return wrap("lease audit stream", err)
		}
		if len(res) == 1 {
			cursor, ok = res[0].CursorSeq, true
		}
		return nil
	})
	return cursor, ok, err
}

// AdvanceAuditStream moves stream name's cursor from from to to, if holder
// still holds its lease and nobody moved the cursor meanwhile (ECONFLICT
// otherwise: the entries are then sent again by whoever holds the lease,
// which at-least-once delivery allows).
func (db *DB) AdvanceAuditStream(ctx context.Context, name, holder string, from, to int64, now time.Time) error {
	return db.inTx(ctx, false, func(ctx context.Context, t *tx) error {
		res, err := t.btx.NewUpdate().Model((*auditStreamRow)(nil)).
			Set("cursor_seq = ?", to).
			Set("updated_at = ?", newTime(now)).
			Where("name = ? AND lease_holder = ? AND cursor_seq = ?", name, holder, from).
			Exec(ctx)
		if err != nil {
			return wrap("advance audit stream", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return conflictf(nil, "audit stream %s: lease lost or cursor moved", name)
		}
		return nil
	})
}

// ReleaseAuditStream gives up holder's lease of stream name, so another
// process takes over at once.
func (db *DB) ReleaseAuditStream(ctx context.Context, name, holder string) error {
	return db.inTx(ctx, false, func(ctx context.Context, t *tx) error {
		_, err := t.btx.NewUpdate().Model((*auditStreamRow)(nil)).
			Set("lease_holder = ''").Set("lease_until = NULL").
			Where("name = ? AND lease_holder = ?", name, holder).
			Exec(ctx)
		return wrap("release audit stream", err)
	})
}

// AuditStreamCursor returns stream name's cursor (0 before the first use).
func (db *DB) AuditStreamCursor(ctx context.Context, name string) (int64, error) {
	var row auditStreamRow
	if err := db.read.NewSelect().Model(&row).Where("st.name = ?", name).Scan(ctx); err != nil {
		if noRows(err) {
			return 0, nil
		}
		return 0, wrap("read audit stream", err)
	}
	return row.CursorSeq, nil
}

// AuditEntriesAfter calls fn for up to limit entries with Seq > after, in
// Seq order; e is reused for the next entry.
func (db *DB) AuditEntriesAfter(ctx context.Context, after int64, limit int, fn func(e *workflow.AuditEntry) error) error {
	rows, err := db.read.DB.QueryContext(ctx, selectAudit(db.dialect)+" WHERE seq > $1 ORDER BY seq LIMIT $2", after, limit)
	if err != nil {
		return wrap("read audit log", err)
	}
	return db.eachAuditRow(ctx, db.read.DB, rows, fn)
}
