package workflow

// EventType names a notification.
type EventType string

// Notification events.
const (
	EventCreated          EventType = "created"           // new request: tell owners, confirm to requester
	EventApprovalRecorded EventType = "approval_recorded" // one of several approvals given
	EventApproved         EventType = "approved"          // fully approved, execution queued
	EventDenied           EventType = "denied"
	EventCancelled        EventType = "cancelled"
	EventCompleted        EventType = "completed" // PostHog changed
	EventFailed           EventType = "failed"    // execution failed for good
	EventExpired          EventType = "expired"
	EventReminder         EventType = "reminder"
	EventRevoked          EventType = "revoked"
	EventDrift            EventType = "drift"
	// Grant lifecycle.
	EventExtended          EventType = "extended"           // an extension moved the grant's end (Request is the extension)
	EventExpiryWarning     EventType = "expiry_warning"     // tell the holder the grant ends soon
	EventRevocationOverdue EventType = "revocation_overdue" // tell owners and admins a grant outlives its end
)

// Event is one notification. Request is loaded fresh when the event is
// delivered, so it shows the request's latest state; Type says what happened.
type Event struct {
	Type    EventType
	Request *Request // nil for drift
	Actor   string   // Slack id of who caused it, or SystemActor
	// Owners are who is told: for a request, who can decide it (the role's
	// owners, or the fallback owners, but never its requester or subject,
	// and the admins too when the requester is an owner); for an overdue
	// revocation, the owners and the admins.
	Owners []string
	Drift  *Drift
	// Audience says who this delivery is for: AudienceAll (everything
	// but the requester's DM about a decision: approver messages, every
	// stored copy, owners' alerts) or AudienceRequester (only that DM).
	Audience Audience
	// Review events (review.go): the review, an access review's members,
	// and the positions of the members just answered (empty: all).
	Review      *Review
	ReviewItems []ReviewItem
	Changed     []int
}

// Audience splits one event's delivery into independent jobs.
type Audience string

// Audiences of an Event.
const (
	AudienceAll       Audience = ""
	AudienceRequester Audience = "requester"
)

// TellsRequester reports whether the requester gets a DM about this event,
// delivered by its own JobNotifyRequester.
func (t EventType) TellsRequester() bool {
	switch t {
	case EventApproved, EventDenied, EventCancelled, EventExpired, EventCompleted, EventRevoked, EventFailed, EventExtended:
		return true
	}
	return false
}

// Drift is a difference between PostHog's memberships of a role and what the
// bot last saw and did: someone changed the role outside the bot.
type Drift struct {
	RoleID   string   `json:"role_id"`
	RoleName string   `json:"role_name"`
	Added    []Member `json:"added,omitempty"`   // members PostHog has that the bot did not add
	Removed  []Member `json:"removed,omitempty"` // members that left PostHog outside the bot
}
