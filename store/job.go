package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/accessbot/accessbot/workflow"
)

// Job states in the jobs table. Finished jobs are deleted.
const (
	jobQueued  = "queued"
	jobRunning = "running"
	jobFailed  = "failed"
)

// jobRow is a row of jobs.
type jobRow struct {
	bun.BaseModel `bun:"table:jobs,alias:j"`

	ID         int64  `bun:"id,pk,autoincrement"`
	Kind       string `bun:"kind"`
	State      string `bun:"state"`
	RequestID  int64  `bun:"request_id"`
	Payload    string `bun:"payload"`
	Attempts   int    `bun:"attempts"`
	RunAt      dbTime `bun:"run_at"`
	LeaseToken string `bun:"lease_token"`
	LeaseUntil dbTime `bun:"lease_until"`
	LastError  string `bun:"last_error"`
	CreatedAt  dbTime `bun:"created_at"`
}

// jobColumns is the column list ClaimJob returns, in jobRow's order.
const jobColumns = "id, kind, state, request_id, payload, attempts, run_at, lease_token, lease_until, last_error, created_at"

func (row *jobRow) job() *workflow.Job {
	return &workflow.Job{
		ID:         row.ID,
		Kind:       workflow.JobKind(row.Kind),
		RequestID:  row.RequestID,
		Payload:    row.Payload,
		Attempts:   row.Attempts,
		RunAt:      row.RunAt.Time(),
		LeaseToken: row.LeaseToken,
		LeaseUntil: row.LeaseUntil.Time(),
		LastError:  row.LastError,
		CreatedAt:  row.CreatedAt.Time(),
	}
}

// EnqueueJob stores a queued job and sets its ID. A zero RunAt means now;
// CreatedAt is set from the clock when zero. Notify jobs of one request
// (RequestID ≠ 0) are claimed one at a time in ID order.
func (t *tx) EnqueueJob(ctx context.Context, j *workflow.Job) error {
	if err := t.writable("enqueue job"); err != nil {
		return err
	}
	old := *j
	t.onRollback(func() {
		j.ID, j.RunAt, j.CreatedAt, j.LeaseToken, j.LeaseUntil = old.ID, old.RunAt, old.CreatedAt, old.LeaseToken, old.LeaseUntil
	})
	now := t.db.now()
	if j.RunAt.IsZero() {
		j.RunAt = now
	}
	if j.CreatedAt.IsZero() {
		j.CreatedAt = now
	}
	j.RunAt, j.CreatedAt = normTime(j.RunAt), normTime(j.CreatedAt)
	j.LeaseToken, j.LeaseUntil = "", time.Time{}
	row := &jobRow{
		Kind:      string(j.Kind),
		State:     jobQueued,
		RequestID: j.RequestID,
		Payload:   j.Payload,
		Attempts:  j.Attempts,
		RunAt:     newTime(j.RunAt),
		LastError: j.LastError,
		CreatedAt: newTime(j.CreatedAt),
	}
	if _, err := t.btx.NewInsert().Model(row).Returning("id").Exec(ctx); err != nil {
		return wrap("enqueue job", err)
	}
	j.ID = row.ID
	return nil
}

// ClaimJob leases the next due job of one of kinds (all kinds when empty)
// until now+lease, in its own transaction: a queued job whose RunAt has
// come, or a running job whose lease ended before now, oldest RunAt first.
// It increments Attempts and sets a new random LeaseToken. A notify job is
// not due while an older notify job of the same request is queued or
// running, so one request's notifications are delivered in order.
// (nil, nil) when nothing is due.
//
// PostgreSQL picks the row with FOR UPDATE SKIP LOCKED, so workers in many
// processes never wait for, or take, each other's jobs; on SQLite the
// transaction holds the write lock from BEGIN, which serializes claims.
func (db *DB) ClaimJob(ctx context.Context, kinds []workflow.JobKind, now time.Time, lease time.Duration) (*workflow.Job, error) {
	now = normTime(now)
	var claimed *workflow.Job
	err := db.inTx(ctx, false, func(ctx context.Context, t *tx) error {
		j, err := claimJob(ctx, t.btx, db.dialect, kinds, now, lease)
		claimed = j
		return err
	})
	if err != nil {
		return nil, err
	}
	return claimed, nil
}

func claimJob(ctx context.Context, idb bun.IDB, dialect string, kinds []workflow.JobKind, now time.Time, lease time.Duration) (*workflow.Job, error) {
	token, err := newLeaseToken()
	if err != nil {
		return nil, err
	}
	query, args := claimQuery(dialect, kinds, now, lease, token)
	var rows []jobRow
	if err := idb.NewRaw(query, args...).Scan(ctx, &rows); err != nil && !noRows(err) {
		return nil, wrap("claim job", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return rows[0].job(), nil
}

// claimQuery is the statement that claims the next due job of kinds (any
// kind when empty) with the lease token, and its arguments.
func claimQuery(dialect string, kinds []workflow.JobKind, now time.Time, lease time.Duration, token string) (string, []any) {
	var b strings.Builder
	b.WriteString(`UPDATE jobs SET state = ?, attempts = attempts + 1, lease_token = ?, lease_until = ?
WHERE id = (
	SELECT c.id FROM jobs AS c
	WHERE ((c.state = ? AND c.run_at <= ?) OR (c.state = ? AND c.lease_until < ?))`)
	args := []any{jobRunning, token, newTime(now.Add(lease)), jobQueued, newTime(now), jobRunning, newTime(now)}
	if len(kinds) > 0 {
		ks := make([]string, len(kinds))
		for i, k := range kinds {
			ks[i] = string(k)
		}
		b.WriteString("\n\tAND c.kind IN (?)")
		args = append(args, bun.List(ks))
	}
	// An older notify job (of the same notify kind) of the same request
	// that is still waiting or running holds the newer ones back; a failed
	// one does not. Each kind is spelled out so the look-up uses that kind's
	// partial index (request_id, id): with o.kind = c.kind, SQLite scans
	// every queued job for each candidate, holding the only write lock.
	b.WriteString("\n\tAND NOT (c.request_id <> 0 AND (")
	for i, k := range workflow.NotifyKinds {
		if i > 0 {
			b.WriteString(" OR")
		}
		b.WriteString(`
		(c.kind = ? AND EXISTS (SELECT 1 FROM jobs AS o
			WHERE o.kind = ? AND o.request_id = c.request_id AND o.id < c.id AND o.state IN (?, ?)))`)
		args = append(args, string(k), string(k), jobQueued, jobRunning)
	}
	b.WriteString(`))
	ORDER BY c.run_at, c.id
	LIMIT 1`)
	if dialect == DialectPostgres {
		b.WriteString("\n\tFOR UPDATE OF c SKIP LOCKED")
	}
	b.WriteString("\n)\nRETURNING " + jobColumns)
	return b.String(), args
}

// newLeaseToken returns 128 random bits in hex.
func newLeaseToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("store: lease token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// FinishJob deletes a job the caller still leases. ECONFLICT when the lease
// was lost: another worker claimed the job since, or it is gone.
func (t *tx) FinishJob(ctx context.Context, id int64, leaseToken string) error {
	if err := t.writable("finish job"); err != nil {
		return err
	}
	res, err := t.btx.NewDelete().Model((*jobRow)(nil)).
		Where("id = ?", id).Where("state = ?", jobRunning).Where("lease_token = ?", leaseToken).
		Exec(ctx)
	return leaseResult("finish job", id, res, err)
}

// RetryJob puts a leased job back in the queue to run at runAt, recording
// lastErr. ECONFLICT when the lease was lost.
func (t *tx) RetryJob(ctx context.Context, id int64, leaseToken string, runAt time.Time, lastErr string) error {
	if runAt.IsZero() {
		runAt = t.db.now()
	}
	return t.releaseJob(ctx, "retry job", id, leaseToken, jobQueued, runAt, lastErr)
}

// FailJob parks a leased job as failed for good, recording lastErr; it stays
// in the table for operators and JobCounts. ECONFLICT when the lease was
// lost.
func (t *tx) FailJob(ctx context.Context, id int64, leaseToken string, lastErr string) error {
	return t.releaseJob(ctx, "fail job", id, leaseToken, jobFailed, time.Time{}, lastErr)
}

// releaseJob ends the caller's lease on a running job and moves the job to
// state with lastErr, and to runAt unless that is zero.
func (t *tx) releaseJob(ctx context.Context, op string, id int64, leaseToken, state string, runAt time.Time, lastErr string) error {
	if err := t.writable(op); err != nil {
		return err
	}
	q := t.btx.NewUpdate().Model((*jobRow)(nil)).
		Set("state = ?", state).
		Set("last_error = ?", lastErr).
		Set("lease_token = ''").
		Set("lease_until = NULL")
	if !runAt.IsZero() {
		q = q.Set("run_at = ?", newTime(runAt))
	}
	res, err := q.Where("id = ?", id).Where("state = ?", jobRunning).Where("lease_token = ?", leaseToken).
		Exec(ctx)
	return leaseResult(op, id, res, err)
}

// leaseResult turns the result of a lease-checked write into an error:
// zero rows means the lease was lost.
func leaseResult(op string, id int64, res interface{ RowsAffected() (int64, error) }, err error) error {
	if err != nil {
		return wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrap(op, err)
	}
	if n == 0 {
		return conflictf(nil, "Job %d is no longer leased by this worker.", id)
	}
	return nil
}

// JobCounts reports queue depth at now: queued includes running jobs whose
// lease has ended. One statement sees one snapshot, so it needs no
// transaction of its own.
func (db *DB) JobCounts(ctx context.Context, now time.Time) (workflow.JobCounts, error) {
	var c workflow.JobCounts
	t := newTime(now)
	err := db.read.NewRaw(`SELECT
	COALESCE(SUM(CASE WHEN state = ? OR (state = ? AND lease_until < ?) THEN 1 ELSE 0 END), 0) AS queued,
	COALESCE(SUM(CASE WHEN state = ? AND lease_until >= ? THEN 1 ELSE 0 END), 0) AS running,
	COALESCE(SUM(CASE WHEN state = ? THEN 1 ELSE 0 END), 0) AS failed
FROM jobs`, jobQueued, jobRunning, t, jobRunning, t, jobFailed).Scan(ctx, &c.Queued, &c.Running, &c.Failed)
	return c, wrap("count jobs", err)
}

// ExpediteJobs makes the queued jobs of kind for one request due at now,
// and reports how many there were. A job running under a lease is left to
// its worker.
func (t *tx) ExpediteJobs(ctx context.Context, requestID int64, kind workflow.JobKind, now time.Time) (int, error) {
	if err := t.writable("expedite jobs"); err != nil {
		return 0, err
	}
	res, err := t.btx.NewUpdate().Model((*jobRow)(nil)).
		Set("run_at = ?", newTime(now)).
		Where("request_id = ?", requestID).
		Where("kind = ?", string(kind)).
		Where("state = ?", jobQueued).
		Exec(ctx)
	if err != nil {
		return 0, wrap("expedite jobs", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrap("expedite jobs", err)
	}
	return int(n), nil
}
