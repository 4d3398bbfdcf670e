package store

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/accessbot/accessbot/workflow"
)

// ownerOverrideRow is a row of owner_overrides: the latest owner change made
// from Slack for one (role, user).
type ownerOverrideRow struct {
	bun.BaseModel `bun:"table:owner_overrides,alias:o"`

	RoleID    string `bun:"role_id,pk"`
	UserID    string `bun:"user_id,pk"`
	Present   bool   `bun:"present"`
	ChangedBy string `bun:"changed_by"`
	ChangedAt dbTime `bun:"changed_at"`
}

// OwnerOverrides returns the owner changes made from Slack for roleID (every
// role when ""), oldest change first.
func (t *tx) OwnerOverrides(ctx context.Context, roleID string) ([]workflow.OwnerOverride, error) {
	var rows []ownerOverrideRow
	q := t.btx.NewSelect().Model(&rows)
	if roleID != "" {
		q = q.Where("o.role_id = ?", roleID)
	}
	if err := q.Order("o.changed_at", "o.role_id", "o.user_id").Scan(ctx); err != nil && !noRows(err) {
		return nil, wrap("list owner overrides", err)
	}
	out := make([]workflow.OwnerOverride, len(rows))
	for i, r := range rows {
		out[i] = workflow.OwnerOverride{
			RoleID:    r.RoleID,
			UserID:    r.UserID,
			Present:   r.Present,
			ChangedBy: r.ChangedBy,
			ChangedAt: r.ChangedAt.Time(),
		}
	}
	return out, nil
}

// PutOwnerOverride upserts the override for (RoleID, UserID); ChangedAt is
// set from the clock when zero.
func (t *tx) PutOwnerOverride(ctx context.Context, o workflow.OwnerOverride) error {
	if err := t.writable("put owner override"); err != nil {
		return err
	}
	if o.ChangedAt.IsZero() {
		o.ChangedAt = t.db.now()
	}
	row := &ownerOverrideRow{RoleID: o.RoleID, UserID: o.UserID, Present: o.Present, ChangedBy: o.ChangedBy, ChangedAt: newTime(o.ChangedAt)}
	_, err := t.btx.NewInsert().Model(row).
		On("CONFLICT (role_id, user_id) DO UPDATE").
		Set("present = EXCLUDED.present").
		Set("changed_by = EXCLUDED.changed_by").
		Set("changed_at = EXCLUDED.changed_at").
		Exec(ctx)
	return wrap("put owner override", err)
}
