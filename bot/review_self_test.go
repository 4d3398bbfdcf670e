package bot_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/bot/slacktest"
	"github.com/accessbot/accessbot/bot/views"
	"github.com/accessbot/accessbot/workflow"
)

// Nobody answers for their own access, through Slack: bob, an owner of
// Finance and a member of it, is refused Keep on his own line, and Keep
// all remaining keeps the others but leaves his line to carol. On Viewer,
// where the admin alone could answer, the admin's own line shows no
// buttons but the deadline's rule. bob, having broken glass on a role he
// owns, cannot Acknowledge it but may Revoke now.
func TestNobodyAnswersForTheirOwnAccessThroughSlack(t *testing.T) {
	h := newHarness(t, withReviewPolicy)
	fin := h.roles["Finance"].ID
	h.ph.AddMembership(fin, h.uuids[bob])
	h.ph.AddMembership(fin, h.uuids[alice])
	h.command(bob, "review Finance")
	h.settle()
	bobCopy := h.live(slacktest.DMChannel(bob), "Access review #1: Finance")
	bobValue := "1:" + h.membershipID("Finance", bob)

	h.clickValue(bob, bobCopy, views.ActionReviewKeep, bobValue)
	h.settle()
	if !h.ephemeralContains(bob, "You can't answer for your own access to Finance; another owner or an admin has to. If nobody does by the deadline, it is removed.") {
		t.Fatalf("bob was told %v", h.ephemeralTo(bob))
	}
	h.click(bob, bobCopy, views.ActionReviewKeepRest)
	h.settle()
	if !h.ephemeralContains(bob, "Kept the 1 member nobody had answered in access review #1. Your own membership is left to another owner or an admin") {
		t.Fatalf("bob was told %v", h.ephemeralTo(bob))
	}
	carolCopy := h.live(slacktest.DMChannel(carol), "Access review #1: Finance")
	mustContain(t, "carol's copy", carolCopy, ":white_check_mark: *Kept* by \u003c@U0BOB\u003e", views.ActionReviewRemove)
	if !h.ph.HasMember(fin, h.uuids[bob]) {
		t.Fatal("bob's own line was answered")
	}
	h.clickValue(carol, carolCopy, views.ActionReviewRemove, bobValue)
	h.settle()
	if h.ph.HasMember(fin, h.uuids[bob]) {
		t.Fatal("carol's Remove of bob did not take him out")
	}
	h.lastDM(carol, "Access review #1 of *Finance* is closed: 1 kept, 1 removed, 0 unanswered.")

	// Viewer has no owners of its own: only the admin could answer.
	viewer := h.roles["Viewer"].ID
	h.ph.AddMembership(viewer, h.uuids[admin])
	h.ph.AddMembership(viewer, h.uuids[alice])
	h.command(admin, "review Viewer")
	h.settle()
	adminCopy := h.live(slacktest.DMChannel(admin), "Access review #2: Viewer")
	mustContain(t, "admin's copy", adminCopy,
		":hourglass: Left to the deadline: the only owner or admin who could answer is this member, and nobody decides on their own access. It is then kept.")
	if n := strings.Count(string(adminCopy.Blocks), `"action_id":"`+views.ActionReviewKeep+`"`); n != 1 {
		t.Fatalf("admin's copy has %d Keep buttons, want 1 (alice's):\n%s", n, adminCopy.Blocks)
	}
	h.click(admin, adminCopy, views.ActionReviewKeepRest)
	h.settle()
	if !h.ephemeralContains(admin, "Kept the 1 member nobody had answered in access review #2. Your own membership is left to another owner or an admin") {
		t.Fatalf("admin was told %v", h.ephemeralTo(admin))
	}
	adminCopy = h.live(slacktest.DMChannel(admin), "Access review #2: Viewer")
	mustContain(t, "admin's copy after Keep all remaining", adminCopy, ":white_check_mark: *Kept* by \u003c@U0ADMIN\u003e", ":hourglass: Left to the deadline")
	if strings.Contains(string(adminCopy.Blocks), views.ActionReviewKeep) {
		t.Fatalf("admin's copy still offers buttons only the admin could click:\n%s", adminCopy.Blocks)
	}

	// Break-glass by an owner of the role.
	data := h.roles["Data & Analytics"].ID
	h.command(bob, "breakglass Data &amp; Analytics pipeline is stuck")
	h.settle()
	if !h.ph.HasMember(data, h.uuids[bob]) {
		t.Fatal("break-glass did not add bob")
	}
	h.click(bob, h.live(channel, "Break-glass:"), views.ActionBreakGlassAck)
	h.settle()
	if !h.ephemeralContains(bob, "You can't review your own break-glass use") {
		t.Fatalf("bob was told %v", h.ephemeralTo(bob))
	}
	h.click(bob, h.live(channel, "Break-glass:"), views.ActionBreakGlassStop)
	h.settle()
	if h.ph.HasMember(data, h.uuids[bob]) {
		t.Fatal("bob's Revoke now did not end his access")
	}
	for _, ch := range []string{slacktest.DMChannel(carol), slacktest.DMChannel(admin), channel} {
		mustContain(t, "answered alert in "+ch, h.live(ch, "Break-glass:"), ":no_entry: *Revoked* by \u003c@U0BOB\u003e")
	}
	got := h.auditActions("break_glass_")
	if strings.Join(actionStrings(got), ",") != "break_glass_used,break_glass_revoked" {
		t.Fatalf("break-glass audit %v", got)
	}
}

// Keep, Remove, Keep all remaining, Acknowledge and Revoke now are in the
// database when Slack gets the 200. users.info is slow here and each
// clicker's email is not cached yet (a fresh process): answering after the
// ack would store the answer later than the response.
func TestReviewAndBreakGlassAnswersAreStoredBeforeTheAck(t *testing.T) {
	h := newHarness(t, withReviewPolicy)
	ctx := context.Background()
	fin := h.roles["Finance"].ID
	erin := h.ph.AddUser("erin@example.com", "Erin", "Outside") // in PostHog only
	for _, uuid := range []string{h.uuids[alice], h.uuids[mallory], erin.UUID} {
		h.ph.AddMembership(fin, uuid)
	}
	h.command(bob, "review Finance")
	h.settle()
	h.command(alice, "breakglass Data &amp; Analytics dashboards are down")
	h.settle()
	h.command(mallory, "breakglass Data &amp; Analytics me too")
	h.settle()
	fresh := func() {
		h.restart(nil)
		h.slack.SetLatency("users.info", 300*time.Millisecond)
	}
	clicked := func(res response) {
		t.Helper()
		if res.status != http.StatusOK {
			t.Fatalf("click: %d %s", res.status, res.body)
		}
	}
	fresh()

	// Remove (bob) and Keep (carol).
	clicked(h.clickValue(bob, h.live(slacktest.DMChannel(bob), "Access review #1"), views.ActionReviewRemove, "1:"+h.membershipID("Finance", mallory)))
	clicked(h.clickValue(carol, h.live(slacktest.DMChannel(carol), "Access review #1"), views.ActionReviewKeep, "1:"+h.membershipID("Finance", alice)))
	_, items, err := h.svc.Reviews().Get(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if s := workflow.Summarize(items); s.Removed != 1 || s.Kept != 1 {
		t.Fatalf("Remove and Keep not stored at the ack: %+v", s)
	}
	// Keep all remaining (the admin) closes the review.
	clicked(h.click(admin, h.live(slacktest.DMChannel(bob), "Access review #1"), views.ActionReviewKeepRest))
	if rev, _, _ := h.svc.Reviews().Get(ctx, 1); rev.State != workflow.ReviewClosed {
		t.Fatalf("Keep all remaining not stored at the ack: review %s", rev.State)
	}
	h.settle()

	// Acknowledge (carol) alice's use; Revoke now (bob) mallory's, from a
	// fresh process again so bob's email is not cached.
	fresh()
	clicked(h.click(carol, h.live(slacktest.DMChannel(carol), "without approval (#1)"), views.ActionBreakGlassAck))
	if rev, _, _ := h.svc.BreakGlass().Review(ctx, 2); rev.Outcome != workflow.BreakGlassAcknowledged {
		t.Fatalf("Acknowledge not stored at the ack: %+v", rev)
	}
	h.settle()
	fresh()
	clicked(h.click(bob, h.live(slacktest.DMChannel(bob), "without approval (#2)"), views.ActionBreakGlassStop))
	rev, g, err := h.svc.BreakGlass().Review(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if rev.Outcome != workflow.BreakGlassRevoked || (!g.RevokeQueued && g.State != workflow.StateRevoked) {
		t.Fatalf("Revoke now not stored at the ack: review %+v, grant %s", rev, g.State)
	}
	h.settle()
	if h.ph.HasMember(h.roles["Data & Analytics"].ID, h.uuids[mallory]) {
		t.Fatal("Revoke now did not end mallory's access")
	}
}
