package workflow

import (
	"fmt"
	"slices"
	"time"
)

// Kind says whether a request grants a role or takes it away.
type Kind string

// Request kinds.
const (
	KindAdd    Kind = "add"
	KindRemove Kind = "remove"
	// KindExtend asks to move the end of an active grant (GrantID). It is
	// decided like an addition and, approved, makes no PostHog call.
	KindExtend Kind = "extend"
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == KindAdd || k == KindRemove || k == KindExtend }

// State is where a request is in its life.
type State string

// Request states. A request moves pending → approved → executing →
// completed | failed, or pending → denied | cancelled | expired; a completed
// time-bound grant moves completed → revoked.
const (
	StatePending   State = "pending"
	StateApproved  State = "approved"
	StateExecuting State = "executing"
	StateCompleted State = "completed"
	StateFailed    State = "failed"
	StateDenied    State = "denied"
	StateCancelled State = "cancelled"
	StateExpired   State = "expired"
	StateRevoked   State = "revoked"
)

// AllStates lists every state, in life order.
var AllStates = []State{StatePending, StateApproved, StateExecuting, StateCompleted, StateFailed,
	StateDenied, StateCancelled, StateExpired, StateRevoked}

// transitions is the state machine: the states each state may move to.
var transitions = map[State][]State{
	StatePending:   {StateApproved, StateDenied, StateCancelled, StateExpired},
	StateApproved:  {StateExecuting, StateFailed},
	StateExecuting: {StateCompleted, StateFailed},
	StateCompleted: {StateRevoked},
}

// CanMove reports whether the state machine allows from → to.
func CanMove(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Open reports whether a request in this state still awaits an outcome.
func (s State) Open() bool { return slices.Contains(openStates, s) }

// Approval is one owner's yes to a request.
type Approval struct {
	RequestID     int64
	ApproverID    string // Slack user id
	ApproverEmail string
	At            time.Time
}

// Request is one ask to add someone to, or remove someone from, a PostHog role.
// Zero times mean "not set".
type Request struct {
	ID             int64
	Kind           Kind
	State          State
	RequesterID    string // Slack user id of who asked
	RequesterEmail string
	SubjectID      string // Slack user id of whose access changes
	SubjectEmail   string
	SubjectUUID    string // PostHog user uuid of the subject
	RoleID         string
	RoleName       string
	Reason         string
	Duration       time.Duration // grant length; 0 = permanent (always 0 for removals)

	ApprovalsRequired int
	AutoApproved      bool
	Approvals         []Approval // filled by Store reads, written with InsertApproval

	DecidedBy      string // Slack id of who moved it out of pending (final approver, denier, canceller)
	DecisionReason string // why it was denied, cancelled or revoked
	FailureReason  string // why execution failed, in plain words
	MembershipID   string // PostHog role membership id once added
	viewID         string // the Slack view submitting it, only while it is created
	GrantID        int64  // KindExtend: the grant (a completed addition) it extends

	CreatedAt    time.Time
	UpdatedAt    time.Time
	ExpiresAt    time.Time // pending requests expire at this time
	RemindAt     time.Time // owners are reminded at this time (zero: never)
	RemindedAt   time.Time
	DecidedAt    time.Time
	CompletedAt  time.Time
	RevokeAt     time.Time // a completed time-bound grant ends at this time
	RevokedAt    time.Time
	RevokeQueued bool // a revocation job has been written

	// OverdueSince is when the revocation of this grant first failed; zero
	// while it is not overdue. OverdueNotifiedAt is when owners and admins
	// were last told.
	OverdueSince      time.Time
	OverdueNotifiedAt time.Time
	// NextWarningAt is when the holder gets the next expiry warning (zero:
	// none left).
	NextWarningAt time.Time

	// Version increments on every UpdateRequest; updates compare-and-set on it.
	Version int64
}

// Active reports whether r is a grant still in force: a completed addition
// not yet revoked.
func (r *Request) Active() bool { return r.Kind == KindAdd && r.State == StateCompleted }

// Overdue reports whether r is a grant whose revocation PostHog has not yet
// taken: it is still in force past the moment it should have ended.
func (r *Request) Overdue() bool { return r.Active() && r.RevokeQueued && !r.OverdueSince.IsZero() }

// Ref is the short id people see: "#12".
func (r *Request) Ref() string { return fmt.Sprintf("#%d", r.ID) }

// HasApproved reports whether slackID has already approved r.
func (r *Request) HasApproved(slackID string) bool {
	for _, a := range r.Approvals {
		if a.ApproverID == slackID {
			return true
		}
	}
	return false
}

// DurationText renders a grant length for people: "permanent", "8h", "7d".
func DurationText(d time.Duration) string {
	switch {
	case d <= 0:
		return "permanent"
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	default:
		return d.String()
	}
}

// RequestFilter selects requests in Tx.FindRequests. Zero fields do not filter.
type RequestFilter struct {
	RequesterID string
	SubjectID   string
	SubjectUUID string
	GrantID     int64
	RoleName    string // case-insensitive
	RoleID      string
	Kind        Kind
	States      []State
	// Due selectors for the scheduler, compared with <=.
	ExpiresBefore time.Time // pending and expires_at <= t
	RemindBefore  time.Time // pending, remind_at set and <= t, not yet reminded
	RevokeBefore  time.Time // completed, revoke_at set and <= t, revocation not queued
	WarnBefore    time.Time // completed, revocation not queued, next_warning_at set and <= t
	// OverdueNotifyBefore: completed, revocation overdue, owners last told
	// at or before t.
	OverdueNotifyBefore time.Time
	Overdue             bool // completed additions whose revocation is overdue
	Limit               int  // 0: no limit
	NewestFirst         bool // order by id descending instead of ascending
}

// moveTo changes r's state if the state machine allows it. A refusal is a
// bug in the caller, never a user error, hence EINTERNAL.
func (r *Request) moveTo(to State) error {
	if !CanMove(r.State, to) {
		return &Error{Code: EINTERNAL, Err: fmt.Errorf("request %d cannot move from %s to %s", r.ID, r.State, to)}
	}
	r.State = to
	return nil
}
