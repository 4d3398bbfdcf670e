package workflow_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/workflow"
)

var ctx = context.Background()

func TestCreateRequestValidation(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		h.ph.AddMembership(h.roles["Marketing"], h.uuids[alice])
		// Membership checks answer from the mirror reconciliation keeps.
		if err := h.svc.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		open := h.mustCreate("Finance", 0)
		cases := []struct {
			name      string
			kind      workflow.Kind
			requester string
			subject   string
			role      string
			reason    string
			duration  time.Duration
			code      string
			field     string
			msg       string
		}{
			{"unknown role", workflow.KindAdd, alice, "", "Nope", "why", 0, workflow.EINVALID, "role", "no PostHog role"},
			{"empty reason", workflow.KindAdd, alice, "", "Engineering", "   ", time.Hour, workflow.EINVALID, "reason", "reason"},
			{"oversized reason", workflow.KindAdd, alice, "", "Engineering", strings.Repeat("x", 1001), time.Hour, workflow.EINVALID, "reason", "under 1000"},
			{"duration over cap", workflow.KindAdd, alice, "", "Engineering", "why", 8 * 24 * time.Hour, workflow.EINVALID, "duration", "at most 7d"},
			{"permanent over cap", workflow.KindAdd, alice, "", "Engineering", "why", 0, workflow.EINVALID, "duration", "at most 7d"},
			{"negative duration", workflow.KindAdd, alice, "", "Marketing", "why", -time.Hour, workflow.EINVALID, "duration", "negative"},
			{"already a member", workflow.KindAdd, alice, "", "marketing", "why", 0, workflow.EINVALID, "role", "already a member"},
			{"removal of a non-member", workflow.KindRemove, alice, "", "Engineering", "why", 0, workflow.EINVALID, "role", "not a member"},
			{"removal with a duration", workflow.KindRemove, alice, "", "Marketing", "why", time.Hour, workflow.EINVALID, "duration", "no duration"},
			{"duplicate open request", workflow.KindAdd, alice, "", "Finance", "again", 0, workflow.EINVALID, "role", "#1 to add you to Finance is still waiting for a decision"},
			{"no PostHog account", workflow.KindAdd, ghost, "", "Engineering", "why", time.Hour, workflow.EINVALID, "role", "PostHog account"},
			{"no email in Slack", workflow.KindAdd, nomail, "", "Engineering", "why", time.Hour, workflow.EINVALID, "", "email address"},
			{"add for someone else", workflow.KindAdd, bob, alice, "Engineering", "why", time.Hour, workflow.EINVALID, "", "for yourself"},
			{"non-owner removes someone", workflow.KindRemove, dave, alice, "Marketing", "why", 0, workflow.EFORBIDDEN, "", "owners"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := len(h.auditActions(0))
				_, err := h.create(c.kind, c.requester, c.subject, c.role, c.reason, c.duration)
				wantCode(t, err, c.code)
				if got := workflow.ErrorField(err); got != c.field {
					t.Errorf("field = %q, want %q", got, c.field)
				}
				if msg := workflow.ErrorMessage(err); !strings.Contains(msg, c.msg) {
					t.Errorf("message %q does not mention %q", msg, c.msg)
				}
				if after := len(h.auditActions(0)); after != before {
					t.Errorf("a refused request wrote %d audit entries", after-before)
				}
			})
		}
		if got := h.request(open.ID).State; got != workflow.StatePending {
			t.Fatalf("open request state = %s", got)
		}
	})
}

func TestApproveExecutesAgainstPostHog(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		r := h.mustCreate("Engineering", 8*time.Hour)
		if r.State != workflow.StatePending || r.ID == 0 || r.SubjectUUID != h.uuids[alice] {
			t.Fatalf("created %+v", r)
		}
		got, err := h.svc.Approve(ctx, r.ID, bob)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != workflow.StateApproved || got.DecidedBy != bob {
			t.Fatalf("after approve: %s by %s", got.State, got.DecidedBy)
		}
		if h.isMember("Engineering", alice) {
			t.Fatal("membership created before the job ran")
		}
		h.drain()
		done := h.request(r.ID)
		if done.State != workflow.StateCompleted || done.MembershipID == "" {
			t.Fatalf("after execution: %+v", done)
		}
		if want := h.clock.Now().Add(8 * time.Hour); !done.RevokeAt.Equal(want) {
			t.Errorf("revoke at %v, want %v", done.RevokeAt, want)
		}
		if !h.isMember("Engineering", alice) || h.membershipCreates() != 1 {
			t.Fatalf("PostHog member=%v creates=%d", h.isMember("Engineering", alice), h.membershipCreates())
		}
		wantActions := []workflow.Action{workflow.ActionRequestCreated, workflow.ActionRequestApproved,
			workflow.ActionExecutionStarted, workflow.ActionMembershipAdded}
		if got := h.auditActions(r.ID); !slices.Equal(got, wantActions) {
			t.Errorf("audit = %v, want %v", got, wantActions)
		}
		wantEvents := []workflow.EventType{workflow.EventCreated, workflow.EventApproved, workflow.EventCompleted}
		if got := h.notes.types(r.ID); !slices.Equal(got, wantEvents) {
			t.Errorf("events = %v, want %v", got, wantEvents)
		}
		if rep := h.verify(); !rep.OK || rep.Entries != 4 {
			t.Errorf("verify: %s", rep)
		}
	})
}

// TestTransitions walks every decision from every state it can meet.
func TestTransitions(t *testing.T) {
	type step struct {
		do    string // approve, deny, cancel, revoke, drain
		actor string
		code  string // expected error code ("" = success)
		state workflow.State
	}
	cases := []struct {
		name  string
		role  string
		dur   time.Duration
		steps []step
	}{
		{"owner approves", "Engineering", time.Hour, []step{{"approve", bob, "", workflow.StateApproved}, {"drain", "", "", workflow.StateCompleted}}},
		{"admin approves", "Engineering", time.Hour, []step{{"approve", admin, "", workflow.StateApproved}}},
		{"requester may not approve", "Engineering", time.Hour, []step{{"approve", alice, workflow.EFORBIDDEN, workflow.StatePending}}},
		{"non-owner may not approve", "Engineering", time.Hour, []step{{"approve", dave, workflow.EFORBIDDEN, workflow.StatePending}}},
		{"non-owner may not deny", "Engineering", time.Hour, []step{{"deny", dave, workflow.EFORBIDDEN, workflow.StatePending}}},
		{"requester may not deny", "Engineering", time.Hour, []step{{"deny", alice, workflow.EFORBIDDEN, workflow.StatePending}}},
		{"owner denies", "Engineering", time.Hour, []step{{"deny", carol, "", workflow.StateDenied}, {"approve", bob, workflow.ECONFLICT, workflow.StateDenied}}},
		{"deny after approve", "Engineering", time.Hour, []step{{"approve", bob, "", workflow.StateApproved}, {"deny", carol, workflow.ECONFLICT, workflow.StateApproved}}},
		{"requester cancels", "Engineering", time.Hour, []step{{"cancel", alice, "", workflow.StateCancelled}, {"approve", bob, workflow.ECONFLICT, workflow.StateCancelled}}},
		{"only requester cancels", "Engineering", time.Hour, []step{{"cancel", bob, workflow.EFORBIDDEN, workflow.StatePending}}},
		{"cancel after approval", "Engineering", time.Hour, []step{{"approve", bob, "", workflow.StateApproved}, {"cancel", alice, workflow.ECONFLICT, workflow.StateApproved}}},
		{"2 of 2: one approval keeps it pending", "Finance", 0, []step{{"approve", bob, "", workflow.StatePending}, {"approve", bob, workflow.ECONFLICT, workflow.StatePending}, {"approve", carol, "", workflow.StateApproved}, {"drain", "", "", workflow.StateCompleted}}},
		{"2 of 2: one deny ends it", "Finance", 0, []step{{"approve", bob, "", workflow.StatePending}, {"deny", carol, "", workflow.StateDenied}}},
		{"revoke a grant", "Engineering", time.Hour, []step{{"approve", bob, "", workflow.StateApproved}, {"drain", "", "", workflow.StateCompleted}, {"revoke", dave, workflow.EFORBIDDEN, workflow.StateCompleted}, {"revoke", carol, "", workflow.StateCompleted}, {"revoke", carol, workflow.ECONFLICT, workflow.StateCompleted}, {"drain", "", "", workflow.StateRevoked}}},
		{"revoke a pending request", "Engineering", time.Hour, []step{{"revoke", bob, workflow.ECONFLICT, workflow.StatePending}}},
		{"auto-approve", "Viewer", 0, []step{{"drain", "", "", workflow.StateCompleted}}},
	}
	eachDB(t, func(t *testing.T, db *store.DB) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				h := newHarness(t, db)
				// Each case has its own fake PostHog but shares the database:
				// a fresh requester per case avoids the open-request rule.
				r := h.mustCreate(c.role, c.dur)
				for i, s := range c.steps {
					var err error
					switch s.do {
					case "approve":
						_, err = h.svc.Approve(ctx, r.ID, s.actor)
					case "deny":
						_, err = h.svc.Deny(ctx, r.ID, s.actor, "not needed")
					case "cancel":
						_, err = h.svc.Cancel(ctx, r.ID, s.actor)
					case "revoke":
						_, err = h.svc.Grants().Revoke(ctx, r.ID, s.actor, "")
					case "drain":
						h.drain()
					}
					wantCode(t, err, s.code)
					if got := h.request(r.ID).State; got != s.state {
						t.Fatalf("step %d (%s by %s): state %s, want %s", i, s.do, s.actor, got, s.state)
					}
				}
				if rep := h.verify(); !rep.OK {
					t.Fatalf("audit: %s", rep)
				}
				// Close what is still open so the next case can ask again.
				if cur := h.request(r.ID); cur.State == workflow.StatePending {
					if _, err := h.svc.Cancel(ctx, r.ID, alice); err != nil {
						t.Fatal(err)
					}
				}
				h.drain()
				if cur := h.request(r.ID); cur.State == workflow.StateApproved {
					t.Fatalf("approved request left without execution")
				}
			})
		}
	})
}

func TestAutoApproveIsAudited(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		r := h.mustCreate("viewer", 0)
		if r.State != workflow.StateApproved || !r.AutoApproved || r.DecidedBy != workflow.SystemActor {
			t.Fatalf("auto-approve: %+v", r)
		}
		h.drain()
		if !h.isMember("Viewer", alice) {
			t.Fatal("not executed")
		}
		want := []workflow.Action{workflow.ActionRequestCreated, workflow.ActionRequestApproved, workflow.ActionExecutionStarted, workflow.ActionMembershipAdded}
		if got := h.auditActions(r.ID); !slices.Equal(got, want) {
			t.Fatalf("audit %v, want %v", got, want)
		}
	})
}

func TestRemovalRequestByOwner(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		h.ph.AddMembership(h.roles["Engineering"], h.uuids[dave])
		r, err := h.create(workflow.KindRemove, bob, dave, "Engineering", "left the team", 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.svc.Approve(ctx, r.ID, bob); workflow.ErrorCode(err) != workflow.EFORBIDDEN {
			t.Fatalf("requester approved own removal: %v", err)
		}
		if _, err := h.svc.Approve(ctx, r.ID, dave); workflow.ErrorCode(err) != workflow.EFORBIDDEN {
			t.Fatalf("subject approved own removal: %v", err)
		}
		h.mustApprove(r, carol)
		h.drain()
		if h.isMember("Engineering", dave) {
			t.Fatal("still a member")
		}
		if got := h.auditActions(r.ID); got[len(got)-1] != workflow.ActionMembershipRemoved {
			t.Fatalf("audit %v", got)
		}
	})
}

// TestConcurrentApprovalsExecuteOnce: 100 goroutines approve one request
// (double clicks and two owners at once): one decision, one PostHog create.
func TestConcurrentApprovalsExecuteOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		r := h.mustCreate("Engineering", time.Hour)
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		start := make(chan struct{})
		for i := 0; i < 100; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				approver := bob
				if i%2 == 1 {
					approver = carol
				}
				got, err := h.svc.Approve(ctx, r.ID, approver)
				switch {
				case err == nil && got.State == workflow.StateApproved:
					mu.Lock()
					wins++
					mu.Unlock()
				case workflow.ErrorCode(err) != workflow.ECONFLICT:
					t.Errorf("approve: %v", err)
				}
			}(i)
		}
		close(start)
		wg.Wait()
		// Several workers race for the jobs too.
		var wwg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wwg.Add(1)
			go func() {
				defer wwg.Done()
				for {
					ran, err := h.svc.RunJob(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					if !ran {
						return
					}
				}
			}()
		}
		wwg.Wait()
		h.drain()
		if wins != 1 {
			t.Errorf("%d approvals won, want 1", wins)
		}
		if n := h.membershipCreates(); n != 1 {
			t.Errorf("%d PostHog membership creates, want 1", n)
		}
		approved := 0
		for _, a := range h.auditActions(r.ID) {
			if a == workflow.ActionRequestApproved {
				approved++
			}
		}
		if approved != 1 || h.request(r.ID).State != workflow.StateCompleted {
			t.Errorf("approved entries %d, state %s", approved, h.request(r.ID).State)
		}
		if rep := h.verify(); !rep.OK {
			t.Fatal(rep)
		}
	})
}

func TestConcurrentTwoOfTwo(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		r := h.mustCreate("Finance", 0)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, who := range []string{bob, carol, bob, carol} {
			wg.Add(1)
			go func(who string) {
				defer wg.Done()
				<-start
				if _, err := h.svc.Approve(ctx, r.ID, who); err != nil && workflow.ErrorCode(err) != workflow.ECONFLICT {
					t.Errorf("approve by %s: %v", who, err)
				}
			}(who)
		}
		close(start)
		wg.Wait()
		got := h.request(r.ID)
		if got.State != workflow.StateApproved || len(got.Approvals) != 2 {
			t.Fatalf("state %s with %d approvals", got.State, len(got.Approvals))
		}
	})
}

func TestListsAndOwners(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		eng := h.mustCreate("Engineering", time.Hour)
		fin := h.mustCreate("Finance", 0)
		mine, err := h.svc.ListMine(ctx, alice, 10)
		if err != nil || len(mine) != 2 || mine[0].ID != fin.ID {
			t.Fatalf("ListMine = %v, %v", mine, err)
		}
		pending, err := h.svc.PendingFor(ctx, bob)
		if err != nil || len(pending) != 2 {
			t.Fatalf("PendingFor(bob) = %d, %v", len(pending), err)
		}
		if p, _ := h.svc.PendingFor(ctx, dave); len(p) != 0 {
			t.Fatalf("dave sees %d pending", len(p))
		}
		if _, err := h.svc.Grants().Revoke(ctx, eng.ID, bob, strings.Repeat("x", workflow.MaxReasonLength+1)); workflow.ErrorField(err) != "reason" {
			t.Fatalf("oversized revoke reason: %v", err)
		}
		if err := h.svc.CanDecide(ctx, eng, bob); err != nil {
			t.Fatalf("owner cannot decide: %v", err)
		}
		if err := h.svc.CanDecide(ctx, eng, dave); workflow.ErrorCode(err) != workflow.EFORBIDDEN {
			t.Fatalf("non-owner may decide: %v", err)
		}
		if p, _ := h.svc.PendingFor(ctx, alice); len(p) != 0 {
			t.Fatalf("alice sees her own requests as pending approvals")
		}

		// Owners from Slack: only admins, audited, and they take effect.
		if _, err := h.svc.AddOwner(ctx, bob, "Engineering", dave); workflow.ErrorCode(err) != workflow.EFORBIDDEN {
			t.Fatalf("non-admin changed owners: %v", err)
		}
		owners, err := h.svc.AddOwner(ctx, admin, "engineering", dave)
		if err != nil || !slices.Contains(owners, dave) {
			t.Fatalf("AddOwner = %v, %v", owners, err)
		}
		if _, err := h.svc.AddOwner(ctx, admin, "Engineering", dave); workflow.ErrorCode(err) != workflow.ECONFLICT {
			t.Fatalf("second add: %v", err)
		}
		// An owner only the policy file names can't be removed from Slack.
		_, err = h.svc.RemoveOwner(ctx, admin, "Engineering", bob)
		if workflow.ErrorCode(err) != workflow.EFORBIDDEN || !strings.Contains(workflow.ErrorMessage(err), "editing the file") {
			t.Fatalf("removing a policy owner from Slack: %v", err)
		}
		owners, err = h.svc.RemoveOwner(ctx, admin, "Engineering", dave)
		if err != nil || slices.Contains(owners, dave) || !slices.Contains(owners, bob) {
			t.Fatalf("RemoveOwner = %v, %v", owners, err)
		}
		if _, err := h.svc.Approve(ctx, eng.ID, dave); workflow.ErrorCode(err) != workflow.EFORBIDDEN {
			t.Fatalf("removed owner approved: %v", err)
		}
		approved, err := h.svc.Approve(ctx, eng.ID, bob)
		if err != nil {
			t.Fatalf("owner could not approve: %v", err)
		}
		if err := h.svc.CanDecide(ctx, approved, carol); workflow.ErrorCode(err) != workflow.ECONFLICT {
			t.Fatalf("deciding an approved request: %v", err)
		}
		actions := h.auditActions(0)
		if !slices.Contains(actions, workflow.ActionOwnerAdded) || !slices.Contains(actions, workflow.ActionOwnerRemoved) {
			t.Fatalf("owner changes not audited: %v", actions)
		}
		// A role with no owners falls back to the default owners.
		if got, _ := h.svc.Owners(ctx, workflow.Role{ID: h.roles["Marketing"], Name: "Marketing"}); !slices.Equal(got, []string{admin}) {
			t.Fatalf("fallback owners = %v", got)
		}
		infos, err := h.svc.RoleDetails(ctx)
		if err != nil || len(infos) != 4 || infos[0].Name != "Engineering" || infos[0].Rules.MaxDuration != 7*24*time.Hour {
			t.Fatalf("RoleDetails = %+v, %v", infos, err)
		}
	})
}

func TestDurationChoices(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		eng := h.svc.DurationChoices(workflow.Role{Name: "Engineering"})
		if want := []time.Duration{time.Hour, 8 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}; !slices.Equal(eng, want) {
			t.Errorf("Engineering choices %v", eng)
		}
		if mk := h.svc.DurationChoices(workflow.Role{Name: "Marketing"}); mk[len(mk)-1] != 0 {
			t.Errorf("Marketing choices %v lack permanent", mk)
		}
	})
}

func TestPolicyChangeRecordedOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		// Replicas starting together, then a restart.
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func(s *workflow.Service) {
				defer wg.Done()
				if err := s.RecordPolicy(ctx); err != nil {
					t.Error(err)
				}
			}(h.slowReplica())
		}
		wg.Wait()
		if err := h.svc.RecordPolicy(ctx); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, a := range h.auditActions(0) {
			if a == workflow.ActionPolicyChanged {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d policy_changed entries, want 1", n)
		}
	})
}
