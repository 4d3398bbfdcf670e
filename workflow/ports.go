package workflow

import (
	"context"
	"time"
)

// Store keeps requests, jobs, owners and the audit log. Every write happens
// inside Update, so a state change, its audit entry and the jobs it needs
// commit together or not at all.
type Store interface {
	// Update runs fn in one read-write transaction, committed when fn
	// returns nil and rolled back otherwise. fn may be called again when the
	// database reports a serialization failure, so it must not have side
	// effects outside tx; fields the Tx methods set on fn's values (IDs,
	// Version, audit Seq and hashes) are restored when a try rolls back.
	Update(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error

	// View runs fn in a read-only transaction: reads see one consistent
	// snapshot and do not queue behind writers; Tx's write methods fail.
	View(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error

	// ClaimJob leases the next due job of one of kinds (all kinds when
	// empty) for lease, in its own transaction: a queued job whose RunAt has
	// come, or a running job whose lease ended before now. It increments
	// Attempts and sets a new LeaseToken. (nil, nil) when none is due. Safe
	// for many workers in many processes at once: a job is held by one
	// lease at a time.
	ClaimJob(ctx context.Context, kinds []JobKind, now time.Time, lease time.Duration) (*Job, error)

	// JobCounts reports queue depth, for metrics.
	JobCounts(ctx context.Context, now time.Time) (JobCounts, error)

	// AuditEntries calls fn for each audit entry matching f, in Seq order,
	// streaming from the database in constant memory. fn's error stops the
	// walk and is returned.
	AuditEntries(ctx context.Context, f AuditFilter, fn func(*AuditEntry) error) error

	// AuditHead returns the Seq and Hash of the newest entry as recorded
	// separately from the entries (so a deleted last entry is detectable);
	// (0, "") for an empty log.
	AuditHead(ctx context.Context) (seq int64, hash string, err error)

	// CountRequestsByState reports how many requests are in each state.
	CountRequestsByState(ctx context.Context) (map[State]int64, error)

	// CountOverdueRevocations reports how many grants are still in force
	// although their revocation failed and is being retried.
	CountOverdueRevocations(ctx context.Context) (int64, error)
}

// Tx is the work that can share one transaction. Methods return *Error with
// ENOTFOUND when a named row does not exist and ECONFLICT when a
// compare-and-set or uniqueness check fails.
type Tx interface {
	// InsertRequest stores a new request, setting ID and Version (1).
	// ECONFLICT when the same subject already has an open request (pending,
	// approved or executing), of any kind, for the same role.
	InsertRequest(ctx context.Context, r *Request) error
	// Request returns one request with its approvals. ENOTFOUND.
	Request(ctx context.Context, id int64) (*Request, error)
	// FindRequests returns the requests matching f, with their approvals.
	FindRequests(ctx context.Context, f RequestFilter) ([]*Request, error)
	// UpdateRequest writes every mutable field of r if the stored Version
	// still equals r.Version, then increments r.Version. ECONFLICT when
	// somebody else changed the request first.
	UpdateRequest(ctx context.Context, r *Request) error
	// InsertApproval records one approver's yes. ECONFLICT when that
	// approver already approved this request.
	InsertApproval(ctx context.Context, a Approval) error

	// EnqueueJob stores a job, setting its ID.
	EnqueueJob(ctx context.Context, j *Job) error
	// FinishJob deletes a job the caller still leases. ECONFLICT when the
	// lease was lost (another worker took it over).
	FinishJob(ctx context.Context, id int64, leaseToken string) error
	// RetryJob puts a leased job back in the queue to run at runAt.
	// ECONFLICT when the lease was lost.
	RetryJob(ctx context.Context, id int64, leaseToken string, runAt time.Time, lastErr string) error
	// FailJob parks a leased job as failed for good. ECONFLICT when the
	// lease was lost.
	FailJob(ctx context.Context, id int64, leaseToken string, lastErr string) error
	// ExpediteJobs makes the queued jobs of kind for a request due at now
	// and reports how many there were.
	ExpediteJobs(ctx context.Context, requestID int64, kind JobKind, now time.Time) (int, error)

	// AppendAudit appends e to the log: it takes the chain head under a lock
	// (so concurrent appends serialize), calls Seal(e, headSeq, headHash),
	// inserts the entry and moves the head. e.Seq, PrevHash and Hash are set
	// on return.
	AppendAudit(ctx context.Context, e *AuditEntry) error

	// OwnerOverrides returns the owner changes made from Slack for a role
	// ("" for every role), oldest first.
	OwnerOverrides(ctx context.Context, roleID string) ([]OwnerOverride, error)
	// PutOwnerOverride upserts the override for (RoleID, UserID).
	PutOwnerOverride(ctx context.Context, o OwnerOverride) error

	// PutMessageRef records a Slack message about a request (upsert on
	// request, channel); MessageRefs lists them, oldest first.
	PutMessageRef(ctx context.Context, m MessageRef) error
	MessageRefs(ctx context.Context, requestID int64) ([]MessageRef, error)

	// PutViewSubmission records that the Slack view viewID created request
	// requestID; ECONFLICT when it already created one. ViewSubmission
	// returns that request (ok false when none).
	PutViewSubmission(ctx context.Context, viewID string, requestID int64) error
	ViewSubmission(ctx context.Context, viewID string) (requestID int64, ok bool, err error)

	// Setting reads a small named value (ok false when unset); PutSetting
	// upserts it.
	Setting(ctx context.Context, key string) (value string, ok bool, err error)
	PutSetting(ctx context.Context, key, value string) error

	ReviewTx // access reviews and break-glass reviews (review.go)
}

// OwnerOverride is one owner change made from Slack: Present true adds the
// user as an owner of the role, false removes them (even if the policy file
// names them).
type OwnerOverride struct {
	RoleID    string
	UserID    string // Slack user id
	Present   bool
	ChangedBy string
	ChangedAt time.Time
}

// MessageRef is a Slack message the bot sent about a request, so every copy
// can be updated when the request is decided.
type MessageRef struct {
	RequestID int64
	Channel   string
	TS        string
	CreatedAt time.Time
	// Shown identifies what the message shows now (a hash of its
	// rendering), so a copy already showing the latest state is not
	// updated again.
	Shown string
}

// Role is a PostHog role.
type Role struct {
	ID      string
	Name    string
	Members int // member count when the directory knows it
	// MemberList holds the role's memberships when the directory read them
	// with the role (nil when it did not).
	MemberList []RoleMember
}

// Member is a PostHog organization member.
type Member struct {
	UUID  string `json:"uuid"` // user uuid, what role memberships take
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
}

// RoleMember is one membership of a PostHog role.
type RoleMember struct {
	MembershipID string `json:"membership_id,omitempty"`
	Member
}

// Directory is what the workflow needs from PostHog. Errors worth retrying
// are *TemporaryError; others are permanent, and their text is shown to
// people as the reason a request failed, so it must be plain words. Each
// method is one call to PostHog, whatever the size of the role or the
// organization (Roles: one per hundred roles; FindMember: at most two), and
// the Priority in the context orders calls that compete for the budget.
type Directory interface {
	// Roles lists every role of the organization, with their memberships.
	Roles(ctx context.Context) ([]Role, error)
	// FindMember finds the active organization member with this email,
	// case-insensitively. ENOTFOUND when there is none.
	FindMember(ctx context.Context, email string) (Member, error)
	// FindRoleMember returns the membership of userUUID in the role; ok is
	// false when the user is not a member.
	FindRoleMember(ctx context.Context, roleID, userUUID string) (m RoleMember, ok bool, err error)
	// AddRoleMember makes userUUID a member of the role and returns the
	// membership id. Must not create twice when retried: when the user is
	// already a member it returns that membership's id, already true and no
	// error (two calls then: the create and the look-up).
	AddRoleMember(ctx context.Context, roleID, userUUID string) (membershipID string, already bool, err error)
	// RemoveRoleMember deletes the membership; existed is false when
	// PostHog had no such membership (404), which is not an error.
	RemoveRoleMember(ctx context.Context, roleID, membershipID string) (existed bool, err error)
}

// Users resolves Slack users.
type Users interface {
	// Email returns the Slack user's email. ENOTFOUND when Slack has none.
	Email(ctx context.Context, slackUserID string) (string, error)
}

// Notifier tells people what happened. Its errors never undo or block a
// state change: a *TemporaryError (rate limited, 5xx, timeout; RetryAfter
// when the other side said when) is retried for up to NotifyRetryWindow,
// never sooner than RetryAfter; any other error is permanent and the
// delivery is dropped with an error log. A retried delivery must not tell
// anybody twice.
type Notifier interface {
	Notify(ctx context.Context, e Event) error
}

// Clock tells the time; tests control it.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current UTC time.
func (SystemClock) Now() time.Time { return time.Now().UTC() }
