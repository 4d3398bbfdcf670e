package workflow_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/workflow"
)

// reviewPolicy is the test policy plus review and break-glass keys.
const reviewPolicy = testPolicy + `
  - role: Marketing
    owners: [UBOB0001, UCAROL01]
    review_every: 90d
    review_deadline: 2d
    review_unanswered: remove
    break_glass: true
    break_glass_max_duration: 1h
    break_glass_per_day: 2
`

func withReviewPolicy(c *workflow.Config) {
	p, err := workflow.ParsePolicy("policy.yaml", []byte(reviewPolicy))
	if err != nil {
		panic(err)
	}
	c.Policy = p
}

// reviewEvents lists the review notifications of review id.
func (h *harness) reviewEvents(id int64, typ workflow.EventType) []workflow.Event {
	h.notes.mu.Lock()
	defer h.notes.mu.Unlock()
	var out []workflow.Event
	for _, e := range h.notes.events {
		if e.Type == typ && e.Review != nil && e.Review.ID == id {
			out = append(out, e)
		}
	}
	return out
}

// auditOf returns the details of the entries with action, in order.
func (h *harness) auditOf(action workflow.Action) []map[string]any {
	h.t.Helper()
	var out []map[string]any
	err := h.db.AuditEntries(ctx, workflow.AuditFilter{ActionPrefix: string(action)}, func(e *workflow.AuditEntry) error {
		if e.Action != action {
			return nil
		}
		var d map[string]any
		if err := json.Unmarshal([]byte(e.Details), &d); err != nil {
			return err
		}
		out = append(out, d)
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// ticksTogether runs the scheduler of n replicas at once, and their jobs.
func (h *harness) ticksTogether(n int) {
	h.t.Helper()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(s *workflow.Service) {
			defer wg.Done()
			if err := s.Tick(ctx); err != nil {
				h.t.Error(err)
			}
		}(h.slowReplica())
	}
	wg.Wait()
	h.drain()
}

// membershipDeletes counts the DELETEs of role memberships PostHog saw.
func (h *harness) membershipDeletes() int {
	n := 0
	for _, c := range h.ph.Calls() {
		if c.Method == "DELETE" && strings.Contains(c.Path, "/role_memberships") {
			n++
		}
	}
	return n
}

func itemOf(t *testing.T, items []workflow.ReviewItem, email string) workflow.ReviewItem {
	t.Helper()
	i := slices.IndexFunc(items, func(it workflow.ReviewItem) bool { return it.Email == email })
	if i < 0 {
		t.Fatalf("review does not list %s: %+v", email, items)
	}
	return items[i]
}

// An owner's review of Engineering: every member PostHog has, with last
// login, 2FA and how they got access; Remove takes one out through a
// removal job; a second answer is refused; Keep all remaining closes it.
func TestAccessReviewKeepRemoveKeepAllRemaining(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, withReviewPolicy)
		g := h.grant("Engineering", 48*time.Hour)
		login := time.Date(2026, 10, 30, 17, 5, 0, 0, time.UTC)
		h.ph.SetLastLogin(h.uuids[alice], login)
		h.ph.SetTwoFactor(h.uuids[alice], true)
		h.ph.AddMembership(h.roles["Engineering"], h.uuids[dave])  // added in PostHog's UI
		h.ph.AddMembership(h.roles["Engineering"], h.uuids[admin]) // likewise

		if _, err := h.svc.Reviews().Start(ctx, dave, "Engineering"); workflow.ErrorCode(err) != workflow.EFORBIDDEN {
			t.Fatalf("a non-owner started a review: %v", err)
		}
		rev, err := h.svc.Reviews().Start(ctx, bob, "engineering")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.svc.Reviews().Start(ctx, carol, "Engineering"); workflow.ErrorCode(err) != workflow.ECONFLICT {
			t.Fatalf("second open review of a role: %v", err)
		}
		h.drain()
		started := h.reviewEvents(rev.ID, workflow.EventReviewStarted)
		if len(started) != 1 || !slices.Equal(started[0].Owners, []string{bob, carol}) || len(started[0].ReviewItems) != 3 {
			t.Fatalf("review_started events %+v", started)
		}
		_, items, err := h.svc.Reviews().Get(ctx, rev.ID)
		if err != nil {
			t.Fatal(err)
		}
		a := itemOf(t, items, "alice@example.com")
		if a.GrantID != g.ID || !a.GrantEndsAt.Equal(g.RevokeAt) || !a.LastLogin.Equal(login) || a.TwoFactor == nil || !*a.TwoFactor {
			t.Fatalf("alice's line %+v (grant %d ends %v)", a, g.ID, g.RevokeAt)
		}
		d := itemOf(t, items, "dave@example.com")
		if d.GrantID != 0 || !d.LastLogin.IsZero() || d.TwoFactor == nil || *d.TwoFactor {
			t.Fatalf("dave's line (outside accessbot, never logged in) %+v", d)
		}

		// Remove dave: a removal decided by bob, carried out by a job.
		if _, err := h.svc.Reviews().Decide(ctx, rev.ID, d.MembershipID, dave, workflow.DecisionKeep); workflow.ErrorCode(err) != workflow.EFORBIDDEN {
			t.Fatalf("dave answered his own review line: %v", err)
		}
		if _, err := h.svc.Reviews().Decide(ctx, rev.ID, d.MembershipID, bob, workflow.DecisionRemove); err != nil {
			t.Fatal(err)
		}
		if _, err := h.svc.Reviews().Decide(ctx, rev.ID, d.MembershipID, carol, workflow.DecisionKeep); workflow.ErrorCode(err) != workflow.ECONFLICT ||
			workflow.ErrorMessage(err) != "udave001 Test was already answered in review #1: remove." {
			t.Fatalf("second answer: %v", err)
		}
		h.drain()
		if h.isMember("Engineering", dave) {
			t.Fatal("dave is still a member after Remove")
		}
		mine, _ := h.svc.ListMine(ctx, bob, 1)
		if len(mine) != 1 || mine[0].Kind != workflow.KindRemove || mine[0].State != workflow.StateCompleted ||
			mine[0].DecidedBy != bob || mine[0].Reason != "access review #1: removed by an owner" || mine[0].SubjectEmail != "dave@example.com" {
			t.Fatalf("removal request %+v", mine)
		}
		if changed := h.reviewEvents(rev.ID, workflow.EventReviewDecided); len(changed) != 1 || !slices.Equal(changed[0].Changed, []int{d.Position}) {
			t.Fatalf("review_decided events %+v", changed)
		}

		// Keep all remaining: alice and admin, and the review closes.
		n, ownLeft, err := h.svc.Reviews().KeepRemaining(ctx, rev.ID, carol)
		if err != nil || n != 2 || ownLeft {
			t.Fatalf("keep remaining = %d, %v, %v", n, ownLeft, err)
		}
		h.drain()
		closed, items, _ := h.svc.Reviews().Get(ctx, rev.ID)
		if closed.State != workflow.ReviewClosed || workflow.Summarize(items) != (workflow.ReviewSummary{Kept: 2, Removed: 1}) {
			t.Fatalf("after keep all: %s %+v", closed.State, workflow.Summarize(items))
		}
		if len(h.reviewEvents(rev.ID, workflow.EventReviewClosed)) != 1 || !h.isMember("Engineering", alice) || h.request(g.ID).State != workflow.StateCompleted {
			t.Fatal("closing summary missing, or a kept member lost access")
		}
		if _, _, err := h.svc.Reviews().KeepRemaining(ctx, rev.ID, bob); workflow.ErrorCode(err) != workflow.ECONFLICT {
			t.Fatalf("answer on a closed review: %v", err)
		}
		sum := h.auditOf(workflow.ActionReviewClosed)
		if len(sum) != 1 || sum[0]["kept"] != 2.0 || sum[0]["removed"] != 1.0 || sum[0]["unanswered"] != 0.0 {
			t.Fatalf("review_closed %+v", sum)
		}
		if n := len(h.auditOf(workflow.ActionReviewDecided)); n != 3 {
			t.Fatalf("%d review_decided entries, want 3", n)
		}
		if rep := h.verify(); !rep.OK {
			t.Fatalf("audit chain: %+v", rep)
		}
	})
}

// Marketing's scheduled review: started once by replicas ticking together,
// a reminder a day before the deadline, carried on by a restarted process,
// and at the deadline the unanswered member is removed (review_unanswered:
// remove) and the review closes with its summary.
func TestScheduledReviewRunsOnceAndDeadlineHandlesUnanswered(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, withReviewPolicy)
		h.ph.AddMembership(h.roles["Marketing"], h.uuids[alice])
		h.ph.AddMembership(h.roles["Marketing"], h.uuids[dave])

		h.ticksTogether(3)
		tick(t, h)
		if n := len(h.auditOf(workflow.ActionReviewStarted)); n != 1 {
			t.Fatalf("%d reviews started by replicas, want 1", n)
		}
		started := h.auditOf(workflow.ActionReviewStarted)[0]
		if started["trigger"] != "schedule" || started["members"] != 2.0 || started["unanswered"] != "remove" {
			t.Fatalf("review_started %+v", started)
		}
		id := int64(started["review"].(float64))
		_, items, _ := h.svc.Reviews().Get(ctx, id)
		if _, err := h.svc.Reviews().Decide(ctx, id, itemOf(t, items, "alice@example.com").MembershipID, bob, workflow.DecisionKeep); err != nil {
			t.Fatal(err)
		}

		// A day before the deadline: one reminder, from whichever replica.
		h.clock.Advance(24*time.Hour + time.Second)
		tick(t, h)
		h.svc = h.replica() // restart
		tick(t, h)
		if n := len(h.reviewEvents(id, workflow.EventReviewReminder)); n != 1 {
			t.Fatalf("%d reminders, want 1", n)
		}
		// The deadline, met by replicas at once: handled once.
		h.clock.Advance(24 * time.Hour)
		h.ticksTogether(3)
		tick(t, h)
		rev, items, _ := h.svc.Reviews().Get(ctx, id)
		if rev.State != workflow.ReviewClosed || workflow.Summarize(items) != (workflow.ReviewSummary{Kept: 1, Removed: 1, Unanswered: 1}) {
			t.Fatalf("at the deadline: %s %+v", rev.State, workflow.Summarize(items))
		}
		if h.isMember("Marketing", dave) || !h.isMember("Marketing", alice) {
			t.Fatal("deadline did not remove the unanswered member, or removed the kept one")
		}
		dv := itemOf(t, items, "dave@example.com")
		removal := h.request(dv.RemovalID)
		if dv.DecidedBy != workflow.SystemActor || removal.RequesterID != workflow.SystemActor || removal.State != workflow.StateCompleted ||
			removal.Reason != fmt.Sprintf("access review #%d: nobody answered by the deadline", id) {
			t.Fatalf("deadline removal %+v / %+v", dv, removal)
		}
		if n := len(h.auditOf(workflow.ActionReviewDecided)); n != 2 {
			t.Fatalf("%d review_decided entries, want 2", n)
		}
		if n := h.membershipDeletes(); n != 1 {
			t.Fatalf("%d PostHog deletes at the deadline, want 1", n)
		}
		sum := h.auditOf(workflow.ActionReviewClosed)
		if len(sum) != 1 || sum[0]["unanswered"] != 1.0 || sum[0]["removed"] != 1.0 || sum[0]["unanswered_handled_as"] != "remove" {
			t.Fatalf("review_closed %+v", sum)
		}
		// Not due again until review_every has passed.
		h.clock.Advance(80 * 24 * time.Hour)
		tick(t, h)
		if n := len(h.auditOf(workflow.ActionReviewStarted)); n != 1 {
			t.Fatalf("%d reviews after 82 days, want 1", n)
		}
		h.clock.Advance(8 * 24 * time.Hour)
		tick(t, h)
		if n := len(h.auditOf(workflow.ActionReviewStarted)); n != 2 {
			t.Fatalf("%d reviews after 90 days, want 2", n)
		}
	})
}

// Break-glass on Marketing: granted at once without an owner, alerting the
// owners and admins; the user cannot review their own use; Revoke now ends
// the grant; roles without the flag and uses over the daily limit are
// refused; reminders go out daily across a restart until an owner answers.
func TestBreakGlassGrantAlertRevokeLimitAndReminders(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, withReviewPolicy)
		bg := h.svc.BreakGlass()
		use := func(role, reason string) (*workflow.Request, error) {
			return bg.Use(ctx, workflow.NewRequest{RequesterID: alice, Role: role, Reason: reason})
		}
		if _, err := use("Engineering", "prod is down"); workflow.ErrorCode(err) != workflow.EFORBIDDEN {
			t.Fatalf("break-glass on a role without the flag: %v", err)
		}
		if _, err := use("Marketing", " "); workflow.ErrorField(err) != "reason" {
			t.Fatalf("break-glass without a reason: %v", err)
		}
		r, err := use("Marketing", "campaign page is down")
		if err != nil {
			t.Fatal(err)
		}
		h.drain()
		g := h.request(r.ID)
		if !g.Active() || !h.isMember("Marketing", alice) || len(g.Approvals) != 0 || g.DecidedBy != alice ||
			!g.RevokeAt.Equal(g.CompletedAt.Add(time.Hour)) {
			t.Fatalf("break-glass grant %+v", g)
		}
		used := h.eventsOf(r.ID, workflow.EventBreakGlassUsed)
		if len(used) != 1 || !slices.Equal(used[0].Owners, []string{bob, carol, admin}) || used[0].Review == nil {
			t.Fatalf("alert %+v", used)
		}
		rev := used[0].Review
		if _, err := bg.Acknowledge(ctx, rev.ID, alice); workflow.ErrorCode(err) != workflow.EFORBIDDEN {
			t.Fatalf("alice acknowledged her own break-glass: %v", err)
		}
		if _, err := bg.RevokeNow(ctx, rev.ID, dave); workflow.ErrorCode(err) != workflow.EFORBIDDEN {
			t.Fatalf("a non-owner revoked: %v", err)
		}
		if _, err := bg.RevokeNow(ctx, rev.ID, bob); err != nil {
			t.Fatal(err)
		}
		if _, err := bg.Acknowledge(ctx, rev.ID, carol); workflow.ErrorCode(err) != workflow.ECONFLICT {
			t.Fatalf("second answer: %v", err)
		}
		h.drain()
		if g := h.request(r.ID); g.State != workflow.StateRevoked || h.isMember("Marketing", alice) {
			t.Fatalf("after Revoke now: %s, member %v", g.State, h.isMember("Marketing", alice))
		}
		if len(h.eventsOf(r.ID, workflow.EventBreakGlassAnswered)) != 1 {
			t.Fatal("answer not told")
		}

		// Second use of the day, left unanswered: reminded daily, once per
		// day whichever process ticks, until carol acknowledges it.
		r2, err := use("Marketing", "again")
		if err != nil {
			t.Fatal(err)
		}
		h.drain()
		if _, err := h.svc.Grants().Done(ctx, r2.ID, alice); err != nil {
			t.Fatal(err)
		}
		h.drain()
		if _, err := use("Marketing", "third time"); workflow.ErrorCode(err) != workflow.EFORBIDDEN {
			t.Fatalf("third use in a day: %v", err)
		}
		h.clock.Advance(24*time.Hour + time.Second)
		tick(t, h)
		h.svc = h.replica() // restart
		tick(t, h)
		if n := len(h.eventsOf(r2.ID, workflow.EventBreakGlassReminder)); n != 1 {
			t.Fatalf("%d reminders after a day, want 1", n)
		}
		rev2 := h.eventsOf(r2.ID, workflow.EventBreakGlassUsed)[0].Review
		if _, err := h.svc.BreakGlass().Acknowledge(ctx, rev2.ID, carol); err != nil {
			t.Fatal(err)
		}
		h.clock.Advance(24 * time.Hour)
		tick(t, h)
		if n := len(h.eventsOf(r2.ID, workflow.EventBreakGlassReminder)); n != 1 {
			t.Fatalf("reminded after the answer: %d", n)
		}
		// A day on, the limit allows it again.
		if _, err := h.svc.BreakGlass().Use(ctx, workflow.NewRequest{RequesterID: alice, Role: "Marketing", Reason: "new day"}); err != nil {
			t.Fatalf("use after 24 hours: %v", err)
		}
		var actions []workflow.Action
		for _, a := range h.auditActions(0) {
			if len(a) > 12 && a[:12] == "break_glass_" {
				actions = append(actions, a)
			}
		}
		want := []workflow.Action{workflow.ActionBreakGlassUsed, workflow.ActionBreakGlassRevoked, workflow.ActionBreakGlassUsed,
			workflow.ActionBreakGlassAcknowledged, workflow.ActionBreakGlassUsed}
		if !slices.Equal(actions, want) {
			t.Fatalf("break-glass audit %v, want %v", actions, want)
		}
		if n := len(h.auditOf(workflow.ActionBreakGlassUsed)); n != 3 {
			t.Fatalf("action prefix filter found %d break_glass_used", n)
		}
	})
}

func TestReviewAndBreakGlassPolicyKeys(t *testing.T) {
	p, err := workflow.ParsePolicy("policy.yaml", []byte(reviewPolicy))
	if err != nil {
		t.Fatal(err)
	}
	mk := p.RulesFor(workflow.Role{Name: "Marketing"})
	if mk.ReviewEvery != 90*24*time.Hour || mk.ReviewDeadline != 48*time.Hour || mk.ReviewUnanswered != workflow.DecisionRemove ||
		!mk.BreakGlass || mk.BreakGlassMaxDuration != time.Hour || mk.BreakGlassPerDay != 2 {
		t.Errorf("Marketing rules %+v", mk.ReviewRules)
	}
	eng := p.RulesFor(workflow.Role{Name: "Engineering"})
	want := workflow.ReviewRules{ReviewDeadline: 7 * 24 * time.Hour, ReviewUnanswered: workflow.DecisionKeep,
		BreakGlassMaxDuration: time.Hour, BreakGlassPerDay: 2}
	if eng.ReviewRules != want {
		t.Errorf("defaults %+v, want %+v", eng.ReviewRules, want)
	}
	// Each refusal names the file, the line of the value and the key.
	for yaml, want := range map[string][2]string{
		"roles:\n  - role: X\n    review_unanswered: maybe\n":    {"policy.yaml:3:24:", "review_unanswered"},
		"roles:\n  - role: X\n    review_every: soon\n":          {"policy.yaml:3:19:", "review_every"},
		"defaults:\n  break_glass_per_day: 0\n":                  {"policy.yaml:2:24:", "break_glass_per_day"},
		"roles:\n  - role: X\n    break_glass_max_duration: 0\n": {"policy.yaml:3:31:", "break_glass_max_duration"},
	} {
		_, err := workflow.ParsePolicy("policy.yaml", []byte(yaml))
		if err == nil || !strings.HasPrefix(err.Error(), want[0]) || !strings.Contains(err.Error(), want[1]) {
			t.Errorf("%q: %v, want %s … %s", yaml, err, want[0], want[1])
		}
	}
}

// ReviewItems pauses like Setting in slowTx, so two answers read the same
// unanswered member before either writes.
func (t slowTx) ReviewItems(ctx ctxT, reviewID int64) ([]workflow.ReviewItem, error) {
	items, err := t.Tx.ReviewItems(ctx, reviewID)
	time.Sleep(30 * time.Millisecond)
	return items, err
}

// Two owners answering for one member at the same moment, on two replicas:
// the first answer counts, the other is refused, one removal is queued.
func TestReviewAnswersAtOnceCountOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, withReviewPolicy)
		h.ph.AddMembership(h.roles["Engineering"], h.uuids[dave])
		h.ph.AddMembership(h.roles["Engineering"], h.uuids[alice])
		rev, err := h.svc.Reviews().Start(ctx, bob, "Engineering")
		if err != nil {
			t.Fatal(err)
		}
		_, items, _ := h.svc.Reviews().Get(ctx, rev.ID)
		member := itemOf(t, items, "dave@example.com").MembershipID
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				who, d := bob, workflow.DecisionRemove
				if i%2 == 1 {
					who, d = carol, workflow.DecisionKeep
				}
				_, errs[i] = h.slowReplica().Reviews().Decide(ctx, rev.ID, member, who, d)
			}(i)
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch workflow.ErrorCode(err) {
			case "":
				ok++
			case workflow.ECONFLICT:
			default:
				t.Fatalf("answer: %v", err)
			}
		}
		if ok != 1 || len(h.auditOf(workflow.ActionReviewDecided)) != 1 {
			t.Fatalf("%d answers accepted, %d review_decided entries; want 1 and 1", ok, len(h.auditOf(workflow.ActionReviewDecided)))
		}
		h.drain()
		if n := h.membershipDeletes(); n > 1 {
			t.Fatalf("%d PostHog deletes", n)
		}
	})
}

func (t slowTx) FindReviews(ctx ctxT, f workflow.ReviewFilter) ([]*workflow.Review, error) {
	rs, err := t.Tx.FindReviews(ctx, f)
	time.Sleep(30 * time.Millisecond)
	return rs, err
}

// One person breaking glass on four roles at once, on four replicas, gets
// the daily limit (2) and no more; two owners answering one use at once
// count once.
func TestBreakGlassLimitAndAnswerHoldAcrossReplicas(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, func(c *workflow.Config) {
			p, err := workflow.ParsePolicy("policy.yaml", []byte("defaults:\n  owners: [UBOB0001, UCAROL01]\n  break_glass: true\n"))
			if err != nil {
				panic(err)
			}
			c.Policy = p
		})
		var wg sync.WaitGroup
		roles := []string{"Engineering", "Finance", "Viewer", "Marketing"}
		errs := make([]error, len(roles))
		for i, role := range roles {
			wg.Add(1)
			go func(i int, role string) {
				defer wg.Done()
				_, errs[i] = h.slowReplica().BreakGlass().Use(ctx, workflow.NewRequest{RequesterID: alice, Role: role, Reason: "fire"})
			}(i, role)
		}
		wg.Wait()
		granted := 0
		for _, err := range errs {
			switch workflow.ErrorCode(err) {
			case "":
				granted++
			case workflow.EFORBIDDEN:
			default:
				t.Fatalf("use: %v", err)
			}
		}
		if used := len(h.auditOf(workflow.ActionBreakGlassUsed)); granted != 2 || used != 2 {
			t.Fatalf("%d uses granted, %d audited; the limit is 2", granted, used)
		}
		h.drain()
		var rev *workflow.Review
		h.notes.mu.Lock()
		for _, e := range h.notes.events {
			if e.Type == workflow.EventBreakGlassUsed {
				rev = e.Review
			}
		}
		h.notes.mu.Unlock()
		answers := make([]error, 2)
		for i, who := range []string{bob, carol} {
			wg.Add(1)
			go func(i int, who string) {
				defer wg.Done()
				_, answers[i] = h.slowReplica().BreakGlass().Acknowledge(ctx, rev.ID, who)
			}(i, who)
		}
		wg.Wait()
		if (answers[0] == nil) == (answers[1] == nil) || len(h.auditOf(workflow.ActionBreakGlassAcknowledged)) != 1 {
			t.Fatalf("answers at once: %v, %v", answers[0], answers[1])
		}
	})
}
