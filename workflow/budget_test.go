package workflow_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/posthogdir"
	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/workflow"
)

// Submitting and executing a request cost at most two PostHog calls each,
// whatever the size of the role and of the organization (5,000 members
// here), also when the Slack email's case differs from PostHog's.
func TestSubmissionAndExecutionCostAtMostTwoCallsWhateverTheSize(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		const zed = "UZED0001"
		h := newHarness(t, db, func(c *workflow.Config) { c.Users.(users)[zed] = "zed@example.com" })
		ctx := context.Background()
		eng := h.roles["Engineering"]
		for i := 0; i < 5000; i++ {
			u := h.ph.AddUser(fmt.Sprintf("member%04d@example.com", i), "Member", fmt.Sprint(i))
			h.ph.AddMembership(eng, u.UUID)
		}
		h.ph.AddUser("Zed@Example.COM", "Zed", "Case")
		if err := h.svc.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		calls := func(what string, fn func()) {
			t.Helper()
			h.ph.ResetCalls()
			fn()
			got := h.ph.Calls()
			if len(got) > 2 {
				for _, c := range got {
					t.Logf("%s %s?%s → %d", c.Method, c.Path, c.Query, c.Status)
				}
				t.Fatalf("%s made %d PostHog calls, want at most 2", what, len(got))
			}
		}
		var add *workflow.Request
		calls("submitting an addition", func() {
			var err error
			add, err = h.create(workflow.KindAdd, zed, "", "Engineering", "on call", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
		})
		h.mustApprove(add, bob)
		calls("executing it", h.drain)
		if r := h.request(add.ID); !r.Active() || r.MembershipID == "" {
			t.Fatalf("grant: %s %q", r.State, r.MembershipID)
		}
		calls("asking for it again (refused from the mirror)", func() {
			_, err := h.create(workflow.KindAdd, zed, "", "Engineering", "again", time.Hour)
			if workflow.ErrorField(err) != "role" {
				t.Fatalf("a member asked again: %v", err)
			}
		})
		var rm *workflow.Request
		calls("submitting a removal", func() {
			var err error
			rm, err = h.create(workflow.KindRemove, zed, "", "Engineering", "done", 0)
			if err != nil {
				t.Fatal(err)
			}
		})
		h.mustApprove(rm, bob)
		calls("executing the removal", h.drain)
		if h.ph.HasMember(eng, h.request(add.ID).SubjectUUID) || h.request(rm.ID).State != workflow.StateCompleted {
			t.Fatal("the removal did not remove")
		}
		calls("a member whose email matches exactly", func() {
			if _, err := h.create(workflow.KindAdd, alice, "", "Engineering", "x", time.Hour); err != nil {
				t.Fatal(err)
			}
		})
	})
}

// When the key's budget truly cannot serve a person in time, they are told
// the bot is busy and when to retry — not that PostHog is down — and nothing
// is stored.
func TestSubmissionOverBudgetSaysBusyAndWhenToRetry(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		budget := posthog.NewBudget(posthog.Window{Limit: 1, Per: time.Hour})
		client, err := posthog.NewClient(h.ph.URL(), h.ph.APIKey(), h.ph.OrganizationID(), posthog.WithBudget(budget))
		if err != nil {
			t.Fatal(err)
		}
		cfg := h.cfg
		cfg.Directory = posthogdir.New(client)
		svc, err := workflow.NewService(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Roles(context.Background()); err != nil { // spends the budget
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = svc.CreateRequest(ctx, workflow.NewRequest{Kind: workflow.KindAdd, RequesterID: alice, Role: "Engineering", Reason: "x", Duration: time.Hour})
		msg := workflow.ErrorMessage(err)
		if workflow.ErrorCode(err) != workflow.EUNAVAILABLE || !strings.Contains(msg, "busy") || !strings.Contains(msg, "try again in 1h0m0s") || strings.Contains(msg, "not answering") {
			t.Fatalf("over budget: %v", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("waited %v for a call it knew it could not make in time", d)
		}
		if mine, _ := svc.ListMine(context.Background(), alice, 1); len(mine) != 0 {
			t.Fatal("a refused submission was stored")
		}
	})
}

// Notifications have their own workers: a slow PostHog holding every
// execution worker does not hold the requester's "approved" DM.
func TestNotificationsDoNotWaitBehindExecutions(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { h.svc.RunWorkers(ctx, 1, time.Second); close(done) }()
		defer func() { cancel(); <-done }()
		// Viewer is auto-approved: the execution occupies the only PostHog
		// worker for 1.5 s, while the approval's notification goes at once.
		if _, err := h.svc.Roles(ctx); err != nil { // the role cache
			t.Fatal(err)
		}
		h.ph.SetLatency(1500 * time.Millisecond)
		r2 := h.mustCreate("Viewer", time.Hour) // its member look-up takes 1.5 s too
		start := time.Now()
		deadline := time.Now().Add(time.Second)
		for !slices.Contains(h.notes.types(r2.ID), workflow.EventApproved) {
			if time.Now().After(deadline) {
				t.Fatalf("the approved notification waited behind the execution (%v)", h.notes.types(r2.ID))
			}
			time.Sleep(10 * time.Millisecond)
		}
		if h.request(r2.ID).State == workflow.StateCompleted {
			t.Fatalf("the execution was not slow (%v): the test proves nothing", time.Since(start))
		}
	})
}

// People opening the modal at once before the role cache exists cost one
// roles listing, not one each.
func TestConcurrentFirstRoleListingsAskPostHogOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		h.ph.SetLatency(200 * time.Millisecond)
		h.ph.ResetCalls()
		done := make(chan error, 10)
		for i := 0; i < 10; i++ {
			go func() { _, err := h.svc.Roles(context.Background()); done <- err }()
		}
		for i := 0; i < 10; i++ {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		if n := len(h.ph.CallsMatching("GET", "/api/organizations/"+h.ph.OrganizationID()+"/roles")); n != 1 {
			t.Fatalf("%d roles listings for 10 people at once, want 1", n)
		}
	})
}
