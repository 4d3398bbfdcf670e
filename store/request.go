package store

import (
	"context"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/accessbot/accessbot/workflow"
)

// requestRow is a row of requests.
type requestRow struct {
	bun.BaseModel `bun:"table:requests,alias:r"`

	ID                int64  `bun:"id,pk,autoincrement"`
	Kind              string `bun:"kind"`
	State             string `bun:"state"`
	RequesterID       string `bun:"requester_id"`
	RequesterEmail    string `bun:"requester_email"`
	SubjectID         string `bun:"subject_id"`
	SubjectEmail      string `bun:"subject_email"`
	SubjectUUID       string `bun:"subject_uuid"`
	RoleID            string `bun:"role_id"`
	RoleName          string `bun:"role_name"`
	Reason            string `bun:"reason"`
	DurationNS        int64  `bun:"duration_ns"`
	ApprovalsRequired int    `bun:"approvals_required"`
	AutoApproved      bool   `bun:"auto_approved"`
	DecidedBy         string `bun:"decided_by"`
	DecisionReason    string `bun:"decision_reason"`
	FailureReason     string `bun:"failure_reason"`
	MembershipID      string `bun:"membership_id"`
	CreatedAt         dbTime `bun:"created_at"`
	UpdatedAt         dbTime `bun:"updated_at"`
	ExpiresAt         dbTime `bun:"expires_at"`
	RemindAt          dbTime `bun:"remind_at"`
	RemindedAt        dbTime `bun:"reminded_at"`
	DecidedAt         dbTime `bun:"decided_at"`
	CompletedAt       dbTime `bun:"completed_at"`
	RevokeAt          dbTime `bun:"revoke_at"`
	RevokedAt         dbTime `bun:"revoked_at"`
	RevokeQueued      bool   `bun:"revoke_queued"`
	GrantID           int64  `bun:"grant_id"`
	OverdueSince      dbTime `bun:"overdue_since"`
	OverdueNotifiedAt dbTime `bun:"overdue_notified_at"`
	NextWarningAt     dbTime `bun:"next_warning_at"`
	Version           int64  `bun:"version"`
}

// storedKind is how a kind is written: extensions are additions that name
// the grant they extend (see migration 0002), so the kind CHECK of 0001
// holds on SQLite without rebuilding the table.
func storedKind(k workflow.Kind) string {
	if k == workflow.KindExtend {
		return string(workflow.KindAdd)
	}
	return string(k)
}

func (row *requestRow) kind() workflow.Kind {
	if row.Kind == string(workflow.KindAdd) && row.GrantID != 0 {
		return workflow.KindExtend
	}
	return workflow.Kind(row.Kind)
}

// requestMutableColumns are the columns UpdateRequest writes. The rest (id,
// kind, requester_id, subject_id, role_id, created_at) say which request it
// is and never change.
var requestMutableColumns = []string{
	"state", "requester_email", "subject_email", "subject_uuid", "role_name", "reason",
	"duration_ns", "approvals_required", "auto_approved", "decided_by", "decision_reason",
	"failure_reason", "membership_id", "updated_at", "expires_at", "remind_at", "reminded_at",
	"decided_at", "completed_at", "revoke_at", "revoked_at", "revoke_queued",
	"overdue_since", "overdue_notified_at", "next_warning_at",
}

func newRequestRow(r *workflow.Request) *requestRow {
	return &requestRow{
		ID:                r.ID,
		Kind:              storedKind(r.Kind),
		State:             string(r.State),
		RequesterID:       r.RequesterID,
		RequesterEmail:    r.RequesterEmail,
		SubjectID:         r.SubjectID,
		SubjectEmail:      r.SubjectEmail,
		SubjectUUID:       r.SubjectUUID,
		RoleID:            r.RoleID,
		RoleName:          r.RoleName,
		Reason:            r.Reason,
		DurationNS:        int64(r.Duration),
		ApprovalsRequired: r.ApprovalsRequired,
		AutoApproved:      r.AutoApproved,
		DecidedBy:         r.DecidedBy,
		DecisionReason:    r.DecisionReason,
		FailureReason:     r.FailureReason,
		MembershipID:      r.MembershipID,
		CreatedAt:         newTime(r.CreatedAt),
		UpdatedAt:         newTime(r.UpdatedAt),
		ExpiresAt:         newTime(r.ExpiresAt),
		RemindAt:          newTime(r.RemindAt),
		RemindedAt:        newTime(r.RemindedAt),
		DecidedAt:         newTime(r.DecidedAt),
		CompletedAt:       newTime(r.CompletedAt),
		RevokeAt:          newTime(r.RevokeAt),
		RevokedAt:         newTime(r.RevokedAt),
		RevokeQueued:      r.RevokeQueued,
		GrantID:           r.GrantID,
		OverdueSince:      newTime(r.OverdueSince),
		OverdueNotifiedAt: newTime(r.OverdueNotifiedAt),
		NextWarningAt:     newTime(r.NextWarningAt),
		Version:           r.Version,
	}
}

func (row *requestRow) request() *workflow.Request {
	return &workflow.Request{
		ID:                row.ID,
		Kind:              row.kind(),
		State:             workflow.State(row.State),
		RequesterID:       row.RequesterID,
		RequesterEmail:    row.RequesterEmail,
		SubjectID:         row.SubjectID,
		SubjectEmail:      row.SubjectEmail,
		SubjectUUID:       row.SubjectUUID,
		RoleID:            row.RoleID,
		RoleName:          row.RoleName,
		Reason:            row.Reason,
		Duration:          time.Duration(row.DurationNS),
		ApprovalsRequired: row.ApprovalsRequired,
		AutoApproved:      row.AutoApproved,
		DecidedBy:         row.DecidedBy,
		DecisionReason:    row.DecisionReason,
		FailureReason:     row.FailureReason,
		MembershipID:      row.MembershipID,
		CreatedAt:         row.CreatedAt.Time(),
		UpdatedAt:         row.UpdatedAt.Time(),
		ExpiresAt:         row.ExpiresAt.Time(),
		RemindAt:          row.RemindAt.Time(),
		RemindedAt:        row.RemindedAt.Time(),
		DecidedAt:         row.DecidedAt.Time(),
		CompletedAt:       row.CompletedAt.Time(),
		RevokeAt:          row.RevokeAt.Time(),
		RevokedAt:         row.RevokedAt.Time(),
		RevokeQueued:      row.RevokeQueued,
		GrantID:           row.GrantID,
		OverdueSince:      row.OverdueSince.Time(),
		OverdueNotifiedAt: row.OverdueNotifiedAt.Time(),
		NextWarningAt:     row.NextWarningAt.Time(),
		Version:           row.Version,
	}
}

// approvalRow is a row of approvals.
type approvalRow struct {
	bun.BaseModel `bun:"table:approvals,alias:a"`

	ID            int64  `bun:"id,pk,autoincrement"`
	RequestID     int64  `bun:"request_id"`
	ApproverID    string `bun:"approver_id"`
	ApproverEmail string `bun:"approver_email"`
	ApprovedAt    dbTime `bun:"approved_at"`
}

func (row *approvalRow) approval() workflow.Approval {
	return workflow.Approval{
		RequestID:     row.RequestID,
		ApproverID:    row.ApproverID,
		ApproverEmail: row.ApproverEmail,
		At:            row.ApprovedAt.Time(),
	}
}

// normRequestTimes makes r's times what a read would return (UTC, µs), so
// the caller's copy equals the stored one.
func normRequestTimes(r *workflow.Request) {
	for _, p := range []*time.Time{&r.CreatedAt, &r.UpdatedAt, &r.ExpiresAt, &r.RemindAt, &r.RemindedAt,
		&r.DecidedAt, &r.CompletedAt, &r.RevokeAt, &r.RevokedAt, &r.OverdueSince, &r.OverdueNotifiedAt, &r.NextWarningAt} {
		*p = normTime(*p)
	}
}

// InsertRequest stores a new request and sets its ID and Version (1).
// CreatedAt is set from the clock when zero and UpdatedAt always; all times
// of r are rounded to what the database keeps (UTC, microseconds).
// ECONFLICT when the subject already has an open request (pending, approved
// or executing) of the same kind for the same role.
func (t *tx) InsertRequest(ctx context.Context, r *workflow.Request) error {
	if err := t.writable("insert request"); err != nil {
		return err
	}
	id, version, created, updated := r.ID, r.Version, r.CreatedAt, r.UpdatedAt
	t.onRollback(func() { r.ID, r.Version, r.CreatedAt, r.UpdatedAt = id, version, created, updated })
	return insertRequest(ctx, t.btx, t.db.now(), r)
}

func insertRequest(ctx context.Context, idb bun.IDB, now time.Time, r *workflow.Request) error {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now
	}
	r.UpdatedAt = now
	normRequestTimes(r)
	row := newRequestRow(r)
	row.ID = 0
	row.Version = 1
	if _, err := idb.NewInsert().Model(row).Returning("id").Exec(ctx); err != nil {
		if isUnique(err) {
			return conflictf(err, "%s already has an open request for role %s.", r.SubjectID, roleLabel(r))
		}
		return wrap("insert request", err)
	}
	r.ID = row.ID
	r.Version = 1
	return nil
}

func roleLabel(r *workflow.Request) string {
	if r.RoleName != "" {
		return r.RoleName
	}
	return r.RoleID
}

// Request returns one request with its approvals. ENOTFOUND.
func (t *tx) Request(ctx context.Context, id int64) (*workflow.Request, error) {
	return findRequest(ctx, t.btx, id)
}

func findRequest(ctx context.Context, idb bun.IDB, id int64) (*workflow.Request, error) {
	var row requestRow
	if err := idb.NewSelect().Model(&row).Where("r.id = ?", id).Scan(ctx); err != nil {
		if noRows(err) {
			return nil, notFoundf(err, "Request #%d does not exist.", id)
		}
		return nil, wrap("get request", err)
	}
	rs := []*workflow.Request{row.request()}
	if err := attachApprovals(ctx, idb, rs); err != nil {
		return nil, err
	}
	return rs[0], nil
}

// FindRequests returns the requests matching f with their approvals,
// ordered by ID (descending when f.NewestFirst). Approvals of all of them
// are loaded with one more query.
func (t *tx) FindRequests(ctx context.Context, f workflow.RequestFilter) ([]*workflow.Request, error) {
	return findRequests(ctx, t.btx, f)
}

func findRequests(ctx context.Context, idb bun.IDB, f workflow.RequestFilter) ([]*workflow.Request, error) {
	var rows []requestRow
	q := idb.NewSelect().Model(&rows)
	if f.RequesterID != "" {
		q = q.Where("r.requester_id = ?", f.RequesterID)
	}
	if f.SubjectID != "" {
		q = q.Where("r.subject_id = ?", f.SubjectID)
	}
	if f.SubjectUUID != "" {
		q = q.Where("r.subject_uuid = ?", f.SubjectUUID)
	}
	if f.RoleName != "" {
		q = q.Where("LOWER(r.role_name) = ?", strings.ToLower(f.RoleName))
	}
	if f.GrantID != 0 {
		q = q.Where("r.grant_id = ?", f.GrantID)
	}
	if f.RoleID != "" {
		q = q.Where("r.role_id = ?", f.RoleID)
	}
	switch f.Kind {
	case "":
	case workflow.KindExtend:
		q = q.Where("r.kind = ?", storedKind(f.Kind)).Where("r.grant_id <> 0")
	case workflow.KindAdd:
		q = q.Where("r.kind = ?", string(f.Kind)).Where("r.grant_id = 0")
	default:
		q = q.Where("r.kind = ?", string(f.Kind))
	}
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, s := range f.States {
			states[i] = string(s)
		}
		q = q.Where("r.state IN (?)", bun.List(states))
	}
	if !f.ExpiresBefore.IsZero() {
		q = q.Where("r.state = ?", string(workflow.StatePending)).
			Where("r.expires_at IS NOT NULL").
			Where("r.expires_at <= ?", newTime(f.ExpiresBefore))
	}
	if !f.RemindBefore.IsZero() {
		// "Not yet reminded": never, or before the reminder now due (a
		// workflow that moves RemindAt forward gets another reminder).
		q = q.Where("r.state = ?", string(workflow.StatePending)).
			Where("r.remind_at IS NOT NULL").
			Where("r.remind_at <= ?", newTime(f.RemindBefore)).
			Where("(r.reminded_at IS NULL OR r.reminded_at < r.remind_at)")
	}
	if !f.RevokeBefore.IsZero() {
		q = q.Where("r.state = ?", string(workflow.StateCompleted)).
			Where("r.revoke_at IS NOT NULL").
			Where("r.revoke_at <= ?", newTime(f.RevokeBefore)).
			Where("r.revoke_queued = ?", false)
	}
	if !f.WarnBefore.IsZero() {
		q = q.Where("r.state = ?", string(workflow.StateCompleted)).
			Where("r.next_warning_at IS NOT NULL").
			Where("r.next_warning_at <= ?", newTime(f.WarnBefore)).
			Where("r.revoke_queued = ?", false)
	}
	if f.Overdue || !f.OverdueNotifyBefore.IsZero() {
		q = whereOverdue(q)
	}
	if !f.OverdueNotifyBefore.IsZero() {
		q = q.Where("(r.overdue_notified_at IS NULL OR r.overdue_notified_at <= ?)", newTime(f.OverdueNotifyBefore))
	}
	if f.NewestFirst {
		q = q.Order("r.id DESC")
	} else {
		q = q.Order("r.id ASC")
	}
	if f.Limit > 0 {
		q = q.Limit(int64(f.Limit))
	}
	if err := q.Scan(ctx); err != nil && !noRows(err) {
		return nil, wrap("find requests", err)
	}
	out := make([]*workflow.Request, len(rows))
	for i := range rows {
		out[i] = rows[i].request()
	}
	if err := attachApprovals(ctx, idb, out); err != nil {
		return nil, err
	}
	return out, nil
}

// attachApprovals loads the approvals of rs in one query.
func attachApprovals(ctx context.Context, idb bun.IDB, rs []*workflow.Request) error {
	if len(rs) == 0 {
		return nil
	}
	byID := make(map[int64]*workflow.Request, len(rs))
	ids := make([]int64, 0, len(rs))
	for _, r := range rs {
		byID[r.ID] = r
		ids = append(ids, r.ID)
	}
	var rows []approvalRow
	err := idb.NewSelect().Model(&rows).
		Where("a.request_id IN (?)", bun.List(ids)).
		Order("a.request_id", "a.approved_at", "a.id").
		Scan(ctx)
	if err != nil && !noRows(err) {
		return wrap("load approvals", err)
	}
	for i := range rows {
		r := byID[rows[i].RequestID]
		r.Approvals = append(r.Approvals, rows[i].approval())
	}
	return nil
}

// UpdateRequest writes every mutable field of r (all but ID, Kind,
// RequesterID, SubjectID, RoleID and CreatedAt) if the stored Version still
// equals r.Version, then increments r.Version and sets r.UpdatedAt from the
// clock. Approvals are not written (see InsertApproval). ECONFLICT when
// somebody else changed the request first or the change would give the
// subject a second open request; ENOTFOUND when there is no such request.
func (t *tx) UpdateRequest(ctx context.Context, r *workflow.Request) error {
	if err := t.writable("update request"); err != nil {
		return err
	}
	version, updated := r.Version, r.UpdatedAt
	t.onRollback(func() { r.Version, r.UpdatedAt = version, updated })
	return updateRequest(ctx, t.btx, t.db.now(), r)
}

// updateRequest sets r.UpdatedAt and r.Version only once the row is
// written, so a failed update leaves them as they were.
func updateRequest(ctx context.Context, idb bun.IDB, now time.Time, r *workflow.Request) error {
	normRequestTimes(r)
	row := newRequestRow(r)
	row.UpdatedAt = newTime(now)
	res, err := idb.NewUpdate().Model(row).
		Column(requestMutableColumns...).
		Set("version = version + 1").
		Where("id = ?", r.ID).
		Where("version = ?", r.Version).
		Exec(ctx)
	if err != nil {
		if isUnique(err) {
			return conflictf(err, "%s already has an open request for role %s.", r.SubjectID, roleLabel(r))
		}
		return wrap("update request", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap("update request", err)
	} else if n == 0 {
		exists, err := idb.NewSelect().Model((*requestRow)(nil)).Where("r.id = ?", r.ID).Exists(ctx)
		if err != nil {
			return wrap("update request", err)
		}
		if !exists {
			return notFoundf(nil, "Request #%d does not exist.", r.ID)
		}
		return conflictf(nil, "Request #%d was changed by someone else in the meantime.", r.ID)
	}
	r.UpdatedAt = row.UpdatedAt.Time()
	r.Version++
	return nil
}

// InsertApproval records one approver's yes (At from the clock when zero).
// ECONFLICT when that approver already approved this request; ENOTFOUND
// when the request does not exist.
func (t *tx) InsertApproval(ctx context.Context, a workflow.Approval) error {
	if err := t.writable("insert approval"); err != nil {
		return err
	}
	if a.At.IsZero() {
		a.At = t.db.now()
	}
	row := &approvalRow{RequestID: a.RequestID, ApproverID: a.ApproverID, ApproverEmail: a.ApproverEmail, ApprovedAt: newTime(a.At)}
	if _, err := t.btx.NewInsert().Model(row).Returning("id").Exec(ctx); err != nil {
		switch {
		case isUnique(err):
			return conflictf(err, "%s has already approved request #%d.", a.ApproverID, a.RequestID)
		case isForeignKey(err):
			return notFoundf(err, "Request #%d does not exist.", a.RequestID)
		}
		return wrap("insert approval", err)
	}
	return nil
}

// CountRequestsByState reports how many requests are in each state; every
// state is present, with 0 when none. Like JobCounts it is one statement,
// read without a transaction of its own.
func (db *DB) CountRequestsByState(ctx context.Context) (map[workflow.State]int64, error) {
	var rows []struct {
		State string `bun:"state"`
		N     int64  `bun:"n"`
	}
	if err := db.read.NewSelect().Model((*requestRow)(nil)).
		ColumnExpr("r.state AS state, COUNT(*) AS n").
		Group("r.state").
		Scan(ctx, &rows); err != nil && !noRows(err) {
		return nil, wrap("count requests", err)
	}
	out := make(map[workflow.State]int64, len(workflow.AllStates))
	for _, s := range workflow.AllStates {
		out[s] = 0
	}
	for _, r := range rows {
		out[workflow.State(r.State)] = r.N
	}
	return out, nil
}

// CountOverdueRevocations reports how many grants are still in force
// although their revocation is due and PostHog has not taken it yet.
func (db *DB) CountOverdueRevocations(ctx context.Context) (int64, error) {
	n, err := whereOverdue(db.read.NewSelect().Model((*requestRow)(nil))).Count(ctx)
	if err != nil {
		return 0, wrap("count overdue revocations", err)
	}
	return int64(n), nil
}

// whereOverdue selects the grants whose revocation is overdue: still in
// force, revocation queued, and failed at least once.
func whereOverdue(q *bun.SelectQuery) *bun.SelectQuery {
	return q.Where("r.state = ?", string(workflow.StateCompleted)).
		Where("r.revoke_queued = ?", true).
		Where("r.overdue_since IS NOT NULL")
}
