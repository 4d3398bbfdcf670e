package bot_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/bot/slacktest"
	"github.com/accessbot/accessbot/bot/views"
	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/workflow"
)

// TestRequestApproveFlow drives the whole flow as Slack would: the slash
// command opens the modal, the submission stores the request and DMs the
// owners, an owner's click approves it, PostHog gets the membership and
// every copy of the approver message is updated.
func TestRequestApproveFlow(t *testing.T) {
	h := newHarness(t)

	v := h.openModal(alice, "")
	call := h.slack.CallsTo("views.open")[0]
	var modal map[string]any
	if err := call.Decode("view", &modal); err != nil {
		t.Fatal(err)
	}
	js := string(v.JSON)
	for _, want := range []string{`"static_select"`, `"Engineering"`, `"Data & Analytics"`, `"duration_select"`, `"reason_input"`} {
		if !strings.Contains(js, want) {
			t.Errorf("modal lacks %s:\n%s", want, js)
		}
	}
	if v.CallbackID != views.CallbackRequest {
		t.Errorf("callback %q", v.CallbackID)
	}

	res := h.submit(alice, v, map[string]string{views.BlockRole: h.roles["Engineering"].ID,
		views.BlockReason: "Debug the <billing> funnel", views.BlockDuration: "8h"})
	if res.status != http.StatusOK || res.json(t)["response_action"] != "clear" {
		t.Fatalf("submit: %d %s", res.status, res.body)
	}
	h.settle()
	reqs, _ := h.svc.ListMine(context.Background(), alice, 5)
	if len(reqs) != 1 {
		t.Fatalf("%d requests stored", len(reqs))
	}
	r := reqs[0]
	if r.State != workflow.StatePending || r.RoleName != "Engineering" || r.Duration != 8*time.Hour {
		t.Fatalf("stored %+v", r)
	}

	// Owners are DMed with buttons (in their D… channels), the channel gets
	// a copy, alice gets her own copy; all four are stored.
	refs, _ := h.svc.Messages(context.Background(), r.ID)
	if len(refs) != 4 {
		t.Fatalf("%d message refs, want 4: %+v", len(refs), refs)
	}
	for _, ch := range []string{slacktest.DMChannel(bob), slacktest.DMChannel(carol), channel} {
		m := h.approverMessage(r, ch)
		if !strings.Contains(string(m.Blocks), views.ActionApprove) || !strings.Contains(string(m.Blocks), views.ActionDeny) {
			t.Errorf("%s: no buttons: %s", ch, m.Blocks)
		}
		if strings.Contains(string(m.Blocks), "<billing>") {
			t.Errorf("%s: reason not escaped", ch)
		}
	}
	mine := h.approverMessage(r, slacktest.DMChannel(alice))
	if strings.Contains(string(mine.Blocks), views.ActionApprove) {
		t.Error("the requester's copy has Approve buttons")
	}

	// Bob approves from his DM.
	res = h.click(bob, h.approverMessage(r, slacktest.DMChannel(bob)), views.ActionApprove)
	if res.status != http.StatusOK || len(strings.TrimSpace(string(res.body))) != 0 {
		t.Fatalf("approve ack: %d %q", res.status, res.body)
	}
	if h.events.last() != "block_actions/ok" {
		t.Errorf("observed %q", h.events.last())
	}
	h.settle()
	if r = h.get(r.ID); r.State != workflow.StateCompleted {
		t.Fatalf("state %s", r.State)
	}
	if !h.ph.HasMember(h.roles["Engineering"].ID, h.uuids[alice]) {
		t.Fatal("alice is not a member in PostHog")
	}
	if n := h.membershipCreates(); n != 1 {
		t.Errorf("%d membership creates", n)
	}
	// Every stored copy was updated, and none has buttons any more.
	updated := map[string]bool{}
	for _, c := range h.slack.CallsTo("chat.update") {
		updated[c.Param("channel")+"/"+c.Param("ts")] = true
	}
	for _, ref := range refs {
		if !updated[ref.Channel+"/"+ref.TS] {
			t.Errorf("copy in %s not updated", ref.Channel)
		}
		m, _ := h.slack.Message(ref.Channel, ref.TS)
		if strings.Contains(string(m.Blocks), views.ActionApprove) {
			t.Errorf("copy in %s still has buttons: %s", ref.Channel, m.Blocks)
		}
		if ref.Channel != slacktest.DMChannel(alice) && !strings.Contains(string(m.Blocks), "Approved* by <@U0BOB>") {
			t.Errorf("copy in %s does not say who approved: %s", ref.Channel, m.Blocks)
		}
	}
	// Alice heard that bob approved and that it is done.
	var dms []string
	for _, m := range h.slack.Messages(slacktest.DMChannel(alice)) {
		dms = append(dms, m.Text)
	}
	all := strings.Join(dms, "\n")
	if !strings.Contains(all, "<@U0BOB> approved your request") || !strings.Contains(all, "you are now a member of Engineering") {
		t.Errorf("alice's DMs:\n%s", all)
	}
}

func TestUnknownRoleIsAnErrorOnTheRoleBlock(t *testing.T) {
	h := newHarness(t)
	v := h.openModal(alice, "request")
	res := h.submit(alice, v, map[string]string{views.BlockRole: "No Such Role", views.BlockReason: "please", views.BlockDuration: "1h"})
	m := res.json(t)
	errs, _ := m["errors"].(map[string]any)
	if m["response_action"] != "errors" || !strings.Contains(errs["role"].(string), "no PostHog role") {
		t.Fatalf("answer %s", res.body)
	}
	if reqs, _ := h.svc.ListMine(context.Background(), alice, 5); len(reqs) != 0 {
		t.Errorf("%d requests stored", len(reqs))
	}
}

func TestSubmissionErrorsLandOnTheirBlocks(t *testing.T) {
	h := newHarness(t)
	h.ph.AddMembership(h.roles["Viewer"].ID, h.uuids[alice])
	if err := h.svc.Reconcile(context.Background()); err != nil { // the membership mirror
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		values map[string]string
		block  string
		says   string
	}{
		{"empty reason", map[string]string{views.BlockRole: h.roles["Engineering"].ID, views.BlockReason: "   ", views.BlockDuration: "1h"}, "reason", "reason"},
		{"over the cap", map[string]string{views.BlockRole: h.roles["Engineering"].ID, views.BlockReason: "x", views.BlockDuration: "permanent"}, "duration", "at most"},
		{"already a member", map[string]string{views.BlockRole: h.roles["Viewer"].ID, views.BlockReason: "x", views.BlockDuration: "1h"}, "role", "already a member"},
		{"bad duration value", map[string]string{views.BlockRole: h.roles["Engineering"].ID, views.BlockReason: "x", views.BlockDuration: "soon"}, "duration", "durations"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := h.openModal(alice, "request")
			res := h.submit(alice, v, c.values)
			m := res.json(t)
			errs, _ := m["errors"].(map[string]any)
			msg, _ := errs[c.block].(string)
			if m["response_action"] != "errors" || !strings.Contains(msg, c.says) {
				t.Fatalf("answer %s", res.body)
			}
		})
	}
	// A second request for the same role while one is open.
	h.request(alice, "Engineering", "first", "1h")
	v := h.openModal(alice, "request Engineering")
	res := h.submit(alice, v, map[string]string{views.BlockReason: "again", views.BlockDuration: "1h"})
	if errs, _ := res.json(t)["errors"].(map[string]any); errs == nil || !strings.Contains(errs["role"].(string), "#1 to add you to Engineering is still waiting for a decision") {
		t.Fatalf("duplicate: %s", res.body)
	}
}

func TestSlowPostHogAnswersInTimeAndStoresNothing(t *testing.T) {
	h := newHarness(t, withBudget(400*time.Millisecond))
	v := h.openModal(alice, "request") // warms the role cache
	h.ph.SetLatency(5 * time.Second)
	start := time.Now()
	res := h.submit(alice, v, map[string]string{views.BlockRole: h.roles["Engineering"].ID, views.BlockReason: "x", views.BlockDuration: "1h"})
	took := time.Since(start)
	h.ph.SetLatency(0)
	errs, _ := res.json(t)["errors"].(map[string]any)
	if msg, _ := errs["role"].(string); !strings.Contains(msg, "PostHog is slow") {
		t.Fatalf("answer %s", res.body)
	}
	// Waiting for PostHog would take 5s; the answer comes at the budget.
	if took > 3*time.Second {
		t.Errorf("answered after %v: it waited for PostHog", took)
	}
	h.settle()
	if reqs, _ := h.svc.ListMine(context.Background(), alice, 5); len(reqs) != 0 {
		t.Errorf("%d requests stored", len(reqs))
	}
}

func TestDenyAsksForAReason(t *testing.T) {
	h := newHarness(t)
	r := h.request(alice, "Engineering", "need it", "1h")
	res := h.click(carol, h.approverMessage(r, channel), views.ActionDeny)
	if res.status != http.StatusOK {
		t.Fatalf("deny click: %d", res.status)
	}
	h.settle()
	v, ok := h.slack.LastModal(carol)
	if !ok || v.CallbackID != views.CallbackDeny {
		t.Fatalf("no deny modal: %+v", v)
	}
	// A blank reason is refused on the reason block.
	res = h.submit(carol, v, map[string]string{views.BlockDenyReason: "  "})
	if errs, _ := res.json(t)["errors"].(map[string]any); errs["reason"] == nil {
		t.Fatalf("blank reason: %s", res.body)
	}
	res = h.submit(carol, v, map[string]string{views.BlockDenyReason: "Use Viewer & ask again"})
	if res.json(t)["response_action"] != "clear" {
		t.Fatalf("deny: %s", res.body)
	}
	h.settle()
	r = h.get(r.ID)
	if r.State != workflow.StateDenied || r.DecidedBy != carol || r.DecisionReason != "Use Viewer & ask again" {
		t.Fatalf("request %+v", r)
	}
	for _, ch := range []string{slacktest.DMChannel(bob), slacktest.DMChannel(carol), channel} {
		m := h.approverMessage(r, ch)
		if strings.Contains(string(m.Blocks), views.ActionApprove) || !strings.Contains(string(m.Blocks), "Denied* by <@U0CAROL>") {
			t.Errorf("%s: %s", ch, m.Blocks)
		}
	}
	var told bool
	for _, m := range h.slack.Messages(slacktest.DMChannel(alice)) {
		if strings.Contains(m.Text, "<@U0CAROL> denied your request") && strings.Contains(string(m.Blocks), "Use Viewer &amp; ask again") {
			told = true
		}
	}
	if !told {
		t.Error("alice was not told why")
	}
	if h.membershipCreates() != 0 {
		t.Error("PostHog was changed")
	}
}

func TestRefusedClicksChangeNothing(t *testing.T) {
	cases := []struct {
		name      string
		requester string
		clicker   string
		action    string
		says      string
	}{
		{"non-owner approves", alice, mallory, views.ActionApprove, "Only the owners of Engineering"},
		{"non-owner denies", alice, mallory, views.ActionDeny, "Only the owners of Engineering"},
		{"self-approval", carol, carol, views.ActionApprove, "can't decide on your own request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			r := h.request(c.requester, "Engineering", "please", "1h")
			updates := len(h.slack.CallsTo("chat.update"))
			opened := len(h.slack.CallsTo("views.open"))
			res := h.click(c.clicker, h.approverMessage(r, channel), c.action)
			if res.status != http.StatusOK {
				t.Fatalf("ack %d", res.status)
			}
			h.settle()
			said := strings.Join(h.ephemeralTo(c.clicker), "\n")
			if !strings.Contains(said, c.says) {
				t.Errorf("clicker was told %q", said)
			}
			if got := h.get(r.ID); got.State != workflow.StatePending || len(got.Approvals) != 0 {
				t.Errorf("request changed: %+v", got)
			}
			if n := len(h.slack.CallsTo("chat.update")); n != updates {
				t.Errorf("%d messages updated", n-updates)
			}
			if n := len(h.slack.CallsTo("views.open")); n != opened {
				t.Error("a modal was opened")
			}
			if h.membershipCreates() != 0 {
				t.Error("PostHog was changed")
			}
		})
	}
}

func TestDoubleClicksMakeOneMembership(t *testing.T) {
	h := newHarness(t)
	r := h.request(alice, "Engineering", "please", "1h")
	bobMsg, carolMsg := h.approverMessage(r, slacktest.DMChannel(bob)), h.approverMessage(r, slacktest.DMChannel(carol))
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			who, m := bob, bobMsg
			if i%2 == 1 {
				who, m = carol, carolMsg
			}
			payload, err := h.slack.ClickMessage(who, m, views.ActionApprove, "")
			if err != nil {
				t.Error(err)
				return
			}
			req := slacktest.SignedRequest(secret, h.srv.URL+"/slack/interactions", slacktest.InteractionForm(payload), time.Now())
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Errorf("ack %d", res.StatusCode)
			}
		}()
	}
	wg.Wait()
	h.settle()
	if got := h.get(r.ID); got.State != workflow.StateCompleted {
		t.Fatalf("state %s", got.State)
	}
	if n := h.membershipCreates(); n != 1 {
		t.Errorf("%d membership creates, want 1", n)
	}
	// The losers were told it was already approved.
	said := strings.Join(append(h.ephemeralTo(bob), h.ephemeralTo(carol)...), "\n")
	if !strings.Contains(said, "already approved") {
		t.Errorf("losers were told %q", said)
	}
}

func TestTwoApprovalsNeeded(t *testing.T) {
	h := newHarness(t)
	r := h.request(alice, "Finance", "quarter close", "1d")
	h.click(bob, h.approverMessage(r, slacktest.DMChannel(bob)), views.ActionApprove)
	h.settle()
	r = h.get(r.ID)
	if r.State != workflow.StatePending || len(r.Approvals) != 1 {
		t.Fatalf("after one approval: %+v", r)
	}
	m := h.approverMessage(r, channel)
	if !strings.Contains(string(m.Blocks), "1 of 2 (<@U0BOB>)") || !strings.Contains(string(m.Blocks), views.ActionApprove) {
		t.Errorf("copy after one approval: %s", m.Blocks)
	}
	// Bob again: refused, nothing changes.
	h.click(bob, h.approverMessage(r, channel), views.ActionApprove)
	h.settle()
	if !strings.Contains(strings.Join(h.ephemeralTo(bob), ""), "already approved") {
		t.Errorf("bob was told %v", h.ephemeralTo(bob))
	}
	h.click(carol, h.approverMessage(r, slacktest.DMChannel(carol)), views.ActionApprove)
	h.settle()
	if r = h.get(r.ID); r.State != workflow.StateCompleted {
		t.Fatalf("state %s", r.State)
	}
}

func TestNotifyRetryDoesNotDMTwice(t *testing.T) {
	h := newHarness(t)
	// The first DM to an owner is rate limited: the notification is retried
	// after Slack's Retry-After (a second, its least), and nobody gets two
	// copies.
	h.slack.RateLimitNext("chat.postMessage", 2, 0)
	r := h.request(alice, "Engineering", "please", "1h")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if refs, _ := h.svc.Messages(context.Background(), r.ID); len(refs) == 4 {
			break
		}
		time.Sleep(100 * time.Millisecond)
		h.settle()
	}
	for _, ch := range []string{slacktest.DMChannel(bob), slacktest.DMChannel(carol), channel, slacktest.DMChannel(alice)} {
		if n := len(h.slack.Messages(ch)); n != 1 {
			t.Errorf("%s has %d messages", ch, n)
		}
	}
	refs, _ := h.svc.Messages(context.Background(), r.ID)
	if len(refs) != 4 {
		t.Errorf("%d refs", len(refs))
	}
	// Delivering the same event again sends nothing new.
	before := len(h.slack.CallsTo("chat.postMessage"))
	owners, _ := h.svc.Owners(context.Background(), workflow.Role{ID: r.RoleID, Name: r.RoleName})
	if err := h.bot.Notify(context.Background(), workflow.Event{Type: workflow.EventCreated, Request: r, Owners: owners}); err != nil {
		t.Fatal(err)
	}
	if n := len(h.slack.CallsTo("chat.postMessage")); n != before {
		t.Errorf("%d new posts on redelivery", n-before)
	}
}

func TestNotifyReturnsErrorsOnlyForRetries(t *testing.T) {
	h := newHarness(t)
	r := h.request(alice, "Engineering", "please", "1h")
	ctx := context.Background()
	ev := workflow.Event{Type: workflow.EventApprovalRecorded, Request: r, Owners: []string{bob, carol}}
	// stale makes every copy look out of date, as after a state change.
	stale := func() {
		refs, _ := h.svc.Messages(ctx, r.ID)
		for _, ref := range refs {
			ref.Shown = "old"
			if err := h.svc.RecordMessage(ctx, ref); err != nil {
				t.Fatal(err)
			}
		}
	}
	stale()
	h.slack.FailNext("chat.update", 1, "message_not_found")
	if err := h.bot.Notify(ctx, ev); err != nil {
		t.Errorf("permanent failure returned %v", err)
	}
	stale()
	h.slack.RateLimitNext("chat.update", 1, 7*time.Second)
	err := h.bot.Notify(ctx, ev)
	var temp *workflow.TemporaryError
	if !errors.As(err, &temp) || temp.RetryAfter != 7*time.Second {
		t.Errorf("rate limit returned %v, want a temporary error carrying Retry-After 7s", err)
	}
	// Slack's Retry-After holds chat.update back: no call is spent on a 429.
	before := len(h.slack.CallsTo("chat.update"))
	if err := h.bot.Notify(ctx, ev); !workflow.IsTemporary(err) {
		t.Errorf("during Retry-After: %v", err)
	}
	if n := len(h.slack.CallsTo("chat.update")) - before; n != 0 {
		t.Errorf("%d chat.update calls during Retry-After", n)
	}
}

func TestNotifyUpdatesEachCopyOnceToItsLatestState(t *testing.T) {
	h := newHarness(t)
	r := h.request(alice, "Engineering", "please", "1h")
	ctx := context.Background()
	owners := []string{bob, carol}
	h.slack.ResetCalls()
	// Three events about one state: the copies are rewritten once.
	for _, typ := range []workflow.EventType{workflow.EventApprovalRecorded, workflow.EventApprovalRecorded, workflow.EventCancelled} {
		if err := h.bot.Notify(ctx, workflow.Event{Type: typ, Request: r, Owners: owners}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(h.slack.CallsTo("chat.update")); n != 0 {
		t.Errorf("%d chat.update calls while every copy already shows the state", n)
	}
	r, err := h.svc.Cancel(ctx, r.ID, alice)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := h.bot.Notify(ctx, workflow.Event{Type: workflow.EventCancelled, Request: r, Owners: owners}); err != nil {
			t.Fatal(err)
		}
	}
	refs, _ := h.svc.Messages(ctx, r.ID)
	if n := len(h.slack.CallsTo("chat.update")); n != len(refs) {
		t.Errorf("%d chat.update calls for %d copies and one state change", n, len(refs))
	}
	for _, ref := range refs {
		if m, _ := h.slack.Message(ref.Channel, ref.TS); !strings.Contains(string(m.Blocks), "ancel") || m.Updates != 1 {
			t.Errorf("%s: %d updates, %s", ref.Channel, m.Updates, m.Blocks)
		}
	}
}

func TestOtherNotifications(t *testing.T) {
	h := newHarness(t)
	r := h.request(alice, "Engineering", "please", "1h")
	ctx := context.Background()
	owners := []string{bob, carol}

	// A reminder replaces each owner's DM with a fresh one, with buttons.
	oldBob := h.approverMessage(r, slacktest.DMChannel(bob))
	if err := h.bot.Notify(ctx, workflow.Event{Type: workflow.EventReminder, Request: r, Owners: owners}); err != nil {
		t.Fatal(err)
	}
	newBob := h.approverMessage(r, slacktest.DMChannel(bob))
	if newBob.TS == oldBob.TS || !strings.Contains(newBob.Text, "Reminder") || !strings.Contains(string(newBob.Blocks), views.ActionApprove) {
		t.Errorf("reminder: %+v", newBob)
	}
	if m, _ := h.slack.Message(oldBob.Channel, oldBob.TS); !m.Deleted {
		t.Error("the old copy was not removed")
	}

	// Drift goes to the owners.
	drift := &workflow.Drift{RoleID: r.RoleID, RoleName: "Engineering", Added: []workflow.Member{{Email: "eve@example.com"}}}
	if err := h.bot.Notify(ctx, workflow.Event{Type: workflow.EventDrift, Owners: owners, Drift: drift}); err != nil {
		t.Fatal(err)
	}
	for _, o := range owners {
		msgs := h.slack.Messages(slacktest.DMChannel(o))
		if last := msgs[len(msgs)-1]; !strings.Contains(string(last.Blocks), "eve@example.com") {
			t.Errorf("%s: %s", o, last.Blocks)
		}
	}

	// A failed execution: requester and owners hear why.
	failed := *r
	failed.State, failed.FailureReason, failed.DecidedBy = workflow.StateFailed, "PostHog said no", bob
	for _, aud := range []workflow.Audience{workflow.AudienceAll, workflow.AudienceRequester} {
		if err := h.bot.Notify(ctx, workflow.Event{Type: workflow.EventFailed, Request: &failed, Owners: owners, Audience: aud}); err != nil {
			t.Fatal(err)
		}
	}
	for _, who := range []string{alice, bob, carol} {
		msgs := h.slack.Messages(slacktest.DMChannel(who))
		if last := msgs[len(msgs)-1]; !strings.Contains(string(last.Blocks), "PostHog said no") {
			t.Errorf("%s: %s", who, last.Blocks)
		}
	}
}

// TestOutcomesFromTheScheduler: expiry and the end of a grant update every
// copy and tell the requester.
func TestOutcomesFromTheScheduler(t *testing.T) {
	cases := []struct {
		ev    workflow.EventType
		apply func(r *workflow.Request)
		copy  string
		dm    string
	}{
		{workflow.EventExpired, func(r *workflow.Request) {
			r.State, r.DecidedBy, r.DecidedAt = workflow.StateExpired, workflow.SystemActor, time.Now()
		}, "Expired", "expired: nobody decided in time"},
		{workflow.EventRevoked, func(r *workflow.Request) {
			r.State, r.DecidedBy, r.RevokedAt, r.DecisionReason = workflow.StateRevoked, bob, time.Now(), "the 1h grant ended"
		}, "Access ended", "Your access to *Engineering* ended"},
	}
	for _, c := range cases {
		t.Run(string(c.ev), func(t *testing.T) {
			h := newHarness(t)
			r := h.request(alice, "Engineering", "please", "1h")
			c.apply(r)
			for _, aud := range []workflow.Audience{workflow.AudienceAll, workflow.AudienceRequester} {
				if err := h.bot.Notify(context.Background(), workflow.Event{Type: c.ev, Request: r, Owners: []string{bob, carol}, Audience: aud}); err != nil {
					t.Fatal(err)
				}
			}
			for _, ch := range []string{slacktest.DMChannel(bob), slacktest.DMChannel(carol), channel} {
				m := h.approverMessage(r, ch)
				if m.Updates != 1 || strings.Contains(string(m.Blocks), views.ActionApprove) || !strings.Contains(string(m.Blocks), c.copy) {
					t.Errorf("%s: %+v", ch, m)
				}
			}
			msgs := h.slack.Messages(slacktest.DMChannel(alice))
			if last := msgs[len(msgs)-1]; !strings.Contains(string(last.Blocks), c.dm) {
				t.Errorf("alice was told %s", last.Blocks)
			}
		})
	}
}

func TestAutoApprovedRole(t *testing.T) {
	h := newHarness(t)
	r := h.request(alice, "Viewer", "dashboards", "1d")
	if r = h.get(r.ID); r.State != workflow.StateCompleted {
		t.Fatalf("state %s", r.State)
	}
	if len(h.slack.Messages(slacktest.DMChannel(admin))) != 0 {
		t.Error("owners were asked about an auto-approved request")
	}
	var texts []string
	for _, m := range h.slack.Messages(slacktest.DMChannel(alice)) {
		texts = append(texts, m.Text)
	}
	if all := strings.Join(texts, "\n"); !strings.Contains(all, "approved automatically") || !strings.Contains(all, "now a member of Viewer") {
		t.Errorf("alice was told:\n%s", all)
	}
}

func TestOptionsTypeahead(t *testing.T) {
	h := newHarness(t)
	v := h.openModal(alice, "request")
	payload, err := h.slack.BlockSuggestion(alice, v, views.ActionRoleSelect, "eng")
	if err != nil {
		t.Fatal(err)
	}
	res := h.post("/slack/options", slacktest.InteractionForm(payload))
	var opts struct {
		Options []struct {
			Text  struct{ Text string } `json:"text"`
			Value string                `json:"value"`
		} `json:"options"`
	}
	if err := json.Unmarshal(res.body, &opts); err != nil || res.status != http.StatusOK {
		t.Fatalf("%d %s", res.status, res.body)
	}
	if len(opts.Options) != 1 || opts.Options[0].Text.Text != "Engineering" || opts.Options[0].Value != h.roles["Engineering"].ID {
		t.Errorf("options %s", res.body)
	}
	if h.events.last() != "options/ok" {
		t.Errorf("observed %q", h.events.last())
	}
}

func TestManyRolesUseTypeahead(t *testing.T) {
	h := newHarness(t)
	for i := 0; i < 120; i++ {
		h.ph.AddRole("Team " + strings.Repeat("x", i%7) + string(rune('A'+i%26)) + time.Duration(i).String())
	}
	v := h.openModal(alice, "request")
	if !strings.Contains(string(v.JSON), `"external_select"`) {
		t.Fatalf("modal:\n%s", v.JSON)
	}
	payload, _ := h.slack.BlockSuggestion(alice, v, views.ActionRoleSelect, "team")
	res := h.post("/slack/options", slacktest.InteractionForm(payload))
	var opts struct{ Options []any }
	_ = json.Unmarshal(res.body, &opts)
	if len(opts.Options) != views.MaxStaticOptions {
		t.Errorf("%d options", len(opts.Options))
	}
	res = h.submit(alice, v, map[string]string{views.BlockRole: h.roles["Engineering"].ID, views.BlockReason: "x", views.BlockDuration: "1h"})
	if res.json(t)["response_action"] != "clear" {
		t.Fatalf("submit: %s", res.body)
	}
}

func TestChoosingARoleOffersItsDurations(t *testing.T) {
	h := newHarness(t)
	v := h.openModal(alice, "request")
	if !strings.Contains(string(v.JSON), `"permanent"`) {
		t.Fatal("the default modal should offer permanent")
	}
	res := h.interact(h.slack.ClickView(alice, v, views.ActionRoleSelect, h.roles["Engineering"].ID))
	if res.status != http.StatusOK {
		t.Fatalf("ack %d", res.status)
	}
	h.settle()
	v, _ = h.slack.LastModal(alice)
	if v.Updates != 1 || strings.Contains(string(v.JSON), `"permanent"`) || !strings.Contains(string(v.JSON), `"7d"`) {
		t.Errorf("after choosing Engineering (max 7 days):\n%s", v.JSON)
	}
}

func TestAppHome(t *testing.T) {
	h := newHarness(t)
	h.request(alice, "Engineering", "please", "1h")
	res := h.post("/slack/events", string(h.slack.AppHomeOpened(bob)))
	if res.status != http.StatusOK {
		t.Fatalf("%d %s", res.status, res.body)
	}
	h.settle()
	home, ok := h.slack.HomeView(bob)
	if !ok {
		t.Fatal("no home published")
	}
	if !strings.Contains(string(home.JSON), "Waiting for your decision (1)") || !strings.Contains(string(home.JSON), views.ActionApprove) {
		t.Errorf("bob's home:\n%s", home.JSON)
	}
	// Approving from the home tab approves and refreshes it.
	h.interact(h.slack.ClickView(bob, home, views.ActionApprove, ""))
	h.settle()
	home, _ = h.slack.HomeView(bob)
	if home.Updates != 1 || !strings.Contains(string(home.JSON), "Waiting for your decision (0)") {
		t.Errorf("bob's home after approving:\n%s", home.JSON)
	}

	h.post("/slack/events", string(h.slack.AppHomeOpened(alice)))
	h.settle()
	home, _ = h.slack.HomeView(alice)
	if !strings.Contains(string(home.JSON), "Engineering") || !strings.Contains(string(home.JSON), "Approved") {
		t.Errorf("alice's home:\n%s", home.JSON)
	}

	// The request button on the home tab opens the modal.
	h.interact(h.slack.ClickView(alice, home, views.ActionNewRequest, ""))
	h.settle()
	if v, ok := h.slack.LastModal(alice); !ok || v.CallbackID != views.CallbackRequest {
		t.Error("no modal from the home tab")
	}
}

func TestURLVerification(t *testing.T) {
	h := newHarness(t)
	res := h.post("/slack/events", string(slacktest.URLVerification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")))
	if res.status != http.StatusOK || res.json(t)["challenge"] != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Fatalf("%d %s", res.status, res.body)
	}
	// Events the bot does not handle are acknowledged.
	res = h.post("/slack/events", string(h.slack.EventCallback(map[string]any{"type": "reaction_added", "user": alice})))
	if res.status != http.StatusOK {
		t.Errorf("other event: %d", res.status)
	}
}

// TestRequestModalOpensWhateverTheRoleList: Slack refuses a static select
// without options, or whose initial option is not among them; the modal
// opens anyway, its picker loading by typeahead or offering the role asked
// for.
func TestRequestModalOpensWhateverTheRoleList(t *testing.T) {
	cases := []struct {
		name    string
		prepare func(h *harness) string // returns the command text
		picker  string                  // the role picker's element type
		initial string                  // its initial option's text, if any
	}{
		{
			name: "an organization without roles",
			prepare: func(h *harness) string {
				phc, err := posthog.NewClient(h.ph.URL(), h.ph.APIKey(), h.ph.OrganizationID(), posthog.WithRateLimit(0, 0))
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range h.ph.Roles() {
					if err := phc.Roles.Delete(context.Background(), r.ID); err != nil {
						t.Fatal(err)
					}
				}
				return "request"
			},
			picker: "external_select",
		},
		{
			name: "a role created after the role list was cached",
			prepare: func(h *harness) string {
				h.openModal(alice, "request") // caches the role list
				h.ph.AddRole("Brand New")
				return "request Brand New"
			},
			picker:  "static_select",
			initial: "Brand New",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			text := c.prepare(h)
			before := len(h.slack.Ephemerals(alice))
			v := h.openModal(alice, text)
			for _, e := range h.slack.Ephemerals(alice)[before:] {
				t.Errorf("alice was told: %s", e.Text)
			}
			var view struct {
				Blocks []struct {
					BlockID string `json:"block_id"`
					Element struct {
						Type          string `json:"type"`
						InitialOption *struct {
							Text struct{ Text string } `json:"text"`
						} `json:"initial_option"`
					} `json:"element"`
				} `json:"blocks"`
			}
			if err := json.Unmarshal(v.JSON, &view); err != nil {
				t.Fatal(err)
			}
			for _, b := range view.Blocks {
				if b.BlockID != views.BlockRole {
					continue
				}
				initial := ""
				if b.Element.InitialOption != nil {
					initial = b.Element.InitialOption.Text.Text
				}
				if b.Element.Type != c.picker || initial != c.initial {
					t.Fatalf("role picker %s with %q, want %s with %q", b.Element.Type, initial, c.picker, c.initial)
				}
				return
			}
			t.Fatalf("no role picker in %s", v.JSON)
		})
	}
}
