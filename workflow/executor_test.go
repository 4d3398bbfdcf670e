package workflow_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/workflow"
)

// TestWorkerDiesMidJob: a worker claims the job and dies (its lease is never
// released). After the lease ends another worker completes the job, once.
func TestWorkerDiesMidJob(t *testing.T) {
	cases := []struct {
		name            string
		appliedBeforeDy bool // the dead worker had already changed PostHog
	}{
		{"died before calling PostHog", false},
		{"died after PostHog applied the change", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			eachDB(t, func(t *testing.T, db *store.DB) {
				h := newHarness(t, db)
				r := h.mustCreate("Engineering", time.Hour)
				h.mustApprove(r, bob)
				job, err := db.ClaimJob(ctx, []workflow.JobKind{workflow.JobExecute}, h.clock.Now(), time.Minute)
				if err != nil || job == nil {
					t.Fatalf("claim: %v %v", job, err)
				}
				if c.appliedBeforeDy {
					h.ph.AddMembership(h.roles["Engineering"], h.uuids[alice])
				}
				// While the dead worker's lease lasts, nobody else takes the job.
				h.drain()
				if got := h.request(r.ID).State; got != workflow.StateApproved {
					t.Fatalf("state during lease = %s", got)
				}
				h.clock.Advance(2 * time.Minute)
				h.drain()
				got := h.request(r.ID)
				if got.State != workflow.StateCompleted {
					t.Fatalf("state after lease = %s (%s)", got.State, got.FailureReason)
				}
				// One create either way (PostHog's "already part of the role"
				// counts as done), and exactly one membership.
				if n, ms := h.membershipCreates(), h.ph.Memberships(h.roles["Engineering"]); n != 1 || len(ms) != 1 || got.MembershipID != ms[0].ID {
					t.Fatalf("%d membership creates, %d memberships (grant holds %q)", n, len(ms), got.MembershipID)
				}
				// The dead worker's lease is gone: finishing with it conflicts.
				err = db.Update(ctx, func(ctx2 ctxT, tx workflow.Tx) error { return tx.FinishJob(ctx2, job.ID, job.LeaseToken) })
				if workflow.ErrorCode(err) != workflow.ECONFLICT {
					t.Fatalf("stale lease finish: %v", err)
				}
			})
		})
	}
}

func TestPostHogErrorsThenSuccess(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		r := h.mustCreate("Engineering", time.Hour)
		h.mustApprove(r, bob)
		// The client gives up after 2 attempts (the create, then the look-up
		// that checks whether it was applied, which retries once itself):
		// 6 failures need two job runs.
		h.ph.FailNext(6, 500)
		h.drain()
		if got := h.request(r.ID).State; got != workflow.StateExecuting {
			t.Fatalf("state after first failures = %s", got)
		}
		h.clock.Advance(time.Second)
		h.drain()
		if got := h.request(r.ID).State; got != workflow.StateExecuting {
			t.Fatalf("state after second failures = %s", got)
		}
		h.clock.Advance(10 * time.Second)
		h.drain()
		got := h.request(r.ID)
		if got.State != workflow.StateCompleted || !h.isMember("Engineering", alice) {
			t.Fatalf("state after recovery = %s (%s)", got.State, got.FailureReason)
		}
		retries := 0
		for _, a := range h.auditActions(r.ID) {
			if a == workflow.ActionExecutionRetry {
				retries++
			}
		}
		if retries != 2 {
			t.Fatalf("%d retries audited, want 2", retries)
		}
	})
}

func TestRateLimitedExecutionWaitsRetryAfter(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		r := h.mustCreate("Engineering", time.Hour)
		h.mustApprove(r, bob)
		h.ph.ThrottleNext(1, 30*time.Second)
		h.drain()
		h.clock.Advance(20 * time.Second)
		h.drain()
		if got := h.request(r.ID).State; got != workflow.StateExecuting {
			t.Fatalf("retried before Retry-After: %s", got)
		}
		h.clock.Advance(15 * time.Second)
		h.drain()
		if got := h.request(r.ID).State; got != workflow.StateCompleted {
			t.Fatalf("state = %s", got)
		}
	})
}

func TestPermanentErrorFailsAndNotifies(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		r := h.mustCreate("Engineering", time.Hour)
		h.mustApprove(r, bob)
		// The role is deleted in PostHog between approval and execution.
		if err := h.client.Roles.Delete(ctx, h.roles["Engineering"]); err != nil {
			t.Fatal(err)
		}
		h.drain()
		got := h.request(r.ID)
		if got.State != workflow.StateFailed || !strings.Contains(got.FailureReason, "PostHog") {
			t.Fatalf("state %s, reason %q", got.State, got.FailureReason)
		}
		if ev := h.notes.types(r.ID); ev[len(ev)-1] != workflow.EventFailed {
			t.Fatalf("events %v", ev)
		}
		if a := h.auditActions(r.ID); a[len(a)-1] != workflow.ActionExecutionFailed {
			t.Fatalf("audit %v", a)
		}
	})
}

func TestRetriesAreBounded(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, func(c *workflow.Config) { c.ExecuteAttempts = 3 })
		r := h.mustCreate("Engineering", time.Hour)
		h.mustApprove(r, bob)
		h.ph.FailNext(1000, 503)
		for i := 0; i < 5; i++ {
			h.drain()
			h.clock.Advance(time.Minute)
		}
		got := h.request(r.ID)
		if got.State != workflow.StateFailed || !strings.Contains(got.FailureReason, "after 3 attempts") {
			t.Fatalf("state %s, reason %q", got.State, got.FailureReason)
		}
	})
}

func TestNotificationFailureKeepsStateChange(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		h.notes.fail = 2
		r := h.mustCreate("Engineering", time.Hour)
		h.drain()
		if got := h.request(r.ID).State; got != workflow.StatePending {
			t.Fatalf("state %s", got)
		}
		if ev := h.notes.types(r.ID); len(ev) != 0 {
			t.Fatalf("delivered despite failure: %v", ev)
		}
		for i := 0; i < 2; i++ { // second failure, then success
			h.clock.Advance(time.Minute)
			h.drain()
		}
		if ev := h.notes.types(r.ID); !slices.Equal(ev, []workflow.EventType{workflow.EventCreated}) {
			t.Fatalf("events after retry: %v", ev)
		}
	})
}

func TestSchedulerExpiresRemindsAndRevokes(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		stale := h.mustCreate("Finance", 0)
		grant := h.mustCreate("Engineering", 8*time.Hour)
		h.mustApprove(grant, bob)
		h.drain()

		h.clock.Advance(7 * time.Hour)
		tick(t, h)
		if ev := h.notes.types(stale.ID); slices.Contains(ev, workflow.EventReminder) {
			t.Fatal("reminded too early")
		}
		if !h.isMember("Engineering", alice) || h.request(grant.ID).State != workflow.StateCompleted {
			t.Fatal("8h grant revoked after 7h")
		}
		h.clock.Advance(18 * time.Hour) // 25h
		tick(t, h)
		if ev := h.notes.types(stale.ID); !slices.Contains(ev, workflow.EventReminder) {
			t.Fatalf("no reminder after 24h: %v", ev)
		}
		tick(t, h)
		reminders := 0
		for _, e := range h.notes.types(stale.ID) {
			if e == workflow.EventReminder {
				reminders++
			}
		}
		if reminders != 1 {
			t.Fatalf("%d reminders, want 1", reminders)
		}
		g := h.request(grant.ID)
		if g.State != workflow.StateRevoked || h.isMember("Engineering", alice) {
			t.Fatalf("grant %s, member %v", g.State, h.isMember("Engineering", alice))
		}
		if a := h.auditActions(grant.ID); a[len(a)-1] != workflow.ActionGrantRevoked || !slices.Contains(a, workflow.ActionRevokeRequested) {
			t.Fatalf("grant audit %v", a)
		}

		h.clock.Advance(48 * time.Hour) // 73h
		tick(t, h)
		if got := h.request(stale.ID).State; got != workflow.StateExpired {
			t.Fatalf("stale request %s", got)
		}
		if ev := h.notes.types(stale.ID); ev[len(ev)-1] != workflow.EventExpired {
			t.Fatalf("events %v", ev)
		}
		if rep := h.verify(); !rep.OK {
			t.Fatal(rep)
		}
	})
}

// TestSchedulersInParallelRevokeOnce: several processes tick against one
// database at the same moment; each due thing happens once.
func TestSchedulersInParallelRevokeOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		grant := h.mustCreate("Engineering", time.Hour)
		stale := h.mustCreate("Finance", 0)
		h.mustApprove(grant, bob)
		h.drain()
		// Replicas: services sharing the store, PostHog and clock.
		replicas := []*workflow.Service{h.svc}
		for i := 0; i < 3; i++ {
			replicas = append(replicas, h.replica())
		}
		h.clock.Advance(100 * time.Hour)
		var wg sync.WaitGroup
		for _, s := range replicas {
			wg.Add(1)
			go func(s *workflow.Service) {
				defer wg.Done()
				if err := s.Tick(ctx); err != nil {
					t.Error(err)
				}
				for {
					ran, err := s.RunJob(ctx)
					if err != nil {
						t.Error(err)
					}
					if !ran || err != nil {
						return
					}
				}
			}(s)
		}
		wg.Wait()
		h.drain()
		count := func(id int64, want workflow.Action) int {
			n := 0
			for _, a := range h.auditActions(id) {
				if a == want {
					n++
				}
			}
			return n
		}
		if n := count(grant.ID, workflow.ActionRevokeRequested); n != 1 {
			t.Errorf("%d revocations requested", n)
		}
		if n := count(grant.ID, workflow.ActionGrantRevoked); n != 1 {
			t.Errorf("%d grants revoked", n)
		}
		if n := count(stale.ID, workflow.ActionRequestExpired); n != 1 {
			t.Errorf("%d expiries", n)
		}
		deletes := 0
		for _, c := range h.ph.Calls() {
			if c.Method == "DELETE" {
				deletes++
			}
		}
		if deletes != 1 {
			t.Errorf("%d PostHog deletes, want 1", deletes)
		}
	})
}

func TestDriftIsAuditedAndReported(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		if err := h.svc.Reconcile(ctx); err != nil { // baseline
			t.Fatal(err)
		}
		// A change by the bot is not drift.
		r := h.mustCreate("Engineering", time.Hour)
		h.mustApprove(r, bob)
		h.drain()
		if err := h.svc.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(h.auditActions(0), workflow.ActionDriftDetected) {
			t.Fatal("the bot's own change was reported as drift")
		}
		// Someone adds dave in the PostHog UI.
		h.ph.AddMembership(h.roles["Engineering"], h.uuids[dave])
		// Several replicas reconcile at once, then again: reported once.
		var wg sync.WaitGroup
		for i := 0; i < 3; i++ {
			wg.Add(1)
			go func(s *workflow.Service) {
				defer wg.Done()
				if err := s.Reconcile(ctx); err != nil {
					t.Error(err)
				}
			}(h.slowReplica())
		}
		wg.Wait()
		if err := h.svc.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		h.drain()
		drifts := 0
		for _, a := range h.auditActions(0) {
			if a == workflow.ActionDriftDetected {
				drifts++
			}
		}
		if drifts != 1 {
			t.Fatalf("%d drift entries, want 1", drifts)
		}
		var drift *workflow.Event
		h.notes.mu.Lock()
		for i, e := range h.notes.events {
			if e.Type == workflow.EventDrift {
				drift = &h.notes.events[i]
			}
		}
		h.notes.mu.Unlock()
		if drift == nil || len(drift.Drift.Added) != 1 || drift.Drift.Added[0].Email != "dave@example.com" ||
			!slices.Contains(drift.Owners, bob) {
			t.Fatalf("drift event %+v", drift)
		}
	})
}
