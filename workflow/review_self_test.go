package workflow_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/workflow"
)

// slowEmails answers like the Users it wraps, but for the ids in down,
// whose email Slack does not give in time.
type slowEmails struct {
	workflow.Users
	mu   sync.Mutex
	down map[string]bool
}

func (u *slowEmails) Email(ctx context.Context, id string) (string, error) {
	u.mu.Lock()
	down := u.down[id]
	u.mu.Unlock()
	if down {
		return "", &workflow.TemporaryError{Err: context.DeadlineExceeded}
	}
	return u.Users.Email(ctx, id)
}

func (u *slowEmails) set(id string, down bool) {
	u.mu.Lock()
	u.down[id] = down
	u.mu.Unlock()
}

// Nobody answers for their own membership in an access review: bob, an
// owner of Engineering and a member of it (his Slack email differs in
// case from PostHog's), is refused Keep and Remove on his own line, and
// Keep all remaining keeps the others but leaves his line for carol. When
// Slack does not give the clicker's email in time, nothing is decided.
// On Viewer, whose only possible decider is the admin, the admin's own
// line is shown as left to the deadline and the deadline keeps it.
func TestNobodyAnswersForTheirOwnMembership(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		emails := &slowEmails{down: map[string]bool{}}
		h := newHarness(t, db, withReviewPolicy, func(c *workflow.Config) {
			c.Users.(users)[bob] = "Bob@Example.COM"
			emails.Users = c.Users
			c.Users = emails
		})
		eng := h.roles["Engineering"]
		for _, who := range []string{bob, alice, dave} {
			h.ph.AddMembership(eng, h.uuids[who])
		}
		rev, err := h.svc.Reviews().Start(ctx, bob, "Engineering")
		if err != nil {
			t.Fatal(err)
		}
		h.drain()
		_, items, _ := h.svc.Reviews().Get(ctx, rev.ID)
		own := itemOf(t, items, "bob@example.com")
		for _, d := range []workflow.Decision{workflow.DecisionKeep, workflow.DecisionRemove} {
			_, err := h.svc.Reviews().Decide(ctx, rev.ID, own.MembershipID, bob, d)
			if workflow.ErrorCode(err) != workflow.EFORBIDDEN || workflow.ErrorMessage(err) !=
				"You can't answer for your own access to Engineering; another owner or an admin has to. If nobody does by the deadline, it is kept." {
				t.Fatalf("bob's %s of his own line: %v", d, err)
			}
		}
		// carol's email is not to be had: she cannot be told apart from
		// the members, so her answer waits.
		emails.set(carol, true)
		if _, err := h.svc.Reviews().Decide(ctx, rev.ID, itemOf(t, items, "dave@example.com").MembershipID, carol, workflow.DecisionKeep); workflow.ErrorCode(err) != workflow.EUNAVAILABLE {
			t.Fatalf("answer without the clicker's email: %v", err)
		}
		emails.set(carol, false)

		n, ownLeft, err := h.svc.Reviews().KeepRemaining(ctx, rev.ID, bob)
		if err != nil || n != 2 || !ownLeft {
			t.Fatalf("bob's keep remaining = %d, own left %v, %v; want 2, true", n, ownLeft, err)
		}
		h.drain()
		open, items, _ := h.svc.Reviews().Get(ctx, rev.ID)
		if open.State != workflow.ReviewOpen || itemOf(t, items, "bob@example.com").Decision != "" ||
			workflow.Summarize(items) != (workflow.ReviewSummary{Kept: 2, Open: 1}) {
			t.Fatalf("after bob's keep remaining: %s %+v", open.State, workflow.Summarize(items))
		}
		if decided := h.auditOf(workflow.ActionReviewDecided); len(decided) != 2 {
			t.Fatalf("%d review_decided entries, want 2", len(decided))
		}
		// Two owners: carol can answer for bob, so nothing waits for the deadline.
		for _, e := range h.reviewEvents(rev.ID, workflow.EventReviewDecided) {
			for _, it := range e.ReviewItems {
				if it.LeftToDeadline {
					t.Fatalf("%s shown as left to the deadline though carol may answer", it.Email)
				}
			}
		}
		if _, err := h.svc.Reviews().Decide(ctx, rev.ID, own.MembershipID, carol, workflow.DecisionKeep); err != nil {
			t.Fatal(err)
		}
		h.drain()
		if closed, _, _ := h.svc.Reviews().Get(ctx, rev.ID); closed.State != workflow.ReviewClosed {
			t.Fatalf("review %s after carol answered for bob", closed.State)
		}

		// Viewer: no owners of its own, so the admin alone may answer.
		viewer := h.roles["Viewer"]
		h.ph.AddMembership(viewer, h.uuids[admin])
		h.ph.AddMembership(viewer, h.uuids[alice])
		vrev, err := h.svc.Reviews().Start(ctx, admin, "Viewer")
		if err != nil {
			t.Fatal(err)
		}
		h.drain()
		started := h.reviewEvents(vrev.ID, workflow.EventReviewStarted)
		if len(started) != 1 {
			t.Fatalf("%d review_started events", len(started))
		}
		for _, it := range started[0].ReviewItems {
			if it.LeftToDeadline != (it.Email == "admin@example.com") {
				t.Fatalf("%s left to the deadline: %v", it.Email, it.LeftToDeadline)
			}
		}
		n, ownLeft, err = h.svc.Reviews().KeepRemaining(ctx, vrev.ID, admin)
		if err != nil || n != 1 || !ownLeft {
			t.Fatalf("admin's keep remaining = %d, own left %v, %v; want 1, true", n, ownLeft, err)
		}
		h.clock.Advance(7*24*time.Hour + time.Second)
		tick(t, h)
		vclosed, vitems, _ := h.svc.Reviews().Get(ctx, vrev.ID)
		adminLine := itemOf(t, vitems, "admin@example.com")
		if vclosed.State != workflow.ReviewClosed || adminLine.Decision != workflow.DecisionKeep || adminLine.DecidedBy != workflow.SystemActor ||
			workflow.Summarize(vitems) != (workflow.ReviewSummary{Kept: 2, Unanswered: 1}) {
			t.Fatalf("Viewer at the deadline: %s, admin's line %+v", vclosed.State, adminLine)
		}
		if rep := h.verify(); !rep.OK {
			t.Fatalf("audit chain: %+v", rep)
		}
	})
}

// The person who broke glass cannot acknowledge their own use, even as an
// owner of the role; Revoke now they may, and it ends their access.
func TestBreakGlassUserMayRevokeButNotAcknowledge(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, withReviewPolicy)
		r, err := h.svc.BreakGlass().Use(ctx, workflow.NewRequest{RequesterID: bob, Role: "Marketing", Reason: "campaign page is down"})
		if err != nil {
			t.Fatal(err)
		}
		h.drain()
		rev := h.eventsOf(r.ID, workflow.EventBreakGlassUsed)[0].Review
		if _, err := h.svc.BreakGlass().Acknowledge(ctx, rev.ID, bob); workflow.ErrorCode(err) != workflow.EFORBIDDEN ||
			!strings.Contains(workflow.ErrorMessage(err), "You can't review your own break-glass use") {
			t.Fatalf("bob acknowledged his own break-glass: %v", err)
		}
		answered, err := h.svc.BreakGlass().RevokeNow(ctx, rev.ID, bob)
		if err != nil {
			t.Fatalf("bob's Revoke now of his own break-glass: %v", err)
		}
		h.drain()
		if answered.Outcome != workflow.BreakGlassRevoked || answered.ClosedBy != bob {
			t.Fatalf("review after Revoke now %+v", answered)
		}
		if g := h.request(r.ID); g.State != workflow.StateRevoked || h.isMember("Marketing", bob) {
			t.Fatalf("after bob's Revoke now: %s, member %v", g.State, h.isMember("Marketing", bob))
		}
		if n := len(h.auditOf(workflow.ActionBreakGlassRevoked)); n != 1 {
			t.Fatalf("%d break_glass_revoked entries, want 1", n)
		}
	})
}
