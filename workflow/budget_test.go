package workflow_test

import (
	"context"
	"fmt"
	"testing"
	"time"

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
