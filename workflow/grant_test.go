package workflow_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/posthogdir"
	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/workflow"
)

// grant asks for role for alice for d, has bob approve it and runs the
// execution: a grant in force.
func (h *harness) grant(role string, d time.Duration) *workflow.Request {
	h.t.Helper()
	r := h.mustCreate(role, d)
	if r.State == workflow.StatePending {
		h.mustApprove(r, bob)
	}
	h.drain()
	g := h.request(r.ID)
	if !g.Active() || g.MembershipID == "" {
		h.t.Fatalf("%s is %s with membership %q, want an active grant", g.Ref(), g.State, g.MembershipID)
	}
	return g
}

// deletes lists the membership ids PostHog was asked to delete.
func (h *harness) deletes() []string {
	var out []string
	for _, c := range h.ph.Calls() {
		if c.Method == "DELETE" && strings.Contains(c.Path, "/role_memberships/") {
			out = append(out, strings.TrimSuffix(c.Path[strings.LastIndex(strings.TrimSuffix(c.Path, "/"), "/")+1:], "/"))
		}
	}
	return out
}

func (h *harness) eventsOf(id int64, typ workflow.EventType) []workflow.Event {
	h.notes.mu.Lock()
	defer h.notes.mu.Unlock()
	var out []workflow.Event
	for _, e := range h.notes.events {
		if e.Type == typ && e.Audience == workflow.AudienceAll && e.Request != nil && e.Request.ID == id {
			out = append(out, e)
		}
	}
	return out
}

func (h *harness) overdueCount() int64 {
	h.t.Helper()
	n, err := h.db.CountOverdueRevocations(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// Case 1: a revocation PostHog refuses is never abandoned.
func TestRevocationRefusedThreeTimesIsRetriedUntilPostHogAgrees(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		ctx := context.Background()
		g := h.grant("Engineering", time.Hour)
		h.clock.Advance(time.Hour + time.Second)
		h.ph.FailNext(3, 403)
		tick(t, h)

		r := h.request(g.ID)
		if !r.Overdue() || r.State != workflow.StateCompleted || !h.isMember("Engineering", alice) {
			t.Fatalf("after one 403: state %s overdue %v member %v", r.State, r.Overdue(), h.isMember("Engineering", alice))
		}
		if n := h.overdueCount(); n != 1 {
			t.Fatalf("accessbot_revocations_overdue = %d, want 1", n)
		}
		alarms := h.eventsOf(g.ID, workflow.EventRevocationOverdue)
		if len(alarms) != 1 || !slices.Contains(alarms[0].Owners, bob) || !slices.Contains(alarms[0].Owners, carol) || !slices.Contains(alarms[0].Owners, admin) {
			t.Fatalf("overdue alarms = %+v, want one to bob, carol and the admin", alarms)
		}
		mine, _ := h.svc.ListMine(ctx, alice, 10)
		if !mine[0].Overdue() {
			t.Fatal("/access list does not show the grant as revocation overdue")
		}
		if od, _ := h.svc.Grants().Overdue(ctx, bob); len(od) != 1 {
			t.Fatalf("owner's pending list shows %d overdue grants, want 1", len(od))
		}
		// Two more 403s, each retried after at most 15 minutes.
		for i := 0; i < 2; i++ {
			h.clock.Advance(15 * time.Minute)
			tick(t, h)
			if h.request(g.ID).State != workflow.StateCompleted {
				t.Fatalf("retry %d: grant ended while PostHog refused", i+2)
			}
		}
		h.clock.Advance(15 * time.Minute)
		tick(t, h)
		r = h.request(g.ID)
		if r.State != workflow.StateRevoked || h.isMember("Engineering", alice) {
			t.Fatalf("after PostHog agreed: state %s, member %v", r.State, h.isMember("Engineering", alice))
		}
		if got := h.deletes(); len(got) != 4 || got[3] != g.MembershipID {
			t.Fatalf("DELETEs = %v, want 4 of membership %s", got, g.MembershipID)
		}
		acts := h.auditActions(g.ID)
		if n := countAction(acts, workflow.ActionRevocationOverdue); n != 1 {
			t.Fatalf("revocation_overdue audited %d times: %v", n, acts)
		}
		if acts[len(acts)-1] != workflow.ActionGrantRevoked {
			t.Fatalf("last entry %s, want grant_revoked: %v", acts[len(acts)-1], acts)
		}
		if n := h.overdueCount(); n != 0 {
			t.Fatalf("overdue gauge = %d after the revocation", n)
		}
		if got := h.notes.types(g.ID); got[len(got)-1] != workflow.EventRevoked {
			t.Fatalf("holder not told the access ended: %v", got)
		}
		if !h.verify().OK {
			t.Fatal("audit chain broken")
		}
	})
}

func countAction(acts []workflow.Action, a workflow.Action) int {
	n := 0
	for _, x := range acts {
		if x == a {
			n++
		}
	}
	return n
}

// Case 1, continued: 5xx for half an hour (far past the old 10 attempts),
// a daily alarm, /access revoke retrying at once, and drift still reported.
func TestRevocationDuringLongOutageStaysOverdueAlarmsDailyAndRevokeRetriesNow(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		ctx := context.Background()
		if err := h.svc.Reconcile(ctx); err != nil { // baseline
			t.Fatal(err)
		}
		g := h.grant("Engineering", time.Hour)
		h.clock.Advance(time.Hour)
		h.ph.FailNext(1_000_000, 503)
		for i := 0; i < 40; i++ { // 40 tries over many hours
			tick(t, h)
			h.clock.Advance(15 * time.Minute)
		}
		if r := h.request(g.ID); !r.Overdue() {
			t.Fatalf("after 40 failed tries: state %s, overdue %v", r.State, r.Overdue())
		}
		if n := len(h.eventsOf(g.ID, workflow.EventRevocationOverdue)); n != 1 {
			t.Fatalf("overdue alarms over 10 hours = %d, want 1 (at once; the daily one is not due)", n)
		}
		// A day later owners and admins hear again.
		h.clock.Advance(24 * time.Hour)
		tick(t, h)
		if n := len(h.eventsOf(g.ID, workflow.EventRevocationOverdue)); n != 2 {
			t.Fatalf("overdue alarms after a day = %d, want 2", n)
		}
		// Someone adds dave in PostHog meanwhile: drift is still reported.
		h.ph.FailNext(0, 0)
		h.ph.AddMembership(h.roles["Engineering"], h.uuids[dave])
		if err := h.svc.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(h.auditActions(0), workflow.ActionDriftDetected) {
			t.Fatal("drift not reported while a revocation is overdue")
		}
		// The owner says /access revoke: it is retried now, not refused.
		before := len(h.deletes())
		if _, err := h.svc.Grants().Revoke(ctx, g.ID, bob, ""); err != nil {
			t.Fatalf("revoke on an overdue grant: %v", err)
		}
		h.drain()
		if r := h.request(g.ID); r.State != workflow.StateRevoked || len(h.deletes()) != before+1 {
			t.Fatalf("retry now: state %s, deletes %d → %d", r.State, before, len(h.deletes()))
		}
	})
}

// Case 2: ending an old grant never touches a newer grant's membership.
func TestRevokingOldGrantAfterRemovalAndNewGrantKeepsNewerMembership(t *testing.T) {
	for _, by := range []string{"scheduler", "owner"} {
		t.Run(by, func(t *testing.T) {
			eachDB(t, func(t *testing.T, db *store.DB) {
				h := newHarness(t, db)
				ctx := context.Background()
				first := h.grant("Engineering", time.Hour)
				rm, err := h.create(workflow.KindRemove, alice, "", "Engineering", "done with it", 0)
				if err != nil {
					t.Fatal(err)
				}
				h.mustApprove(rm, bob)
				h.drain()
				if r := h.request(first.ID); r.State != workflow.StateRevoked || countAction(h.auditActions(first.ID), workflow.ActionGrantSuperseded) != 1 {
					t.Fatalf("completed removal left %s %s (audit %v)", first.Ref(), r.State, h.auditActions(first.ID))
				}
				third := h.grant("Engineering", 7*24*time.Hour)
				deletes := len(h.deletes())
				switch by {
				case "scheduler":
					h.clock.Advance(2 * time.Hour)
					tick(t, h)
				case "owner":
					_, err := h.svc.Grants().Revoke(ctx, first.ID, bob, "")
					wantCode(t, err, workflow.ECONFLICT)
					h.drain()
				}
				if len(h.deletes()) != deletes || !h.isMember("Engineering", alice) || h.request(third.ID).State != workflow.StateCompleted {
					t.Fatalf("ending #1 touched #3: deletes %d → %d, member %v, #3 %s", deletes, len(h.deletes()),
						h.isMember("Engineering", alice), h.request(third.ID).State)
				}
			})
		})
	}
}

// Case 2, the other way in: the person left the role in PostHog, was granted
// again, and only then does the first grant end: it deletes its own (gone)
// membership, never the new one.
func TestOldGrantEndingAfterOutsideRemovalDeletesOnlyItsOwnMembership(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		first := h.grant("Engineering", time.Hour)
		h.ph.RemoveMembership(h.roles["Engineering"], h.uuids[alice])
		second := h.grant("Engineering", 8*time.Hour)
		if second.MembershipID == first.MembershipID {
			t.Fatal("same membership id twice")
		}
		if r := h.request(first.ID); r.State != workflow.StateRevoked {
			t.Fatalf("the new grant did not supersede the old one: %s", r.State)
		}
		h.clock.Advance(2 * time.Hour)
		tick(t, h)
		for _, id := range h.deletes() {
			if id == second.MembershipID {
				t.Fatalf("the new grant's membership %s was deleted", id)
			}
		}
		if !h.isMember("Engineering", alice) || h.request(second.ID).State != workflow.StateCompleted {
			t.Fatal("the new grant lost its membership")
		}
	})
}

// Drift showing the person left ends their grants.
func TestDriftShowingPersonLeftEndsTheirGrant(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		ctx := context.Background()
		if err := h.svc.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		g := h.grant("Engineering", 8*time.Hour)
		h.ph.RemoveMembership(h.roles["Engineering"], h.uuids[alice])
		if err := h.svc.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		h.drain()
		if r := h.request(g.ID); r.State != workflow.StateRevoked || !strings.Contains(r.DecisionReason, "outside accessbot") {
			t.Fatalf("grant after drift: %s %q", r.State, r.DecisionReason)
		}
		if !slices.Contains(h.notes.types(g.ID), workflow.EventRevoked) {
			t.Fatal("holder not told")
		}
		h.clock.Advance(9 * time.Hour)
		tick(t, h)
		if n := len(h.deletes()); n != 0 {
			t.Fatalf("%d DELETEs for a grant already ended", n)
		}
	})
}

// Case 3: one open request per person and role, whatever its kind.
func TestAdditionAndRemovalForSamePersonAndRoleNeverOpenAtOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		ctx := context.Background()
		add := h.mustCreate("Engineering", time.Hour)
		_, err := h.create(workflow.KindRemove, bob, alice, "Engineering", "cleanup", 0)
		wantCode(t, err, workflow.EINVALID) // alice isn't a member yet
		// Made a member by hand while her addition waits.
		h.ph.AddMembership(h.roles["Engineering"], h.uuids[alice])
		_, err = h.create(workflow.KindRemove, bob, alice, "Engineering", "cleanup", 0)
		if workflow.ErrorField(err) != "role" || !strings.Contains(workflow.ErrorMessage(err), add.Ref()+" to add @"+alice+" to Engineering is still waiting for a decision") ||
			!slices.Contains(workflow.ErrorUsers(err), alice) {
			t.Fatalf("removal while an addition is pending: %v", err)
		}
		if _, err := h.svc.Approve(ctx, add.ID, carol); err != nil {
			t.Fatal(err)
		}
		_, err = h.create(workflow.KindRemove, bob, alice, "Engineering", "cleanup", 0)
		if !strings.Contains(workflow.ErrorMessage(err), add.Ref()+" to add @"+alice+" to Engineering is still running") {
			t.Fatalf("removal while an addition runs: %v", err)
		}
	})
}

// Case 4: a rename in PostHog drops no policy.
func TestRenamedRoleKeepsPolicyWhileRunningAndStartUpNamesTheNewName(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		ctx := context.Background()
		dir := posthogdir.New(h.client)
		policy := h.svc.Policy()
		if err := workflow.BindPolicy(ctx, policy, dir, db); err != nil {
			t.Fatalf("bind: %v", err)
		}
		if _, err := h.client.Roles.Update(ctx, h.roles["Engineering"], "Eng"); err != nil {
			t.Fatal(err)
		}
		// While running: the cap and the owners still apply.
		_, err := h.create(workflow.KindAdd, alice, "", "Eng", "x", 30*24*time.Hour)
		if workflow.ErrorField(err) != "duration" {
			t.Fatalf("cap lost after a rename: %v", err)
		}
		r := h.mustCreate("Eng", time.Hour)
		if _, err := h.svc.Approve(ctx, r.ID, bob); err != nil {
			t.Fatalf("owner refused after a rename: %v", err)
		}
		// At the next start: the old name is named with the new one.
		p2, err := workflow.ParsePolicy("policy.yaml", []byte(testPolicy))
		if err != nil {
			t.Fatal(err)
		}
		err = workflow.BindPolicy(ctx, p2, dir, db)
		want := `policy.yaml:9:11: role "Engineering" was renamed to "Eng" in PostHog; update policy.yaml:9`
		if err == nil || err.Error() != want {
			t.Fatalf("start-up after a rename:\n got %v\nwant %s", err, want)
		}
		// A role deleted in PostHog, and one it never had.
		if err := h.client.Roles.Delete(ctx, h.roles["Finance"]); err != nil {
			t.Fatal(err)
		}
		p3, _ := workflow.ParsePolicy("policy.yaml", []byte(strings.Replace(testPolicy, "role: Engineering", "role: Eng", 1)))
		err = workflow.BindPolicy(ctx, p3, dir, db)
		if err == nil || !strings.Contains(err.Error(), `policy.yaml:12:11: role "Finance" was deleted in PostHog`) {
			t.Fatalf("deleted role: %v", err)
		}
		p4, _ := workflow.ParsePolicy("policy.yaml", []byte("roles:\n  - role: Nope\n"))
		err = workflow.BindPolicy(ctx, p4, dir, db)
		if err == nil || !strings.Contains(err.Error(), `policy.yaml:2:11: PostHog has no role "Nope"`) {
			t.Fatalf("unknown role: %v", err)
		}
	})
}

// Case 5: a request by an owner goes to the other owners and the admins;
// one nobody else could decide is refused.
func TestOwnersOwnRequestGoesToOtherOwnersAndAdmins(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		r, err := h.create(workflow.KindAdd, bob, "", "Finance", "quarter close", 0)
		if err != nil {
			t.Fatal(err)
		}
		h.drain()
		created := h.eventsOf(r.ID, workflow.EventCreated)
		if len(created) != 1 || !slices.Equal(created[0].Owners, []string{carol, admin}) {
			t.Fatalf("asked %+v, want carol and the admin", created)
		}
		h.mustApprove(r, carol)
		h.mustApprove(r, admin)
		h.drain()
		if got := h.request(r.ID).State; got != workflow.StateCompleted {
			t.Fatalf("bob's request is %s", got)
		}
	})
}

func TestRequestNobodyButTheRequesterCouldDecideIsRefused(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, func(c *workflow.Config) {
			c.Admins = nil
			c.Policy, _ = workflow.ParsePolicy("policy.yaml", []byte("roles:\n  - role: Marketing\n    owners: [UDAVE001]\n"))
		})
		_, err := h.create(workflow.KindAdd, dave, "", "Marketing", "campaign", 0)
		if workflow.ErrorCode(err) != workflow.EFORBIDDEN || !strings.Contains(workflow.ErrorMessage(err), "Nobody but you can approve") {
			t.Fatalf("sole owner's own request: %v", err)
		}
	})
}

// Case 6: no decision once the time to decide has passed, scheduler or not.
func TestApproveOrDenyAfterExpiryTimeIsRefusedBeforeTheSchedulerRuns(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		ctx := context.Background()
		r := h.mustCreate("Engineering", time.Hour)
		h.clock.Advance(72*time.Hour + time.Second)
		_, err := h.svc.Approve(ctx, r.ID, bob)
		if workflow.ErrorCode(err) != workflow.ECONFLICT || !strings.Contains(workflow.ErrorMessage(err), "expired") {
			t.Fatalf("approve after expiry: %v", err)
		}
		_, err = h.svc.Deny(ctx, r.ID, bob, "late")
		wantCode(t, err, workflow.ECONFLICT)
		h.drain()
		if got := h.request(r.ID).State; got != workflow.StatePending || len(h.ph.CallsMatching("POST", "")) != 0 {
			t.Fatalf("state %s after a refused late approval", got)
		}
	})
}

func TestOwnerNamedOnlyInPolicyCannotBeRemovedFromSlack(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		ctx := context.Background()
		for _, c := range []struct{ role, user string }{{"Engineering", bob}, {"Marketing", admin}} {
			_, err := h.svc.RemoveOwner(ctx, admin, c.role, c.user)
			if workflow.ErrorCode(err) != workflow.EFORBIDDEN || !strings.Contains(workflow.ErrorMessage(err), "policy.yaml") {
				t.Fatalf("remove %s from %s: %v", c.user, c.role, err)
			}
		}
		if slices.Contains(h.auditActions(0), workflow.ActionOwnerRemoved) {
			t.Fatal("a refused removal was audited")
		}
	})
}

func TestExtendMovesTheEndWithoutPostHogCallAndNeverShortens(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		ctx := context.Background()
		g := h.grant("Engineering", 8*time.Hour)
		end := g.RevokeAt
		_, err := h.svc.Grants().Extend(ctx, g.ID, bob, time.Hour)
		wantCode(t, err, workflow.EFORBIDDEN)
		_, err = h.svc.Grants().Extend(ctx, g.ID, alice, 8*24*time.Hour)
		if workflow.ErrorField(err) != "duration" {
			t.Fatalf("extension over max_duration: %v", err)
		}
		ext, err := h.svc.Grants().Extend(ctx, g.ID, alice, 4*time.Hour)
		if err != nil || ext.State != workflow.StatePending || ext.Kind != workflow.KindExtend || ext.GrantID != g.ID {
			t.Fatalf("extend: %+v, %v", ext, err)
		}
		h.drain()
		if created := h.eventsOf(ext.ID, workflow.EventCreated); len(created) != 1 || !slices.Equal(created[0].Owners, []string{bob, carol}) {
			t.Fatalf("extension routed to %+v", created)
		}
		calls := len(h.ph.Calls())
		h.clock.Advance(time.Hour)
		h.mustApprove(ext, carol)
		h.drain()
		if got := h.request(g.ID).RevokeAt; !got.Equal(end.Add(4 * time.Hour)) {
			t.Fatalf("end %v, want %v", got, end.Add(4*time.Hour))
		}
		if n := len(h.ph.Calls()) - calls; n != 0 {
			t.Fatalf("extension made %d PostHog calls", n)
		}
		if countAction(h.auditActions(g.ID), workflow.ActionGrantExtended) != 1 || !slices.Contains(h.notes.types(ext.ID), workflow.EventExtended) {
			t.Fatal("extension not audited or not told")
		}
		// Capped at max_duration (7d) from the approval.
		ext2, err := h.svc.Grants().Extend(ctx, g.ID, alice, 7*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		h.mustApprove(ext2, bob)
		if got, want := h.request(g.ID).RevokeAt, h.clock.Now().Add(7*24*time.Hour); !got.Equal(want.Truncate(time.Microsecond)) {
			t.Fatalf("capped end %v, want %v", got, want)
		}
		// Never shortened: with the end already at the cap, another
		// extension leaves it where it is.
		before := h.request(g.ID).RevokeAt
		ext3, err := h.svc.Grants().Extend(ctx, g.ID, alice, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		h.mustApprove(ext3, bob)
		if got := h.request(g.ID).RevokeAt; !got.Equal(before) {
			t.Fatalf("end moved from %v to %v past the cap", before, got)
		}
	})
}

func TestExtendOnAutoApproveRoleIsImmediateAndDoneEndsTheGrant(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		ctx := context.Background()
		g := h.grant("Viewer", 8*time.Hour)
		ext, err := h.svc.Grants().Extend(ctx, g.ID, alice, 0)
		if err != nil || ext.State != workflow.StateCompleted {
			t.Fatalf("auto-approved extension: %+v %v", ext, err)
		}
		if got := h.request(g.ID).RevokeAt; !got.Equal(g.RevokeAt.Add(8 * time.Hour)) {
			t.Fatalf("end %v", got)
		}
		_, err = h.svc.Grants().Done(ctx, g.ID, bob)
		wantCode(t, err, workflow.EFORBIDDEN)
		if _, err := h.svc.Grants().Done(ctx, g.ID, alice); err != nil {
			t.Fatal(err)
		}
		h.drain()
		if r := h.request(g.ID); r.State != workflow.StateRevoked || h.isMember("Viewer", alice) {
			t.Fatalf("done: %s, member %v", r.State, h.isMember("Viewer", alice))
		}
		acts := h.auditActions(g.ID)
		if !slices.Contains(acts, workflow.ActionGrantDone) || acts[len(acts)-1] != workflow.ActionGrantRevoked {
			t.Fatalf("audit %v", acts)
		}
	})
}

func TestExpiryWarningsSentOnceEachAcrossARestart(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		g := h.grant("Engineering", 48*time.Hour)
		short := h.grant("Viewer", 30*time.Minute) // shorter than both warnings
		warnings := func() int { return len(h.eventsOf(g.ID, workflow.EventExpiryWarning)) }
		h.clock.Advance(24*time.Hour + time.Second)
		tick(t, h)
		tick(t, h)
		if warnings() != 1 {
			t.Fatalf("24h warning sent %d times", warnings())
		}
		// Restart: another process over the same database.
		h.svc = h.replica()
		tick(t, h)
		if warnings() != 1 {
			t.Fatalf("after restart: %d warnings", warnings())
		}
		h.clock.Advance(23 * time.Hour)
		tick(t, h)
		tick(t, h)
		if warnings() != 2 {
			t.Fatalf("1h warning: %d warnings", warnings())
		}
		h.clock.Advance(time.Hour)
		tick(t, h)
		if warnings() != 2 || h.request(g.ID).State != workflow.StateRevoked {
			t.Fatalf("at the end: %d warnings, %s", warnings(), h.request(g.ID).State)
		}
		if n := len(h.eventsOf(short.ID, workflow.EventExpiryWarning)); n != 0 {
			t.Fatalf("a 30m grant got %d warnings", n)
		}
	})
}

// duringAdd runs fn once, while the first membership create is on its way
// to PostHog: the grant is executing.
type duringAdd struct {
	workflow.Directory
	fn func()
}

func (d *duringAdd) AddRoleMember(ctx context.Context, roleID, userUUID string) (string, bool, error) {
	if fn := d.fn; fn != nil {
		d.fn = nil
		fn()
	}
	return d.Directory.AddRoleMember(ctx, roleID, userUUID)
}

func withDuringAdd(d *duringAdd) harnessOption {
	return func(c *workflow.Config) { d.Directory, c.Directory = c.Directory, d }
}

// approvedGrant is alice's approved request for Engineering, not executed.
func approvedGrant(h *harness) *workflow.Request {
	r := h.mustCreate("Engineering", time.Hour)
	h.mustApprove(r, bob)
	return r
}

// ownerRevokes is bob revoking r with a reason.
func ownerRevokes(h *harness, r *workflow.Request) error {
	_, err := h.svc.Grants().Revoke(ctx, r.ID, bob, "not needed after all")
	return err
}

// Grant rule 8: a grant revoked while it is being added ends as soon as
// PostHog has it, whoever revokes it and however; nobody clicks twice.
func TestRevokedWhileBeingAddedEndsOnceAdded(t *testing.T) {
	cases := []struct {
		name string
		// start makes a grant that is executed next; revoke revokes it as an
		// owner would, while its create is in flight.
		start  func(h *harness) *workflow.Request
		revoke func(h *harness, r *workflow.Request) error
		// addFails makes PostHog refuse the create for good.
		addFails bool
		// before revokes before the execution starts: nothing is sent.
		before bool
	}{
		{
			name: "break-glass Revoke now",
			start: func(h *harness) *workflow.Request {
				r, err := h.svc.BreakGlass().Use(ctx, workflow.NewRequest{RequesterID: alice, Role: "Marketing", Reason: "prod is down"})
				if err != nil {
					h.t.Fatal(err)
				}
				return r
			},
			revoke: func(h *harness, r *workflow.Request) error {
				var revs []*workflow.Review
				if err := h.db.View(ctx, func(ctx context.Context, tx workflow.Tx) (err error) {
					revs, err = tx.FindReviews(ctx, workflow.ReviewFilter{RequestID: r.ID})
					return err
				}); err != nil || len(revs) != 1 {
					h.t.Fatalf("break-glass review of %s: %v %v", r.Ref(), revs, err)
				}
				if _, err := h.svc.BreakGlass().RevokeNow(ctx, revs[0].ID, bob); err != nil {
					return err
				}
				if rev, _, _ := h.svc.BreakGlass().Review(ctx, revs[0].ID); rev.Outcome != workflow.BreakGlassRevoked {
					h.t.Errorf("review after Revoke now: %+v", rev)
				}
				return nil
			},
		},
		{
			name:   "owner revokes an approved grant",
			start:  approvedGrant,
			revoke: ownerRevokes,
		},
		{
			name:     "owner revokes, then PostHog refuses the create",
			start:    approvedGrant,
			revoke:   ownerRevokes,
			addFails: true,
		},
		{
			name:   "owner revokes before the execution starts",
			start:  approvedGrant,
			revoke: ownerRevokes,
			before: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			eachDB(t, func(t *testing.T, db *store.DB) {
				hook := &duringAdd{}
				var mu sync.Mutex
				var outcomes []string
				observe := func(c *workflow.Config) {
					c.ObserveJob = func(kind workflow.JobKind, outcome string) {
						mu.Lock()
						defer mu.Unlock()
						outcomes = append(outcomes, string(kind)+"/"+outcome)
					}
				}
				h := newHarness(t, db, withReviewPolicy, withDuringAdd(hook), observe)
				r := c.start(h)
				role := h.request(r.ID).RoleName
				var revokeErr, againErr error
				revoke := func() {
					revokeErr = c.revoke(h, r)
					_, againErr = h.svc.Grants().Revoke(ctx, r.ID, carol, "")
				}
				hook.fn = func() {
					if c.before {
						t.Error("PostHog was asked to add a grant revoked before its execution")
						return
					}
					if st := h.request(r.ID).State; st != workflow.StateExecuting {
						t.Errorf("the hook ran with the grant %s", st)
					}
					revoke()
					if c.addFails {
						h.ph.FailNext(1, 400)
					}
				}
				if c.before {
					if st := h.request(r.ID).State; st != workflow.StateApproved {
						t.Fatalf("before the execution the grant is %s", st)
					}
					revoke()
				}
				h.drain()
				if revokeErr != nil {
					t.Fatalf("revoke while being added: %v", revokeErr)
				}
				mu.Lock()
				for _, o := range outcomes {
					if strings.HasSuffix(o, "/lost") {
						t.Errorf("a job lost its lease: %v", outcomes)
					}
				}
				mu.Unlock()
				if workflow.ErrorCode(againErr) != workflow.ECONFLICT || !strings.Contains(againErr.Error(), "as soon as PostHog has added it") {
					t.Fatalf("second revoke while being added: %v", againErr)
				}
				got := h.request(r.ID)
				if h.isMember(role, alice) {
					t.Fatalf("%s is %s and alice is still in %s", got.Ref(), got.State, role)
				}
				wantState, wantCreates, wantDeletes := workflow.StateRevoked, 1, 1
				switch {
				case c.addFails:
					wantState, wantDeletes = workflow.StateFailed, 0
				case c.before:
					wantState, wantCreates, wantDeletes = workflow.StateFailed, 0, 0
				}
				if got.State != wantState || len(h.deletes()) != wantDeletes || h.membershipCreates() != wantCreates {
					t.Fatalf("%s: state %s, %d creates, deletes %v; want %s, %d creates and %d deletes",
						got.Ref(), got.State, h.membershipCreates(), h.deletes(), wantState, wantCreates, wantDeletes)
				}
				// The requester is told once, what happened in the end: never
				// "you are now a member" of a grant already being revoked.
				told := map[workflow.EventType]int{}
				for _, typ := range []workflow.EventType{workflow.EventCompleted, workflow.EventRevoked, workflow.EventFailed} {
					told[typ] = len(h.eventsOf(r.ID, typ))
				}
				wantTold := map[workflow.EventType]int{workflow.EventRevoked: 1}
				if got.State == workflow.StateFailed {
					wantTold = map[workflow.EventType]int{workflow.EventFailed: 1}
				}
				for _, typ := range []workflow.EventType{workflow.EventCompleted, workflow.EventRevoked, workflow.EventFailed} {
					if told[typ] != wantTold[typ] {
						t.Errorf("%d %s notifications, want %d", told[typ], typ, wantTold[typ])
					}
				}
				if c.before && !strings.Contains(got.FailureReason, "revoked before it was carried out: not needed after all") {
					t.Errorf("failure reason %q", got.FailureReason)
				}
				if len(h.eventsOf(r.ID, workflow.EventExpiryWarning)) != 0 || !got.NextWarningAt.IsZero() {
					t.Fatal("a grant revoked while being added was to be warned of its end")
				}
				requested := h.auditOf(workflow.ActionRevokeRequested)
				if len(requested) != 1 || requested[0]["while_adding"] != true {
					t.Fatalf("revocation_requested entries %v", requested)
				}
				if c.addFails || c.before {
					return
				}
				if added := h.auditOf(workflow.ActionMembershipAdded); len(added) != 1 || added[0]["revocation_queued"] != true {
					t.Fatalf("membership_added entries %v", added)
				}
				acts := h.auditActions(r.ID)
				iReq, iAdd, iEnd := slices.Index(acts, workflow.ActionRevokeRequested), slices.Index(acts, workflow.ActionMembershipAdded), slices.Index(acts, workflow.ActionGrantRevoked)
				if iReq < 0 || iReq > iAdd || iAdd > iEnd {
					t.Fatalf("audit of %s: %v", got.Ref(), acts)
				}
			})
		})
	}
}
