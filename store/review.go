package store

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/accessbot/accessbot/workflow"
)

// reviewRow is a row of reviews: an access review of a role, or the
// post-hoc review of a break-glass grant.
type reviewRow struct {
	bun.BaseModel `bun:"table:reviews,alias:v"`

	ID         int64  `bun:"id,pk,autoincrement"`
	Kind       string `bun:"kind"`
	State      string `bun:"state"`
	RoleID     string `bun:"role_id"`
	RoleName   string `bun:"role_name"`
	RequestID  int64  `bun:"request_id"`
	StartedBy  string `bun:"started_by"`
	StartedAt  dbTime `bun:"started_at"`
	DeadlineAt dbTime `bun:"deadline_at"`
	RemindAt   dbTime `bun:"remind_at"`
	Unanswered string `bun:"unanswered"`
	Outcome    string `bun:"outcome"`
	ClosedBy   string `bun:"closed_by"`
	ClosedAt   dbTime `bun:"closed_at"`
	Version    int64  `bun:"version"`
}

func newReviewRow(r *workflow.Review) *reviewRow {
	unanswered := string(r.Unanswered)
	if unanswered == "" {
		unanswered = string(workflow.DecisionKeep)
	}
	return &reviewRow{ID: r.ID, Kind: string(r.Kind), State: string(r.State), RoleID: r.RoleID, RoleName: r.RoleName,
		RequestID: r.RequestID, StartedBy: r.StartedBy, StartedAt: newTime(r.StartedAt), DeadlineAt: newTime(r.DeadlineAt),
		RemindAt: newTime(r.RemindAt), Unanswered: unanswered, Outcome: r.Outcome, ClosedBy: r.ClosedBy,
		ClosedAt: newTime(r.ClosedAt), Version: r.Version}
}

func (row *reviewRow) review() *workflow.Review {
	return &workflow.Review{ID: row.ID, Kind: workflow.ReviewKind(row.Kind), State: workflow.ReviewState(row.State),
		RoleID: row.RoleID, RoleName: row.RoleName, RequestID: row.RequestID, StartedBy: row.StartedBy,
		StartedAt: row.StartedAt.Time(), DeadlineAt: row.DeadlineAt.Time(), RemindAt: row.RemindAt.Time(),
		Unanswered: workflow.Decision(row.Unanswered), Outcome: row.Outcome, ClosedBy: row.ClosedBy,
		ClosedAt: row.ClosedAt.Time(), Version: row.Version}
}

// reviewItemRow is a row of review_items: one member an access review lists.
type reviewItemRow struct {
	bun.BaseModel `bun:"table:review_items,alias:vi"`

	ReviewID     int64  `bun:"review_id,pk"`
	MembershipID string `bun:"membership_id,pk"`
	Position     int    `bun:"position"`
	UserUUID     string `bun:"user_uuid"`
	Email        string `bun:"email"`
	Name         string `bun:"name"`
	LastLogin    dbTime `bun:"last_login"`
	TwoFactor    *bool  `bun:"two_factor"`
	GrantID      int64  `bun:"grant_id"`
	GrantEndsAt  dbTime `bun:"grant_ends_at"`
	Decision     string `bun:"decision"`
	DecidedBy    string `bun:"decided_by"`
	DecidedAt    dbTime `bun:"decided_at"`
	RemovalID    int64  `bun:"removal_id"`
}

func (row *reviewItemRow) item() workflow.ReviewItem {
	return workflow.ReviewItem{ReviewID: row.ReviewID, Position: row.Position, MembershipID: row.MembershipID,
		UserUUID: row.UserUUID, Email: row.Email, Name: row.Name, LastLogin: row.LastLogin.Time(), TwoFactor: row.TwoFactor,
		GrantID: row.GrantID, GrantEndsAt: row.GrantEndsAt.Time(), Decision: workflow.Decision(row.Decision),
		DecidedBy: row.DecidedBy, DecidedAt: row.DecidedAt.Time(), RemovalID: row.RemovalID}
}

// reviewMessageRow is a row of review_messages: one Slack copy of a page.
type reviewMessageRow struct {
	bun.BaseModel `bun:"table:review_messages,alias:vm"`

	ReviewID  int64  `bun:"review_id,pk"`
	Channel   string `bun:"channel,pk"`
	Page      int    `bun:"page,pk"`
	TS        string `bun:"ts"`
	CreatedAt dbTime `bun:"created_at"`
}

// InsertReview stores a new review, setting ID and Version. ECONFLICT when
// it is an access review and one is open for the role.
func (t *tx) InsertReview(ctx context.Context, r *workflow.Review) error {
	if err := t.writable("insert review"); err != nil {
		return err
	}
	id, version := r.ID, r.Version
	t.onRollback(func() { r.ID, r.Version = id, version })
	row := newReviewRow(r)
	row.ID, row.Version = 0, 1
	if _, err := t.btx.NewInsert().Model(row).Returning("id").Exec(ctx); err != nil {
		if isUnique(err) {
			return conflictf(err, "An access review of %s is already open.", r.RoleName)
		}
		return wrap("insert review", err)
	}
	r.ID, r.Version = row.ID, 1
	return nil
}

// Review returns one review. ENOTFOUND.
func (t *tx) Review(ctx context.Context, id int64) (*workflow.Review, error) {
	var row reviewRow
	if err := t.btx.NewSelect().Model(&row).Where("v.id = ?", id).Scan(ctx); err != nil {
		if noRows(err) {
			return nil, notFoundf(err, "Review #%d does not exist.", id)
		}
		return nil, wrap("get review", err)
	}
	return row.review(), nil
}

// FindReviews returns the reviews matching f, by id.
func (t *tx) FindReviews(ctx context.Context, f workflow.ReviewFilter) ([]*workflow.Review, error) {
	var rows []reviewRow
	q := t.btx.NewSelect().Model(&rows)
	if f.Kind != "" {
		q = q.Where("v.kind = ?", string(f.Kind))
	}
	if f.State != "" {
		q = q.Where("v.state = ?", string(f.State))
	}
	if f.RoleID != "" {
		q = q.Where("v.role_id = ?", f.RoleID)
	}
	if f.RequestID != 0 {
		q = q.Where("v.request_id = ?", f.RequestID)
	}
	if f.StartedBy != "" {
		q = q.Where("v.started_by = ?", f.StartedBy)
	}
	if !f.StartedAfter.IsZero() {
		q = q.Where("v.started_at > ?", newTime(f.StartedAfter))
	}
	if !f.RemindBefore.IsZero() {
		q = q.Where("v.state = 'open' AND v.remind_at IS NOT NULL AND v.remind_at <= ?", newTime(f.RemindBefore))
	}
	if !f.DeadlineBefore.IsZero() {
		q = q.Where("v.state = 'open' AND v.deadline_at IS NOT NULL AND v.deadline_at <= ?", newTime(f.DeadlineBefore))
	}
	if f.NewestFirst {
		q = q.Order("v.id DESC")
	} else {
		q = q.Order("v.id")
	}
	if f.Limit > 0 {
		q = q.Limit(int64(f.Limit))
	}
	if err := q.Scan(ctx); err != nil && !noRows(err) {
		return nil, wrap("find reviews", err)
	}
	out := make([]*workflow.Review, len(rows))
	for i := range rows {
		out[i] = rows[i].review()
	}
	return out, nil
}

// UpdateReview writes state, remind_at, outcome and the close fields if
// the stored version equals r.Version, then increments r.Version.
// ECONFLICT when someone changed the review first, or when there is no
// such review.
func (t *tx) UpdateReview(ctx context.Context, r *workflow.Review) error {
	if err := t.writable("update review"); err != nil {
		return err
	}
	row := newReviewRow(r)
	res, err := t.btx.NewUpdate().Model(row).
		Column("state", "remind_at", "outcome", "closed_by", "closed_at").
		Set("version = version + 1").
		Where("id = ?", r.ID).
		Where("version = ?", r.Version).
		Exec(ctx)
	if err != nil {
		return wrap("update review", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap("update review", err)
	} else if n == 0 {
		return conflictf(nil, "Review #%d was changed by someone else in the meantime.", r.ID)
	}
	version := r.Version
	t.onRollback(func() { r.Version = version })
	r.Version++
	return nil
}

// InsertReviewItems stores the members of a review.
func (t *tx) InsertReviewItems(ctx context.Context, items []workflow.ReviewItem) error {
	if err := t.writable("insert review items"); err != nil {
		return err
	}
	if len(items) == 0 {
		return nil
	}
	rows := make([]reviewItemRow, len(items))
	for i, it := range items {
		rows[i] = reviewItemRow{ReviewID: it.ReviewID, MembershipID: it.MembershipID, Position: it.Position,
			UserUUID: it.UserUUID, Email: it.Email, Name: it.Name, LastLogin: newTime(it.LastLogin), TwoFactor: it.TwoFactor,
			GrantID: it.GrantID, GrantEndsAt: newTime(it.GrantEndsAt), Decision: string(it.Decision)}
	}
	// Bounded batches keep each statement under the databases' limits on
	// bound parameters, however large the role.
	const batch = 200
	for start := 0; start < len(rows); start += batch {
		part := rows[start:min(start+batch, len(rows))]
		if _, err := t.btx.NewInsert().Model(&part).Exec(ctx); err != nil {
			return wrap("insert review items", err)
		}
	}
	return nil
}

// ReviewItems lists a review's members by position.
func (t *tx) ReviewItems(ctx context.Context, reviewID int64) ([]workflow.ReviewItem, error) {
	var rows []reviewItemRow
	if err := t.btx.NewSelect().Model(&rows).Where("vi.review_id = ?", reviewID).Order("vi.position").Scan(ctx); err != nil && !noRows(err) {
		return nil, wrap("list review items", err)
	}
	out := make([]workflow.ReviewItem, len(rows))
	for i := range rows {
		out[i] = rows[i].item()
	}
	return out, nil
}

// DecideReviewItem writes an answer if the member is still unanswered.
// ECONFLICT when someone answered first.
func (t *tx) DecideReviewItem(ctx context.Context, it *workflow.ReviewItem) error {
	if err := t.writable("decide review item"); err != nil {
		return err
	}
	res, err := t.btx.NewUpdate().Model((*reviewItemRow)(nil)).
		Set("decision = ?", string(it.Decision)).
		Set("decided_by = ?", it.DecidedBy).
		Set("decided_at = ?", newTime(it.DecidedAt)).
		Set("removal_id = ?", it.RemovalID).
		Where("review_id = ?", it.ReviewID).
		Where("membership_id = ?", it.MembershipID).
		Where("decision = ''").
		Exec(ctx)
	if err != nil {
		return wrap("decide review item", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap("decide review item", err)
	} else if n == 0 {
		return conflictf(nil, "That member of review #%d was already answered.", it.ReviewID)
	}
	return nil
}

// PutReviewMessage records a Slack copy of a review page, replacing the ts
// of an earlier copy in the same channel and page.
func (t *tx) PutReviewMessage(ctx context.Context, m workflow.ReviewMessage) error {
	if err := t.writable("put review message"); err != nil {
		return err
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = t.db.now()
	}
	row := &reviewMessageRow{ReviewID: m.ReviewID, Channel: m.Channel, Page: m.Page, TS: m.TS, CreatedAt: newTime(m.CreatedAt)}
	_, err := t.btx.NewInsert().Model(row).
		On("CONFLICT (review_id, channel, page) DO UPDATE").
		Set("ts = EXCLUDED.ts").
		Exec(ctx)
	if isForeignKey(err) {
		return notFoundf(err, "Review #%d does not exist.", m.ReviewID)
	}
	return wrap("put review message", err)
}

// ReviewMessages lists the Slack copies of a review by page and channel.
func (t *tx) ReviewMessages(ctx context.Context, reviewID int64) ([]workflow.ReviewMessage, error) {
	var rows []reviewMessageRow
	if err := t.btx.NewSelect().Model(&rows).Where("vm.review_id = ?", reviewID).Order("vm.page", "vm.created_at", "vm.channel").Scan(ctx); err != nil && !noRows(err) {
		return nil, wrap("list review messages", err)
	}
	out := make([]workflow.ReviewMessage, len(rows))
	for i, r := range rows {
		out[i] = workflow.ReviewMessage{ReviewID: r.ReviewID, Channel: r.Channel, Page: r.Page, TS: r.TS, CreatedAt: r.CreatedAt.Time()}
	}
	return out, nil
}
