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
	Shown     string `bun:"shown"`
}

// PutMessageRef records a Slack message about a request, replacing the ts
// and Shown of an earlier message in the same channel (CreatedAt keeps the first
// one's). CreatedAt is set from the clock when zero. ENOTFOUND when the
// request does not exist.
func (t *tx) PutMessageRef(ctx context.Context, m workflow.MessageRef) error {
	if err := t.writable("put message ref"); err != nil {
		return err
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = t.db.now()
	}
	row := &messageRefRow{RequestID: m.RequestID, Channel: m.Channel, TS: m.TS, CreatedAt: newTime(m.CreatedAt), Shown: m.Shown}
	_, err := t.btx.NewInsert().Model(row).
		On("CONFLICT (request_id, channel) DO UPDATE").
		Set("ts = EXCLUDED.ts").
		Set("shown = EXCLUDED.shown").
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
		out[i] = workflow.MessageRef{RequestID: r.RequestID, Channel: r.Channel, TS: r.TS, CreatedAt: r.CreatedAt.Time(), Shown: r.Shown}
	}
	return out, nil
}

// viewSubmissionRow is a row of view_submissions: the Slack view that
// created a request.
type viewSubmissionRow struct {
	bun.BaseModel `bun:"table:view_submissions,alias:vs"`

	ViewID    string `bun:"view_id,pk"`
	RequestID int64  `bun:"request_id"`
	CreatedAt dbTime `bun:"created_at"`
}

// PutViewSubmission records that the view viewID created request
// requestID. ECONFLICT when that view already created one.
func (t *tx) PutViewSubmission(ctx context.Context, viewID string, requestID int64) error {
	if err := t.writable("put view submission"); err != nil {
		return err
	}
	row := &viewSubmissionRow{ViewID: viewID, RequestID: requestID, CreatedAt: newTime(t.db.now())}
	_, err := t.btx.NewInsert().Model(row).Exec(ctx)
	if isUnique(err) {
		return conflictf(err, "View %s already created a request.", viewID)
	}
	return wrap("put view submission", err)
}

// ViewSubmission returns the request the view viewID created (ok false
// when none).
func (t *tx) ViewSubmission(ctx context.Context, viewID string) (int64, bool, error) {
	var row viewSubmissionRow
	err := t.btx.NewSelect().Model(&row).Where("vs.view_id = ?", viewID).Limit(1).Scan(ctx)
	switch {
	case noRows(err):
		return 0, false, nil
	case err != nil:
		return 0, false, wrap("read view submission", err)
	}
	return row.RequestID, true, nil
}
