package store

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/accessbot/accessbot/workflow"
)

// messageRefRow is a row of message_refs: one Slack message about a request
// per channel, so every copy can be updated after a decision.
type messageRefRow struct {
	bun.BaseModel `bun:"table:message_refs,alias:m"`

	RequestID int64  `bun:"request_id,pk"`
	Channel   string `bun:"channel,pk"`
	TS        string `bun:"ts"`
	CreatedAt dbTime `bun:"created_at"`
}

// PutMessageRef records a Slack message about a request, replacing the ts
// of an earlier message in the same channel (CreatedAt keeps the first
// one's). CreatedAt is set from the clock when zero. ENOTFOUND when the
// request does not exist.
func (t *tx) PutMessageRef(ctx context.Context, m workflow.MessageRef) error {
	if err := t.writable("put message ref"); err != nil {
		return err
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = t.db.now()
	}
	row := &messageRefRow{RequestID: m.RequestID, Channel: m.Channel, TS: m.TS, CreatedAt: newTime(m.CreatedAt)}
	_, err := t.btx.NewInsert().Model(row).
		On("CONFLICT (request_id, channel) DO UPDATE").
		Set("ts = EXCLUDED.ts").
		Exec(ctx)
	if isForeignKey(err) {
		return notFoundf(err, "Request #%d does not exist.", m.RequestID)
	}
	return wrap("put message ref", err)
}

// MessageRefs lists the Slack messages about a request, oldest first.
func (t *tx) MessageRefs(ctx context.Context, requestID int64) ([]workflow.MessageRef, error) {
	var rows []messageRefRow
	err := t.btx.NewSelect().Model(&rows).
		Where("m.request_id = ?", requestID).
		Order("m.created_at", "m.channel").
		Scan(ctx)
	if err != nil && !noRows(err) {
		return nil, wrap("list message refs", err)
	}
	out := make([]workflow.MessageRef, len(rows))
	for i, r := range rows {
		out[i] = workflow.MessageRef{RequestID: r.RequestID, Channel: r.Channel, TS: r.TS, CreatedAt: r.CreatedAt.Time()}
	}
	return out, nil
}
