package workflow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Access reviews. A review asks a role's owners, member by member, whether
// each current member of the role in PostHog should keep it. Its rules:
//
//  1. A review lists the role's members as PostHog has them when it starts
//     (not only those the bot added), with name, email, PostHog's
//     last_login and is_2fa_enabled, and how they got access: the grant in
//     force for them (with its end), or from outside accessbot.
//  2. A review starts when an owner or admin asks (`/access review ROLE`)
//     or when the role's review_every has passed since the last one began
//     (a role with review_every and no review yet gets one at the next
//     tick). At most one access review per role is open: the database
//     refuses a second, so replicas ticking together start it once.
//  3. Each owner gets every member with Keep and Remove, and Keep all
//     remaining. The first answer for a member counts (compare-and-set on
//     the item); later clicks are refused and say so. Owners and admins may
//     answer, but nobody for their own membership (matched by Slack email,
//     as everywhere, or by the PostHog user the bot knows them as): Keep
//     all remaining skips it, and when the member is the only one who
//     could answer, the deadline does.
//  4. Remove queues a removal request, approved by that owner in the same
//     transaction: executed, retried and audited like any removal an owner
//     decided, superseding the member's grants; the member is told why.
//  5. One reminder goes to the owners a day before the deadline (half-way
//     for deadlines of a day or less). At the deadline, members nobody
//     answered are handled by review_unanswered (keep or remove), and the
//     review closes with a summary (kept, removed, unanswered) to the owners
//     and in the audit log. A review whose members are all answered closes
//     at once.
//  6. Everything is stored: a restart, or another replica, carries on
//     where the review was.

// ReviewKind says what a review looks at.
type ReviewKind string

// Review kinds.
const (
	ReviewAccess     ReviewKind = "access"      // a role's members, for its owners to keep or remove
	ReviewBreakGlass ReviewKind = "break_glass" // one break-glass grant, after the fact (breakglass.go)
)

// ReviewState is whether a review still waits for answers.
type ReviewState string

// Review states.
const (
	ReviewOpen   ReviewState = "open"
	ReviewClosed ReviewState = "closed"
)

// Decision is an answer about one member in an access review.
type Decision string

// Decisions.
const (
	DecisionKeep   Decision = "keep"
	DecisionRemove Decision = "remove"
)

// Audit actions of reviews and break-glass.
const (
	ActionReviewStarted          Action = "review_started"
	ActionReviewDecided          Action = "review_decided"
	ActionReviewClosed           Action = "review_closed"
	ActionBreakGlassUsed         Action = "break_glass_used"
	ActionBreakGlassAcknowledged Action = "break_glass_acknowledged"
	ActionBreakGlassRevoked      Action = "break_glass_revoked"
)

const (
	reviewTriggerSchedule        = "schedule"
	reviewTriggerCommand         = "command"
	breakGlassReminderEvery      = 24 * time.Hour
	reviewReminderBeforeDeadline = 24 * time.Hour
	defaultRevokeNowReason       = "break-glass access revoked by an owner"
	unansweredNote               = "nobody answered by the deadline"
	reviewRemovalByOwner         = "removed by an owner"
	reviewAuditReviewKey         = "review"
	postHogOnlyPrefix            = "posthog:"
)

// Notification events of reviews and break-glass. Event.Review holds the
// review, Event.ReviewItems its members (access reviews), Event.Changed the
// positions of the members whose answer changed (empty: all).
const (
	EventReviewStarted      EventType = "review_started"
	EventReviewDecided      EventType = "review_decided"
	EventReviewReminder     EventType = "review_reminder"
	EventReviewClosed       EventType = "review_closed"
	EventBreakGlassUsed     EventType = "break_glass_used"
	EventBreakGlassReminder EventType = "break_glass_reminder"
	EventBreakGlassAnswered EventType = "break_glass_answered"
)

// PostHogOnlySubject reports whether a request's SubjectID names no Slack
// user: a member the bot never saw in Slack, removed by an access review.
// Such ids are "posthog:" and the member's email.
func PostHogOnlySubject(id string) bool {
	return len(id) > len(postHogOnlyPrefix) && id[:len(postHogOnlyPrefix)] == postHogOnlyPrefix
}

// Review is one access review of a role, or the post-hoc review of one
// break-glass grant. Zero times mean "not set".
type Review struct {
	ID        int64
	Kind      ReviewKind
	State     ReviewState
	RoleID    string
	RoleName  string
	RequestID int64  // break-glass: the grant under review
	StartedBy string // Slack id, or SystemActor for the schedule
	StartedAt time.Time
	// DeadlineAt is when an access review closes; Unanswered says what
	// happens then to members nobody answered.
	DeadlineAt time.Time
	Unanswered Decision
	RemindAt   time.Time // when owners next hear about it (zero: never)
	// Outcome of a break-glass review: BreakGlassAcknowledged or
	// BreakGlassRevoked once an owner answered.
	Outcome  string
	ClosedBy string
	ClosedAt time.Time
	Version  int64 // compare-and-set by UpdateReview
}

// ReviewItem is one member listed by an access review.
type ReviewItem struct {
	ReviewID     int64
	Position     int // order shown, from 0
	MembershipID string
	UserUUID     string
	Email        string
	Name         string
	LastLogin    time.Time // zero: never logged in, or PostHog did not say
	TwoFactor    *bool     // nil: PostHog did not say
	GrantID      int64     // the grant in force for them; 0: access from outside accessbot
	GrantEndsAt  time.Time // zero: permanent (or no grant)
	Decision     Decision  // "" until answered
	DecidedBy    string    // Slack id, or SystemActor at the deadline
	DecidedAt    time.Time
	RemovalID    int64 // the removal request a Remove queued
	// LeftToDeadline is set on the items of a notification, not stored:
	// the only owner or admin who could answer for this member is the
	// member, who may not decide on their own access, so the deadline's
	// review_unanswered rule will.
	LeftToDeadline bool
}

// ReviewMessage is one Slack copy of a review: a page of it in a channel.
type ReviewMessage struct {
	ReviewID  int64
	Channel   string
	Page      int
	TS        string
	CreatedAt time.Time
}

// ReviewFilter selects reviews in FindReviews. Zero fields do not filter.
type ReviewFilter struct {
	Kind           ReviewKind
	State          ReviewState
	RoleID         string
	RequestID      int64
	StartedBy      string
	StartedAfter   time.Time // started_at > t
	RemindBefore   time.Time // open, remind_at set and <= t
	DeadlineBefore time.Time // open, deadline_at set and <= t
	NewestFirst    bool
	Limit          int
}

// ReviewTx is the store work of reviews; Tx includes it.
type ReviewTx interface {
	// InsertReview stores a new review, setting ID and Version (1).
	// ECONFLICT when it is an access review and one is open for the role.
	InsertReview(ctx context.Context, r *Review) error
	// Review returns one review. ENOTFOUND.
	Review(ctx context.Context, id int64) (*Review, error)
	// FindReviews returns the reviews matching f, by id.
	FindReviews(ctx context.Context, f ReviewFilter) ([]*Review, error)
	// UpdateReview writes r's state, remind, outcome and close fields if
	// the stored Version equals r.Version, then increments it. ECONFLICT
	// when someone changed it first.
	UpdateReview(ctx context.Context, r *Review) error
	// InsertReviewItems stores the members of a review.
	InsertReviewItems(ctx context.Context, items []ReviewItem) error
	// ReviewItems lists a review's members by position.
	ReviewItems(ctx context.Context, reviewID int64) ([]ReviewItem, error)
	// DecideReviewItem writes it's Decision, DecidedBy, DecidedAt and
	// RemovalID if the item is still unanswered. ECONFLICT when it is not.
	DecideReviewItem(ctx context.Context, it *ReviewItem) error
	// PutReviewMessage records a Slack copy of a review (upsert on review,
	// channel, page); ReviewMessages lists them by page and channel.
	PutReviewMessage(ctx context.Context, m ReviewMessage) error
	ReviewMessages(ctx context.Context, reviewID int64) ([]ReviewMessage, error)
}

// ReviewMember is a role member as an access review shows it.
type ReviewMember struct {
	RoleMember
	LastLogin time.Time // zero: never, or not known
	TwoFactor *bool     // nil: not known
}

// ReviewDirectory is what access reviews need from PostHog besides
// Directory: the role's members with their last login and 2FA. A
// Directory without it gives reviews without those two columns.
type ReviewDirectory interface {
	// RoleMembersDetailed lists a role's members with last_login and
	// is_2fa_enabled from the organization members list.
	RoleMembersDetailed(ctx context.Context, roleID string) ([]ReviewMember, error)
}

// Reviews runs access reviews; see the rules above.
type Reviews struct{ s *Service }

// Reviews returns the access reviews of s.
func (s *Service) Reviews() *Reviews { return &Reviews{s: s} }

// Start begins an access review of the role now, for actor (an owner of
// the role or an admin). Errors: EINVALID (Field "role": unknown role),
// EFORBIDDEN, ECONFLICT (a review of the role is open), EUNAVAILABLE.
func (v *Reviews) Start(ctx context.Context, actor, roleRef string) (*Review, error) {
	s := v.s
	role, err := s.ResolveRole(ctx, roleRef)
	if err != nil {
		return nil, err
	}
	var ok bool
	if err := s.store.View(ctx, func(ctx context.Context, tx Tx) error {
		ok, err = s.mayManage(ctx, tx, role, actor)
		return err
	}); err != nil {
		return nil, err
	}
	if !ok {
		return nil, Errorf(EFORBIDDEN, "Only the owners of %s (or an admin) can start a review of it.", role.Name)
	}
	return v.start(ctx, role, actor, reviewTriggerCommand)
}

// errNotDue stops a scheduled review another replica already started.
var errNotDue = errors.New("review not due")

func (v *Reviews) start(ctx context.Context, role Role, actor, trigger string) (*Review, error) {
	s := v.s
	members, err := v.members(ctx, role.ID)
	if err != nil {
		return nil, directoryError("list the role's members", err)
	}
	rules := s.policy.RulesFor(role)
	now := s.Now()
	actorEmail := ""
	if actor != SystemActor {
		actorEmail = s.optionalEmail(ctx, actor)
	}
	var out *Review
	err = s.update(ctx, func(ctx context.Context, tx Tx) error {
		open, err := tx.FindReviews(ctx, ReviewFilter{Kind: ReviewAccess, RoleID: role.ID, State: ReviewOpen, Limit: 1})
		if err != nil {
			return err
		}
		if len(open) > 0 {
			if trigger == reviewTriggerSchedule {
				return errNotDue
			}
			return Errorf(ECONFLICT, "Access review #%d of %s is already open; it closes %s.", open[0].ID, role.Name, open[0].DeadlineAt.UTC().Format("2006-01-02 15:04 UTC"))
		}
		if trigger == reviewTriggerSchedule {
			last, err := tx.FindReviews(ctx, ReviewFilter{Kind: ReviewAccess, RoleID: role.ID, NewestFirst: true, Limit: 1})
			if err != nil {
				return err
			}
			if len(last) > 0 && now.Sub(last[0].StartedAt) < rules.ReviewEvery {
				return errNotDue
			}
		}
		rev := &Review{Kind: ReviewAccess, State: ReviewOpen, RoleID: role.ID, RoleName: role.Name, StartedBy: actor,
			StartedAt: now, DeadlineAt: now.Add(rules.ReviewDeadline), Unanswered: rules.ReviewUnanswered}
		before := reviewReminderBeforeDeadline
		if rules.ReviewDeadline <= before {
			before = rules.ReviewDeadline / 2
		}
		rev.RemindAt = rev.DeadlineAt.Add(-before)
		if err := tx.InsertReview(ctx, rev); err != nil {
			if ErrorCode(err) == ECONFLICT {
				return errRetry{err} // another replica just started one: read it
			}
			return err
		}
		grants, err := tx.FindRequests(ctx, RequestFilter{RoleID: role.ID, Kind: KindAdd, States: []State{StateCompleted}})
		if err != nil {
			return err
		}
		items := make([]ReviewItem, 0, len(members))
		outside := 0
		for i, m := range members {
			it := ReviewItem{ReviewID: rev.ID, Position: i, MembershipID: m.MembershipID, UserUUID: m.UUID,
				Email: m.Email, Name: m.Name, LastLogin: m.LastLogin, TwoFactor: m.TwoFactor}
			for _, g := range grants { // oldest first: the newest grant wins
				if g.SubjectUUID == m.UUID {
					it.GrantID, it.GrantEndsAt = g.ID, g.RevokeAt
				}
			}
			if it.GrantID == 0 {
				outside++
			}
			items = append(items, it)
		}
		if err := tx.InsertReviewItems(ctx, items); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, AuditEntry{ActorID: actor, ActorEmail: actorEmail, Action: ActionReviewStarted,
			RoleID: role.ID, RoleName: role.Name}, map[string]any{
			reviewAuditReviewKey: rev.ID, "members": len(items), "outside_accessbot": outside, "trigger": trigger,
			"deadline": rev.DeadlineAt.Format(time.RFC3339), "unanswered": string(rev.Unanswered)}); err != nil {
			return err
		}
		out = rev
		if len(items) == 0 {
			return v.closeTx(ctx, tx, rev, items, actor, actorEmail)
		}
		return s.enqueueNotify(ctx, tx, 0, notifyPayload{Type: EventReviewStarted, Actor: actor, Review: rev.ID})
	})
	if err != nil {
		return nil, err
	}
	s.nudge()
	s.log.Info().Int64("review_id", out.ID).Str("role_id", role.ID).Str("trigger", trigger).Int("members", len(members)).Msg("access review started")
	return out, nil
}

// members reads the role's members for a review, with last login and 2FA
// when the directory can tell (else from the role list, without them). A
// review reads whole lists: background work, after people's requests.
func (v *Reviews) members(ctx context.Context, roleID string) ([]ReviewMember, error) {
	ctx = WithPriority(ctx, PriorityBackground)
	if rd, ok := v.s.dir.(ReviewDirectory); ok {
		return rd.RoleMembersDetailed(ctx, roleID)
	}
	roles, err := v.s.dir.Roles(ctx)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(roles, func(r Role) bool { return r.ID == roleID })
	if i < 0 {
		return nil, nil
	}
	out := make([]ReviewMember, len(roles[i].MemberList))
	for j, m := range roles[i].MemberList {
		out[j] = ReviewMember{RoleMember: m}
	}
	return out, nil
}

// Get returns a review and its members. Errors: ENOTFOUND.
func (v *Reviews) Get(ctx context.Context, id int64) (*Review, []ReviewItem, error) {
	var rev *Review
	var items []ReviewItem
	err := v.s.store.View(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		if rev, err = reviewLookup(ctx, tx, id); err != nil {
			return err
		}
		items, err = tx.ReviewItems(ctx, id)
		return err
	})
	return rev, items, err
}

func reviewLookup(ctx context.Context, tx Tx, id int64) (*Review, error) {
	rev, err := tx.Review(ctx, id)
	if ErrorCode(err) == ENOTFOUND {
		return nil, Errorf(ENOTFOUND, "There is no review #%d.", id)
	}
	if err != nil {
		return nil, fmt.Errorf("load review %d: %w", id, err)
	}
	return rev, nil
}

// Decide records actor's answer about one member (by membership id) of
// access review id. Remove queues the member's removal (rule 4). Errors:
// ENOTFOUND, EFORBIDDEN (not an owner of the role or an admin), ECONFLICT
// (the review closed, or someone answered for that member first).
func (v *Reviews) Decide(ctx context.Context, id int64, membershipID, actor string, d Decision) (*ReviewItem, error) {
	if d != DecisionKeep && d != DecisionRemove {
		return nil, Errorf(EINVALID, "Unknown review answer %q.", d)
	}
	var out ReviewItem
	_, err := v.answer(ctx, id, actor, func(rev *Review, items []ReviewItem, own func(ReviewItem) bool) ([]int, error) {
		i := slices.IndexFunc(items, func(it ReviewItem) bool { return it.MembershipID == membershipID })
		if i < 0 {
			return nil, Errorf(ENOTFOUND, "Review #%d does not list that member.", id)
		}
		if items[i].Decision != "" {
			return nil, &Error{Code: ECONFLICT, Message: fmt.Sprintf("%s was already answered in review #%d: %s.",
				nameOrEmail(items[i]), id, items[i].Decision)}
		}
		if own(items[i]) {
			then := "kept"
			if rev.Unanswered == DecisionRemove {
				then = "removed"
			}
			return nil, Errorf(EFORBIDDEN, "You can't answer for your own access to %s; another owner or an admin has to. If nobody does by the deadline, it is %s.",
				rev.RoleName, then)
		}
		out = items[i]
		return []int{i}, nil
	}, d)
	if err != nil {
		return nil, err
	}
	out.Decision = d
	return &out, nil
}

// KeepRemaining keeps every member of access review id nobody has answered
// yet, but actor's own membership, which it leaves unanswered (ownLeft).
// Errors as Decide.
func (v *Reviews) KeepRemaining(ctx context.Context, id int64, actor string) (kept int, ownLeft bool, err error) {
	kept, err = v.answer(ctx, id, actor, func(_ *Review, items []ReviewItem, own func(ReviewItem) bool) ([]int, error) {
		var idx []int
		for i, it := range items {
			switch {
			case it.Decision != "":
			case own(it):
				ownLeft = true
			default:
				idx = append(idx, i)
			}
		}
		return idx, nil
	}, DecisionKeep)
	return kept, ownLeft, err
}

// reviewerEmail is actor's email, to find their own line in a review. An
// actor Slack gives no email for has none to match; one whose email Slack
// did not give in time is asked to answer again, as their own line could
// not be told apart.
func (v *Reviews) reviewerEmail(ctx context.Context, actor string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, emailBudget)
	defer cancel()
	email, err := v.s.users.Email(ctx, actor)
	switch {
	case err == nil:
		return email, nil
	case ErrorCode(err) == ENOTFOUND:
		return "", nil
	}
	return "", &Error{Code: EUNAVAILABLE, Err: err,
		Message: "Slack did not tell me your email in time, so I can't check which member is you. Please answer again in a minute."}
}

// ownTx returns whether a review item is actor's own membership: the same
// email (case-insensitively, as Slack users map to PostHog users), or the
// PostHog user the bot last saw actor as.
func ownTx(ctx context.Context, tx Tx, actor, actorEmail string) (func(ReviewItem) bool, error) {
	seen, err := tx.FindRequests(ctx, RequestFilter{SubjectID: actor, NewestFirst: true, Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("find the PostHog user of %s: %w", actor, err)
	}
	uuid := ""
	if len(seen) > 0 {
		uuid = seen[0].SubjectUUID
	}
	return func(it ReviewItem) bool {
		return (actorEmail != "" && strings.EqualFold(it.Email, actorEmail)) || (uuid != "" && it.UserUUID == uuid)
	}, nil
}

func nameOrEmail(it ReviewItem) string {
	if it.Name != "" {
		return it.Name
	}
	return it.Email
}

// answer applies decision d of actor to the items pick chooses, in one
// transaction, and closes the review when nobody is left unanswered.
func (v *Reviews) answer(ctx context.Context, id int64, actor string, pick func(*Review, []ReviewItem, func(ReviewItem) bool) ([]int, error), d Decision) (int, error) {
	s := v.s
	actorEmail, err := v.reviewerEmail(ctx, actor)
	if err != nil {
		return 0, err
	}
	n := 0
	err = s.update(ctx, func(ctx context.Context, tx Tx) error {
		rev, err := reviewLookup(ctx, tx, id)
		if err != nil {
			return err
		}
		if rev.Kind != ReviewAccess {
			return Errorf(ENOTFOUND, "There is no access review #%d.", id)
		}
		ok, err := s.mayManage(ctx, tx, Role{ID: rev.RoleID, Name: rev.RoleName}, actor)
		if err != nil {
			return err
		}
		if !ok {
			return Errorf(EFORBIDDEN, "Only the owners of %s (or an admin) can answer its review.", rev.RoleName)
		}
		if rev.State != ReviewOpen {
			return Errorf(ECONFLICT, "Access review #%d of %s is closed.", rev.ID, rev.RoleName)
		}
		items, err := tx.ReviewItems(ctx, id)
		if err != nil {
			return err
		}
		own, err := ownTx(ctx, tx, actor, actorEmail)
		if err != nil {
			return err
		}
		idx, err := pick(rev, items, own)
		if err != nil {
			return err
		}
		changed := make([]int, 0, len(idx))
		for _, i := range idx {
			if err := v.decideTx(ctx, tx, rev, &items[i], d, actor, actorEmail, reviewRemovalByOwner); err != nil {
				return err
			}
			changed = append(changed, items[i].Position)
		}
		n = len(changed)
		if !slices.ContainsFunc(items, func(it ReviewItem) bool { return it.Decision == "" }) {
			return v.closeTx(ctx, tx, rev, items, actor, actorEmail)
		}
		if n == 0 {
			return nil
		}
		return s.enqueueNotify(ctx, tx, 0, notifyPayload{Type: EventReviewDecided, Actor: actor, Review: rev.ID, Changed: changed})
	})
	if err != nil {
		return 0, err
	}
	s.nudge()
	s.log.Info().Int64("review_id", id).Str("slack_user", actor).Str("decision", string(d)).Int("members", n).Msg("review answered")
	return n, nil
}

// decideTx writes one answer, queueing the removal for Remove.
func (v *Reviews) decideTx(ctx context.Context, tx Tx, rev *Review, it *ReviewItem, d Decision, actor, actorEmail, why string) error {
	s := v.s
	if d == DecisionRemove {
		id, err := v.queueRemovalTx(ctx, tx, rev, it, actor, actorEmail, why)
		if err != nil {
			return err
		}
		it.RemovalID = id
	}
	it.Decision, it.DecidedBy, it.DecidedAt = d, actor, s.Now()
	if err := tx.DecideReviewItem(ctx, it); err != nil {
		return stale(err)
	}
	details := map[string]any{reviewAuditReviewKey: rev.ID, "decision": string(d), "membership_id": it.MembershipID,
		"user_uuid": it.UserUUID, "grant": it.GrantID}
	if !it.LastLogin.IsZero() {
		details["last_login"] = it.LastLogin.Format(time.RFC3339)
	}
	if it.RemovalID != 0 {
		details["removal_request"] = it.RemovalID
	}
	if actor == SystemActor {
		details["note"] = unansweredNote
	}
	return s.audit(ctx, tx, AuditEntry{ActorID: actor, ActorEmail: actorEmail, Action: ActionReviewDecided, RequestID: it.RemovalID,
		RoleID: rev.RoleID, RoleName: rev.RoleName, SubjectEmail: it.Email}, details)
}

// queueRemovalTx writes the removal of a reviewed member as a request the
// deciding owner approved, with its execution job (rule 4). A removal
// already under way is reused; a pending request of the member for the
// role (an extension, say) is cancelled, as only one may be open.
func (v *Reviews) queueRemovalTx(ctx context.Context, tx Tx, rev *Review, it *ReviewItem, actor, actorEmail, why string) (int64, error) {
	s := v.s
	subjectID, err := v.slackIDTx(ctx, tx, it.UserUUID, it.Email)
	if err != nil {
		return 0, err
	}
	role := Role{ID: rev.RoleID, Name: rev.RoleName}
	open, err := tx.FindRequests(ctx, RequestFilter{SubjectID: subjectID, RoleID: rev.RoleID, States: openStates})
	if err != nil {
		return 0, err
	}
	now := s.Now()
	for _, o := range open {
		switch {
		case o.Kind == KindRemove && o.State != StatePending:
			return o.ID, nil // already being removed
		case o.State == StatePending:
			if err := s.withdrawTx(ctx, tx, o, actor, actorEmail, fmt.Sprintf("the member is being removed by access review #%d", rev.ID)); err != nil {
				return 0, err
			}
		default:
			return 0, Errorf(ECONFLICT, "%s of %s on %s is being carried out in PostHog right now; answer again in a minute.",
				o.Ref(), nameOrEmail(*it), role.Name)
		}
	}
	r := &Request{
		Kind: KindRemove, State: StatePending, RequesterID: actor, RequesterEmail: actorEmail,
		SubjectID: subjectID, SubjectEmail: it.Email, SubjectUUID: it.UserUUID, RoleID: rev.RoleID, RoleName: rev.RoleName,
		Reason: fmt.Sprintf("access review #%d: %s", rev.ID, why), ApprovalsRequired: 1,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(s.policy.RulesFor(role).PendingExpiry),
	}
	if err := tx.InsertRequest(ctx, r); err != nil {
		return 0, stale(fmt.Errorf("insert review removal: %w", err))
	}
	if err := s.auditRequest(ctx, tx, r, actor, actorEmail, ActionRequestCreated, map[string]any{
		"kind": string(r.Kind), "reason": r.Reason, reviewAuditReviewKey: rev.ID, "requester": actor, "requester_email": actorEmail}); err != nil {
		return 0, err
	}
	if _, err := s.approveTx(ctx, tx, r, actor, actorEmail, map[string]any{reviewAuditReviewKey: rev.ID}); err != nil {
		return 0, err
	}
	return r.ID, nil
}

// slackIDTx finds the Slack user of a PostHog member from the requests the
// bot has seen for them; a member the bot never saw gets a PostHog-only id
// (PostHogOnlySubject).
func (v *Reviews) slackIDTx(ctx context.Context, tx Tx, userUUID, email string) (string, error) {
	seen, err := tx.FindRequests(ctx, RequestFilter{SubjectUUID: userUUID, NewestFirst: true, Limit: 1})
	if err != nil {
		return "", err
	}
	if len(seen) > 0 && !PostHogOnlySubject(seen[0].SubjectID) {
		return seen[0].SubjectID, nil
	}
	return postHogOnlyPrefix + email, nil
}

// closeTx handles the unanswered members by the review's rule and closes
// it with its summary (rule 5).
func (v *Reviews) closeTx(ctx context.Context, tx Tx, rev *Review, items []ReviewItem, actor, actorEmail string) error {
	s := v.s
	unanswered := 0
	for i := range items {
		if items[i].Decision != "" {
			continue
		}
		unanswered++
		if err := v.decideTx(ctx, tx, rev, &items[i], rev.Unanswered, SystemActor, "", unansweredNote); err != nil {
			return err
		}
	}
	sum := Summarize(items)
	now := s.Now()
	rev.State, rev.ClosedAt, rev.ClosedBy, rev.RemindAt = ReviewClosed, now, actor, time.Time{}
	if err := tx.UpdateReview(ctx, rev); err != nil {
		return stale(err)
	}
	if err := s.audit(ctx, tx, AuditEntry{ActorID: actor, ActorEmail: actorEmail, Action: ActionReviewClosed, RoleID: rev.RoleID, RoleName: rev.RoleName},
		map[string]any{reviewAuditReviewKey: rev.ID, "members": len(items), "kept": sum.Kept, "removed": sum.Removed,
			"unanswered": unanswered, "unanswered_handled_as": string(rev.Unanswered)}); err != nil {
		return err
	}
	return s.enqueueNotify(ctx, tx, 0, notifyPayload{Type: EventReviewClosed, Actor: actor, Review: rev.ID})
}

// ReviewSummary counts the answers of a review's members.
type ReviewSummary struct {
	Kept, Removed, Unanswered, Open int
}

// Summarize counts the answers of items: Unanswered are those the deadline
// decided, Open those still waiting.
func Summarize(items []ReviewItem) ReviewSummary {
	var s ReviewSummary
	for _, it := range items {
		switch {
		case it.Decision == "":
			s.Open++
			continue
		case it.DecidedBy == SystemActor:
			s.Unanswered++
		}
		if it.Decision == DecisionRemove {
			s.Removed++
		} else {
			s.Kept++
		}
	}
	return s
}

// RecordMessage remembers a Slack copy of a review.
func (v *Reviews) RecordMessage(ctx context.Context, m ReviewMessage) error {
	if m.CreatedAt.IsZero() {
		m.CreatedAt = v.s.Now()
	}
	return v.s.store.Update(ctx, func(ctx context.Context, tx Tx) error { return tx.PutReviewMessage(ctx, m) })
}

// Messages lists the Slack copies of a review.
func (v *Reviews) Messages(ctx context.Context, id int64) ([]ReviewMessage, error) {
	var out []ReviewMessage
	err := v.s.store.View(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		out, err = tx.ReviewMessages(ctx, id)
		return err
	})
	return out, err
}

// tick closes access reviews at their deadline, reminds owners, and starts
// the reviews the schedule calls for.
func (v *Reviews) tick(ctx context.Context, now time.Time) error {
	s := v.s
	var errs []error
	due := []struct {
		f     ReviewFilter
		apply func(ctx context.Context, tx Tx, rev *Review) error
	}{
		{ReviewFilter{Kind: ReviewAccess, DeadlineBefore: now, Limit: schedulerBatch}, func(ctx context.Context, tx Tx, rev *Review) error {
			items, err := tx.ReviewItems(ctx, rev.ID)
			if err != nil {
				return err
			}
			return v.closeTx(ctx, tx, rev, items, SystemActor, "")
		}},
		{ReviewFilter{Kind: ReviewAccess, RemindBefore: now, Limit: schedulerBatch}, func(ctx context.Context, tx Tx, rev *Review) error {
			rev.RemindAt = time.Time{}
			if err := tx.UpdateReview(ctx, rev); err != nil {
				return stale(err)
			}
			return s.enqueueNotify(ctx, tx, 0, notifyPayload{Type: EventReviewReminder, Actor: SystemActor, Review: rev.ID})
		}},
		{ReviewFilter{Kind: ReviewBreakGlass, RemindBefore: now, Limit: schedulerBatch}, func(ctx context.Context, tx Tx, rev *Review) error {
			rev.RemindAt = now.Add(breakGlassReminderEvery)
			if err := tx.UpdateReview(ctx, rev); err != nil {
				return stale(err)
			}
			return s.enqueueNotify(ctx, tx, rev.RequestID, notifyPayload{Type: EventBreakGlassReminder, Actor: SystemActor, Review: rev.ID})
		}},
	}
	for _, d := range due {
		var found []*Review
		if err := s.store.View(ctx, func(ctx context.Context, tx Tx) error {
			var err error
			found, err = tx.FindReviews(ctx, d.f)
			return err
		}); err != nil {
			errs = append(errs, err)
			continue
		}
		for _, rev := range found {
			err := s.store.Update(ctx, func(ctx context.Context, tx Tx) error { return d.apply(ctx, tx, rev) })
			var retry errRetry
			if err != nil && !errors.As(err, &retry) { // lost the race: another replica did it
				errs = append(errs, fmt.Errorf("review %d: %w", rev.ID, err))
			}
		}
	}
	errs = append(errs, v.startScheduled(ctx, now))
	return errors.Join(errs...)
}

// startScheduled starts the reviews whose review_every has passed.
func (v *Reviews) startScheduled(ctx context.Context, now time.Time) error {
	s := v.s
	scheduled := s.policy.Defaults.ReviewEvery > 0 || slices.ContainsFunc(s.policy.Roles, func(r Rules) bool { return r.ReviewEvery > 0 })
	if !scheduled {
		return nil
	}
	roles, err := s.rolesList(ctx, false)
	if err != nil {
		return fmt.Errorf("list roles for scheduled reviews: %w", err)
	}
	var errs []error
	for _, role := range roles {
		rules := s.policy.RulesFor(role)
		if rules.ReviewEvery <= 0 {
			continue
		}
		var last []*Review
		if err := s.store.View(ctx, func(ctx context.Context, tx Tx) error {
			var err error
			last, err = tx.FindReviews(ctx, ReviewFilter{Kind: ReviewAccess, RoleID: role.ID, NewestFirst: true, Limit: 1})
			return err
		}); err != nil {
			errs = append(errs, err)
			continue
		}
		if len(last) > 0 && (last[0].State == ReviewOpen || now.Sub(last[0].StartedAt) < rules.ReviewEvery) {
			continue
		}
		if _, err := v.start(ctx, role, SystemActor, reviewTriggerSchedule); err != nil && !errors.Is(err, errNotDue) {
			errs = append(errs, fmt.Errorf("start review of %s: %w", role.Name, err))
		}
	}
	return errors.Join(errs...)
}

// reviewEventTx fills the review part of a notification and says who is
// told: an access review's owners; for break-glass, the owners and admins
// but the person who broke the glass.
func (s *Service) reviewEventTx(ctx context.Context, tx Tx, ev *Event, p notifyPayload) ([]string, error) {
	rev, err := tx.Review(ctx, p.Review)
	if err != nil {
		return nil, err
	}
	ev.Review, ev.Changed = rev, p.Changed
	role := Role{ID: rev.RoleID, Name: rev.RoleName}
	if rev.Kind == ReviewAccess {
		if ev.ReviewItems, err = tx.ReviewItems(ctx, rev.ID); err != nil {
			return nil, err
		}
		if rev.State == ReviewOpen {
			if err := s.markLeftToDeadlineTx(ctx, tx, role, ev.ReviewItems); err != nil {
				return nil, err
			}
		}
		return s.ownersTx(ctx, tx, role)
	}
	who, err := s.ownersAndAdmins(ctx, tx, role)
	if err != nil || ev.Request == nil {
		return who, err
	}
	return slices.DeleteFunc(who, func(id string) bool { return id == ev.Request.SubjectID }), nil
}

// markLeftToDeadlineTx sets LeftToDeadline on the unanswered items of the
// one person who alone could answer for role (its only owner, and no other
// admin): nobody may answer for their own membership. Only then is their
// email read, within emailBudget (usually from the cache); without it they
// are matched by the PostHog user the bot saw them as.
func (s *Service) markLeftToDeadlineTx(ctx context.Context, tx Tx, role Role, items []ReviewItem) error {
	deciders, err := s.ownersAndAdmins(ctx, tx, role)
	if err != nil || len(deciders) != 1 {
		return err
	}
	own, err := ownTx(ctx, tx, deciders[0], s.optionalEmail(ctx, deciders[0]))
	if err != nil {
		return err
	}
	for i := range items {
		items[i].LeftToDeadline = items[i].Decision == "" && own(items[i])
	}
	return nil
}
