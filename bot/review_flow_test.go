package bot_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/accessbot/accessbot/bot"
	"github.com/accessbot/accessbot/bot/slacktest"
	"github.com/accessbot/accessbot/bot/views"
	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/posthogdir"
	"github.com/accessbot/accessbot/workflow"
)

// reviewTestPolicy adds access reviews to Finance and break-glass to
// Data & Analytics.
const reviewTestPolicy = `
defaults:
  owners: [U0ADMIN]
roles:
  - role: Engineering
    owners: [U0BOB, U0CAROL]
    max_duration: 168h
  - role: Finance
    owners: [U0BOB, U0CAROL]
    review_deadline: 2d
    review_unanswered: remove
  - role: Data & Analytics
    owners: [U0BOB, U0CAROL]
    break_glass: true
    break_glass_max_duration: 1h
    break_glass_per_day: 2
`

func withReviewPolicy(w *workflow.Config, _ *bot.Config) {
	p, err := workflow.ParsePolicy("test-policy.yaml", []byte(reviewTestPolicy))
	if err != nil {
		panic(err)
	}
	w.Policy = p
}

// restart replaces the workflow service and the bot with new ones over the
// same database, fake Slack and fake PostHog: what a process restart sees.
func (h *harness) restart(clock workflow.Clock) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = h.bot.Wait(ctx)
	h.srv.Close()
	phc, err := posthog.NewClient(h.ph.URL(), h.ph.APIKey(), h.ph.OrganizationID(),
		posthog.WithRateLimit(0, 0), posthog.WithRetry(3, 5*time.Second), posthog.WithBackoff(5*time.Millisecond, 20*time.Millisecond))
	if err != nil {
		h.t.Fatal(err)
	}
	pol, err := workflow.ParsePolicy("test-policy.yaml", []byte(reviewTestPolicy))
	if err != nil {
		h.t.Fatal(err)
	}
	log := testLogger(h.t)
	h.svc, err = workflow.NewService(workflow.Config{Store: h.db, Directory: posthogdir.New(phc), Users: bot.NewUsers(h.api, time.Minute),
		Policy: pol, Admins: []string{admin}, Logger: log, Clock: clock, RetryBase: time.Millisecond, RetryMax: time.Millisecond})
	if err != nil {
		h.t.Fatal(err)
	}
	h.bot, err = bot.New(bot.Config{Workflow: h.svc, Slack: h.api, SigningSecret: secret, ApprovalsChannel: channel, Logger: log,
		Observe: h.events.add, WorkTimeout: 20 * time.Second})
	if err != nil {
		h.t.Fatal(err)
	}
	h.svc.SetNotifier(h.bot)
	r := mux.NewRouter()
	h.bot.Routes(r)
	h.srv = newServer(h.t, r)
}

// live is the newest message in channel, not deleted, containing text.
func (h *harness) live(ch, text string) slacktest.Message {
	h.t.Helper()
	msgs := h.slack.Messages(ch)
	for i := len(msgs) - 1; i >= 0; i-- {
		if !msgs[i].Deleted && strings.Contains(string(msgs[i].Blocks), text) {
			return msgs[i]
		}
	}
	h.t.Fatalf("no message in %s containing %q", ch, text)
	return slacktest.Message{}
}

func (h *harness) clickValue(user string, m slacktest.Message, actionID, value string) response {
	h.t.Helper()
	return h.interact(h.slack.ClickMessage(user, m, actionID, value))
}

func (h *harness) membershipID(role, user string) string {
	h.t.Helper()
	for _, m := range h.ph.Memberships(h.roles[role].ID) {
		if m.User.UUID == h.uuids[user] {
			return m.ID
		}
	}
	h.t.Fatalf("%s is not in %s", user, role)
	return ""
}

func (h *harness) auditActions(prefix string) []workflow.Action {
	h.t.Helper()
	var out []workflow.Action
	err := h.db.AuditEntries(context.Background(), workflow.AuditFilter{ActionPrefix: prefix}, func(e *workflow.AuditEntry) error {
		out = append(out, e.Action)
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func mustContain(t *testing.T, what string, m slacktest.Message, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(string(m.Blocks), p) {
			t.Errorf("%s lacks %q:\n%s", what, p, m.Blocks)
		}
	}
}

// An access review through Slack: started by an owner, each owner's DM
// lists every member with last login, 2FA and how they got access; Remove
// takes one out (told why), a later answer for them is refused, and Keep
// all remaining closes it with a summary, every copy updated.
func TestAccessReviewThroughSlack(t *testing.T) {
	h := newHarness(t, withReviewPolicy)
	fin := h.roles["Finance"].ID
	h.ph.AddMembership(fin, h.uuids[alice])
	h.ph.AddMembership(fin, h.uuids[mallory])
	h.ph.AddMembership(fin, h.uuids[admin])
	login := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	h.ph.SetLastLogin(h.uuids[alice], login)
	h.ph.SetTwoFactor(h.uuids[alice], true)

	h.command(mallory, "review Finance")
	h.settle()
	if !h.ephemeralContains(mallory, "Only the owners of Finance (or an admin) can start a review of it.") {
		t.Fatalf("mallory was told %v", h.ephemeralTo(mallory))
	}
	h.command(bob, "review finance")
	h.settle()
	if !h.ephemeralContains(bob, "Started access review #1 of *Finance*") {
		t.Fatalf("bob was told %v", h.ephemeralTo(bob))
	}
	bobCopy := h.live(slacktest.DMChannel(bob), "Access review #1: Finance")
	carolCopy := h.live(slacktest.DMChannel(carol), "Access review #1: Finance")
	for _, m := range []slacktest.Message{bobCopy, carolCopy} {
		mustContain(t, "review DM", m, "alice@example.com", "mallory@example.com", "admin@example.com",
			fmt.Sprintf("Last login: <!date^%d^", login.Unix()), "2FA: on", "2FA: :warning: off", "Access: outside accessbot",
			views.ActionReviewKeep, views.ActionReviewRemove, views.ActionReviewKeepRest, "members nobody answers are then *removed*")
	}

	// bob removes mallory: she leaves Finance and hears why; both copies say so.
	malloryValue := "1:" + h.membershipID("Finance", mallory)
	h.clickValue(bob, bobCopy, views.ActionReviewRemove, malloryValue)
	h.settle()
	if h.ph.HasMember(fin, h.uuids[mallory]) {
		t.Fatal("mallory is still in Finance")
	}
	told := h.lastDM(mallory, "removed you from *Finance*")
	mustContain(t, "mallory's DM", told, "access review #1: removed by an owner", "\u003c@U0BOB\u003e")
	for _, who := range []string{bob, carol} {
		m := h.live(slacktest.DMChannel(who), "Access review #1: Finance")
		mustContain(t, who+"'s copy", m, ":no_entry: *Removed* by \u003c@U0BOB\u003e")
		if m.Updates == 0 {
			t.Errorf("%s's copy was not updated", who)
		}
	}
	// carol, on the copy she had before, answers for mallory too late.
	h.clickValue(carol, carolCopy, views.ActionReviewKeep, malloryValue)
	h.settle()
	if !h.ephemeralContains(carol, "was already answered in review #1: remove.") {
		t.Fatalf("carol was told %v", h.ephemeralTo(carol))
	}

	// Keep all remaining closes the review.
	h.click(carol, h.live(slacktest.DMChannel(carol), "Access review #1: Finance"), views.ActionReviewKeepRest)
	h.settle()
	if !h.ephemeralContains(carol, "Kept the 2 members nobody had answered in access review #1.") {
		t.Fatalf("carol was told %v", h.ephemeralTo(carol))
	}
	for _, who := range []string{bob, carol} {
		m := h.live(slacktest.DMChannel(who), "Access review #1: Finance")
		mustContain(t, who+"'s closed copy", m, ":lock: Closed", "2 kept, 1 removed, 0 unanswered")
		if strings.Contains(string(m.Blocks), views.ActionReviewKeep) {
			t.Errorf("%s's closed copy still has buttons", who)
		}
		h.lastDM(who, "Access review #1 of *Finance* is closed: 2 kept, 1 removed, 0 unanswered.")
	}
	if !h.ph.HasMember(fin, h.uuids[alice]) || !h.ph.HasMember(fin, h.uuids[admin]) {
		t.Fatal("a kept member lost Finance")
	}
	got := h.auditActions("review_")
	want := []workflow.Action{workflow.ActionReviewStarted, workflow.ActionReviewDecided, workflow.ActionReviewDecided,
		workflow.ActionReviewDecided, workflow.ActionReviewClosed}
	if strings.Join(actionStrings(got), ",") != strings.Join(actionStrings(want), ",") {
		t.Fatalf("review audit %v, want %v", got, want)
	}
}

func actionStrings(as []workflow.Action) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = string(a)
	}
	return out
}

// A review carries on across a restart, and at the deadline the member
// nobody answered is removed (review_unanswered: remove).
func TestAccessReviewDeadlineAcrossRestartThroughSlack(t *testing.T) {
	clock := &testClock{}
	h := newHarness(t, withClock(clock), withReviewPolicy)
	fin := h.roles["Finance"].ID
	h.ph.AddMembership(fin, h.uuids[alice])
	h.ph.AddMembership(fin, h.uuids[mallory])
	h.command(carol, "review Finance")
	h.settle()
	h.clickValue(bob, h.live(slacktest.DMChannel(bob), "Access review #1: Finance"), views.ActionReviewKeep, "1:"+h.membershipID("Finance", alice))
	h.settle()

	h.restart(clock)
	clock.Advance(24*time.Hour + time.Minute)
	h.tick()
	h.lastDM(bob, "*Reminder:* access review #1 of *Finance* still has 1 member to answer")
	clock.Advance(24 * time.Hour)
	h.tick()
	if h.ph.HasMember(fin, h.uuids[mallory]) || !h.ph.HasMember(fin, h.uuids[alice]) {
		t.Fatal("the deadline did not remove the unanswered member only")
	}
	h.lastDM(mallory, "removed you from *Finance*")
	h.lastDM(carol, "is closed: 1 kept, 1 removed, 1 unanswered.")
	mustContain(t, "bob's copy", h.live(slacktest.DMChannel(bob), "Access review #1: Finance"),
		"*Removed* at the deadline: nobody answered", ":white_check_mark: *Kept* by \u003c@U0BOB\u003e")
}

// Break-glass through Slack: refused on roles without the flag; granted at
// once without approval; every owner, the admins and the approvals channel
// alerted with Acknowledge and Revoke now; the user can't answer their own;
// across a restart Revoke now ends it and every copy shows it; the modal's
// checkbox breaks glass too; the daily limit refuses a third use; the open
// review is reminded daily.
func TestBreakGlassThroughSlack(t *testing.T) {
	clock := &testClock{}
	h := newHarness(t, withClock(clock), withReviewPolicy)
	data := h.roles["Data & Analytics"].ID

	h.command(alice, "breakglass Engineering prod is down")
	h.settle()
	if !h.ephemeralContains(alice, "Engineering does not allow break-glass access.") {
		t.Fatalf("alice was told %v", h.ephemeralTo(alice))
	}
	h.command(alice, "breakglass Data &amp; Analytics dashboards <down> for customers")
	h.settle()
	if !h.ephemeralContains(alice, "Break-glass: you get *Data &amp; Analytics* now, without approval, for 1 hour (#1)") {
		t.Fatalf("alice was told %v", h.ephemeralTo(alice))
	}
	if !h.ph.HasMember(data, h.uuids[alice]) {
		t.Fatal("break-glass did not add alice")
	}
	g := h.get(1)
	if len(g.Approvals) != 0 || !g.RevokeAt.Equal(g.CompletedAt.Add(time.Hour)) {
		t.Fatalf("grant %+v", g)
	}
	h.lastDM(alice, "Done: you are now a member of *Data &amp; Analytics*")
	for _, ch := range []string{slacktest.DMChannel(bob), slacktest.DMChannel(carol), slacktest.DMChannel(admin), channel} {
		m := h.live(ch, "Break-glass:")
		mustContain(t, "alert in "+ch, m, "\u003c@U0ALICE\u003e took *Data &amp; Analytics* without approval (#1)",
			"dashboards &lt;down&gt; for customers", views.ActionBreakGlassAck, views.ActionBreakGlassStop, "until \u003c!date^")
	}
	h.click(alice, h.live(channel, "Break-glass:"), views.ActionBreakGlassAck)
	h.settle()
	if !h.ephemeralContains(alice, "You can't review your own break-glass use") {
		t.Fatalf("alice was told %v", h.ephemeralTo(alice))
	}

	h.restart(clock)
	h.click(bob, h.live(slacktest.DMChannel(bob), "Break-glass:"), views.ActionBreakGlassStop)
	h.settle()
	if h.ph.HasMember(data, h.uuids[alice]) || h.get(1).State != workflow.StateRevoked {
		t.Fatal("Revoke now did not end the grant")
	}
	for _, ch := range []string{slacktest.DMChannel(bob), slacktest.DMChannel(carol), slacktest.DMChannel(admin), channel} {
		m := h.live(ch, "Break-glass:")
		mustContain(t, "answered alert in "+ch, m, ":no_entry: *Revoked* by \u003c@U0BOB\u003e")
		if strings.Contains(string(m.Blocks), views.ActionBreakGlassAck) {
			t.Errorf("answered alert in %s still has buttons", ch)
		}
	}
	h.lastDM(alice, "Your access to *Data &amp; Analytics* ended")

	// The request modal offers the checkbox on this role, and ticking it
	// breaks glass.
	v := h.openModal(alice, "request Data &amp; Analytics")
	if !strings.Contains(string(v.JSON), views.ActionBreakGlassCheck) {
		t.Fatalf("modal without the break-glass checkbox: %s", v.JSON)
	}
	if eng := h.openModal(alice, "request Engineering"); strings.Contains(string(eng.JSON), views.ActionBreakGlassCheck) {
		t.Fatal("Engineering's modal offers break-glass")
	}
	res := h.submit(alice, v, map[string]string{views.BlockRole: data, views.BlockReason: "still broken", views.BlockDuration: "1h",
		views.BlockBreakGlass: views.BreakGlassValue})
	if res.status != http.StatusOK || res.json(t)["response_action"] != "clear" {
		t.Fatalf("submit: %d %s", res.status, res.body)
	}
	h.settle()
	if !h.ph.HasMember(data, h.uuids[alice]) {
		t.Fatal("the checkbox did not break glass")
	}
	h.lastDM(alice, "Break-glass: you get *Data &amp; Analytics* now")

	h.command(alice, "done 2")
	h.settle()
	h.command(alice, "breakglass Data &amp; Analytics third time")
	h.settle()
	if !h.ephemeralContains(alice, "You have used break-glass 2 time(s) in the last 24 hours") {
		t.Fatalf("alice was told %v", h.ephemeralTo(alice))
	}

	// A day on, the unanswered second use is reminded to everyone again;
	// Slack fails the first DM for a moment, and the retry reminds only
	// that one.
	clock.Advance(24*time.Hour + time.Minute)
	posts, deletes := len(h.slack.CallsTo("chat.postMessage")), len(h.slack.CallsTo("chat.delete"))
	h.slack.FailNext("chat.postMessage", 1, "internal_error")
	h.tick()
	reminded := map[string]int{}
	for _, c := range h.slack.CallsTo("chat.postMessage")[posts:] {
		if strings.Contains(c.Params["blocks"], "*Reminder:*") {
			reminded[c.Params["channel"]]++
		}
	}
	for _, ch := range []string{slacktest.DMChannel(bob), slacktest.DMChannel(carol), slacktest.DMChannel(admin), channel} {
		m := h.live(ch, "Break-glass:")
		mustContain(t, "reminder in "+ch, m, "*Reminder:*", "(#2)", views.ActionBreakGlassAck)
		want := 1
		if ch == slacktest.DMChannel(bob) {
			want = 2 // the first failed
		}
		if reminded[ch] != want {
			t.Errorf("reminder posted %d times in %s, want %d", reminded[ch], ch, want)
		}
	}
	if n := len(h.slack.CallsTo("chat.delete")) - deletes; n != 4 {
		t.Errorf("%d replaced alerts deleted, want 4", n)
	}
	got := h.auditActions("break_glass_")
	if strings.Join(actionStrings(got), ",") != "break_glass_used,break_glass_revoked,break_glass_used" {
		t.Fatalf("break-glass audit %v", got)
	}
}

func newServer(t testing.TB, handler http.Handler) *httptest.Server {
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv
}

// A large role's review comes as several messages per owner; an answer
// updates only the page that shows the member, on every owner's copy.
func TestLargeAccessReviewIsPagedThroughSlack(t *testing.T) {
	h := newHarness(t, withReviewPolicy)
	fin := h.roles["Finance"].ID
	for i := 0; i < views.ReviewPageSize+3; i++ {
		u := h.ph.AddUser(fmt.Sprintf("analyst%02d@example.com", i), fmt.Sprintf("Analyst %02d", i), "")
		h.ph.AddMembership(fin, u.UUID)
	}
	h.command(bob, "review Finance")
	h.settle()
	pages := func(user string) []slacktest.Message {
		var out []slacktest.Message
		for _, m := range h.slack.Messages(slacktest.DMChannel(user)) {
			if strings.Contains(string(m.Blocks), "Access review #1: Finance (") {
				out = append(out, m)
			}
		}
		return out
	}
	for _, who := range []string{bob, carol} {
		if got := pages(who); len(got) != 2 || !strings.Contains(string(got[1].Blocks), "Access review #1: Finance (2/2)") {
			t.Fatalf("%s got %d review messages", who, len(got))
		}
	}
	last := h.ph.Memberships(fin)[views.ReviewPageSize+2]
	h.clickValue(carol, pages(carol)[1], views.ActionReviewKeep, "1:"+last.ID)
	h.settle()
	for _, who := range []string{bob, carol} {
		p := pages(who)
		if p[0].Updates != 0 || p[1].Updates != 1 || !strings.Contains(string(p[1].Blocks), "*Kept* by \u003c@U0CAROL\u003e") {
			t.Errorf("%s's pages after an answer on page 2: updates %d, %d", who, p[0].Updates, p[1].Updates)
		}
	}
	h.click(bob, pages(bob)[0], views.ActionReviewKeepRest)
	h.settle()
	for _, who := range []string{bob, carol} {
		for i, p := range pages(who) {
			if !strings.Contains(string(p.Blocks), ":lock: Closed") || strings.Contains(string(p.Blocks), views.ActionReviewKeep) {
				t.Errorf("%s's page %d after Keep all remaining: %s", who, i+1, p.Blocks)
			}
		}
	}
}
