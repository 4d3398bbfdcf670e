package bot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/bot"
	"github.com/accessbot/accessbot/bot/slacktest"
	"github.com/accessbot/accessbot/bot/views"
	"github.com/accessbot/accessbot/workflow"
)

// TestSSLCheckGetsAnEmpty200 before any signature check, and nothing else
// happens.
func TestSSLCheckGetsAnEmpty200(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/slack/commands", "/slack/interactions"} {
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader("ssl_check=1&token=abc"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res := h.do(req) // unsigned, as Slack's certificate check may be
		if res.status != http.StatusOK || len(res.body) != 0 {
			t.Errorf("%s: %d %q", path, res.status, res.body)
		}
	}
	h.settle()
	if n := len(h.slack.Calls()); n != 0 {
		t.Errorf("%d Slack calls after ssl_check", n)
	}
	// Anything else unsigned is still refused.
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/slack/commands", strings.NewReader(h.slack.SlashCommand(alice, "list").Form()))
	if res := h.do(req); res.status != http.StatusUnauthorized {
		t.Errorf("unsigned command: %d", res.status)
	}
}

// TestReplayedSubmissionCreatesNothing: the same signed view_submission
// sent again, or the same view submitted again with a fresh signature
// (after the first request was cancelled), creates no second request — on
// an auto-approve role that would grant access with nobody involved.
func TestReplayedSubmissionCreatesNothing(t *testing.T) {
	h := newHarness(t)
	v := h.openModal(alice, "request")
	p, err := h.slack.ViewSubmission(alice, v, map[string]string{views.BlockRole: h.roles["Viewer"].ID,
		views.BlockReason: "read dashboards", views.BlockDuration: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	body := slacktest.InteractionForm(p)
	sent := time.Now()
	if res := h.do(slacktest.SignedRequest(secret, h.srv.URL+"/slack/interactions", body, sent)); res.status != http.StatusOK {
		t.Fatalf("first: %d %s", res.status, res.body)
	}
	h.settle()
	reqs, _ := h.svc.ListMine(context.Background(), alice, 10)
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	creates := h.membershipCreates()

	// The identical signed body, replayed.
	if res := h.do(slacktest.SignedRequest(secret, h.srv.URL+"/slack/interactions", body, sent)); res.status != http.StatusOK || len(res.body) != 0 {
		t.Errorf("replay: %d %s", res.status, res.body)
	}
	// The same view, re-signed later, after the request left the open states.
	if _, err := h.svc.Grants().Done(context.Background(), reqs[0].ID, alice); err != nil && workflow.ErrorCode(err) != workflow.ECONFLICT {
		t.Fatal(err)
	}
	h.settle()
	if res := h.do(slacktest.SignedRequest(secret, h.srv.URL+"/slack/interactions", body, sent.Add(2*time.Second))); res.status != http.StatusOK {
		t.Errorf("resubmit: %d %s", res.status, res.body)
	}
	// And over Socket Mode.
	ctx, stop := runSocket(t, h)
	defer stop()
	if _, err := h.slack.PushInteraction(ctx, p); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if reqs, _ := h.svc.ListMine(context.Background(), alice, 10); len(reqs) != 1 {
		t.Errorf("%d requests after replays", len(reqs))
	}
	if n := h.membershipCreates(); n != creates {
		t.Errorf("%d more PostHog writes", n-creates)
	}
}

// TestBlockActionsActOnTheFirstActionOnly: one signed payload carrying
// 1,000 actions (5,000 are over the 1 MiB body limit and refused whole)
// does what its first action says, once.
func TestBlockActionsActOnTheFirstActionOnly(t *testing.T) {
	h := newHarness(t)
	r := h.request(alice, "Engineering", "please", "1h")
	p, err := h.slack.ClickMessage(bob, h.approverMessage(r, slacktest.DMChannel(bob)), views.ActionApprove, "")
	if err != nil {
		t.Fatal(err)
	}
	var payload map[string]any
	if err := json.Unmarshal(p, &payload); err != nil {
		t.Fatal(err)
	}
	first := payload["actions"].([]any)[0]
	var actions []any
	for i := 0; i < 1000; i++ {
		a := map[string]any{}
		for k, v := range first.(map[string]any) {
			a[k] = v
		}
		if i > 0 {
			a["action_id"] = views.ActionDeny
		}
		actions = append(actions, a)
	}
	payload["actions"] = actions
	p, _ = json.Marshal(payload)
	h.slack.ResetCalls()
	if res := h.interact(p, nil); res.status != http.StatusOK {
		t.Fatalf("%d %s", res.status, res.body)
	}
	h.settle()
	if got := h.get(r.ID); got.State != workflow.StateCompleted || len(got.Approvals) != 1 {
		t.Errorf("state %s with %d approvals", got.State, len(got.Approvals))
	}
	if n := len(h.slack.CallsTo("views.open")); n != 0 {
		t.Errorf("%d deny modals opened", n)
	}
	if n := len(h.slack.Calls()); n > 20 {
		t.Errorf("%d Slack calls for one click", n)
	}
}

// TestDecisionsAreStoredBeforeTheAck: when Slack gets the 200 for Approve,
// Cancel, I'm done, /access cancel, /access done, /access extend and
// /access revoke, the decision is already in the database — no waiting
// for background work.
func TestDecisionsAreStoredBeforeTheAck(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	// Approve: bob's click.
	r := h.request(alice, "Engineering", "please", "1h")
	if res := h.click(bob, h.approverMessage(r, slacktest.DMChannel(bob)), views.ActionApprove); res.status != http.StatusOK {
		t.Fatal(res.status)
	}
	if got := h.get(r.ID); got.State == workflow.StatePending {
		t.Fatal("approval not stored at the ack")
	}
	h.settle()
	// I'm done: the holder's button on the completion DM.
	grant := h.get(r.ID)
	h.command(alice, "list") // the grant is listed with an I'm done button
	h.settle()
	var withDone slacktest.Ephemeral
	for _, e := range h.slack.Ephemerals(alice) {
		if strings.Contains(string(e.Blocks), views.ActionDone) {
			withDone = e
		}
	}
	res := h.interact(h.slack.ClickEphemeral(alice, withDone, views.ActionDone, fmt.Sprint(grant.ID)))
	if res.status != http.StatusOK {
		t.Fatal(res.status)
	}
	if got := h.get(grant.ID); !got.RevokeQueued && got.State != workflow.StateRevoked {
		t.Fatalf("done not stored at the ack: %s", got.State)
	}
	h.settle()

	// Cancel: the requester's button.
	r2 := h.request(alice, "Finance", "numbers", "1h")
	if res := h.click(alice, h.approverMessage(r2, slacktest.DMChannel(alice)), views.ActionCancel); res.status != http.StatusOK {
		t.Fatal(res.status)
	}
	if got := h.get(r2.ID); got.State != workflow.StateCancelled {
		t.Fatalf("cancel not stored at the ack: %s", got.State)
	}
	h.settle()

	// The commands.
	r3 := h.request(alice, "Finance", "numbers again", "1h")
	if res := h.command(alice, fmt.Sprintf("cancel %d", r3.ID)); res.status != http.StatusOK {
		t.Fatal(res.status)
	}
	if got := h.get(r3.ID); got.State != workflow.StateCancelled {
		t.Fatalf("/access cancel not stored at the ack: %s", got.State)
	}
	h.settle()
	r4 := h.request(alice, "Engineering", "again", "1h")
	if _, err := h.svc.Approve(ctx, r4.ID, carol); err != nil {
		t.Fatal(err)
	}
	h.settle()
	h.command(alice, fmt.Sprintf("extend %d 1h", r4.ID))
	if mine, _ := h.svc.ListMine(ctx, alice, 1); mine[0].Kind != workflow.KindExtend {
		t.Fatalf("/access extend not stored at the ack: newest is %s", mine[0].Ref())
	}
	h.command(bob, fmt.Sprintf("revoke %d enough", r4.ID))
	if got := h.get(r4.ID); !got.RevokeQueued && got.State != workflow.StateRevoked {
		t.Fatalf("/access revoke not stored at the ack: %s", got.State)
	}
	h.settle()
}

// TestRepliesNeverCarryLiveMentions: `/access owners <!channel> &` is
// answered with the text escaped, so it pings nobody.
func TestRepliesNeverCarryLiveMentions(t *testing.T) {
	h := newHarness(t)
	// Slack escapes the command text (should_escape) before sending it.
	h.command(alice, "owners &lt;!channel&gt; &amp;")
	h.command(admin, "owners add &lt;!here&gt; <@U0BOB>")
	h.settle()
	all := strings.Join(append(h.ephemeralTo(alice), h.ephemeralTo(admin)...), "\n")
	for _, live := range []string{"<!channel>", "<!here>"} {
		if strings.Contains(all, live) {
			t.Errorf("reply carries a live %s: %s", live, all)
		}
	}
	if !strings.Contains(all, "&lt;!channel&gt; &amp;") {
		t.Errorf("reply does not show what was typed: %s", all)
	}
	// A user the workflow names is still a mention.
	h.command(admin, "owners add Engineering <@U0BOB>")
	h.settle()
	if got := strings.Join(h.ephemeralTo(admin), "\n"); !strings.Contains(got, "<@U0BOB> already owns") {
		t.Errorf("admin was told %s", got)
	}
}

// runSocket runs the bot's Socket Mode until the test ends.
func runSocket(t *testing.T, h *harness) (context.Context, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.bot.RunSocketMode(ctx, appToken) }()
	wait, stopWait := context.WithTimeout(ctx, 20*time.Second)
	if err := h.slack.WaitSocket(wait); err != nil {
		t.Fatal(err)
	}
	return wait, func() {
		stopWait()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("RunSocketMode: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("RunSocketMode did not stop")
		}
	}
}

// TestSocketModeTypeaheadFitsTheFrameLimit: with 150 roles named with &<>,
// the typeahead answer is under Slack's 20,480 bytes and arrives.
func TestSocketModeTypeaheadFitsTheFrameLimit(t *testing.T) {
	h := newHarness(t)
	for i := 0; i < 150; i++ {
		h.ph.AddRole(fmt.Sprintf("R&D <%03d> & <ops> && <<data>>", i))
	}
	ctx, stop := runSocket(t, h)
	defer stop()
	v := h.openModal(alice, "request")
	p, _ := h.slack.BlockSuggestion(alice, v, views.ActionRoleSelect, "")
	ack, err := h.slack.PushInteraction(ctx, p)
	if err != nil {
		t.Fatalf("no answer: %v (oversized frames: %d)", err, h.slack.OversizedFrames())
	}
	var opts struct {
		Options []json.RawMessage `json:"options"`
	}
	if err := json.Unmarshal(ack.Payload, &opts); err != nil || len(opts.Options) < 20 {
		t.Fatalf("%d options: %v", len(opts.Options), err)
	}
	if h.slack.OversizedFrames() != 0 || !bytes.Contains(ack.Payload, []byte(`R\u0026D`)) && !bytes.Contains(ack.Payload, []byte(`R&D`)) {
		t.Errorf("oversized %d, payload %.200s", h.slack.OversizedFrames(), ack.Payload)
	}
}

// TestSocketModeBotIsNotReadyBeforeItsSocket: a bot configured for Socket
// Mode is not ready before RunSocketMode has even begun (serve's /readyz
// could answer 200 in that moment).
func TestSocketModeBotIsNotReadyBeforeItsSocket(t *testing.T) {
	h := newHarness(t, func(_ *workflow.Config, b *bot.Config) { b.SocketMode = true })
	if err := h.bot.Ready(context.Background()); err == nil {
		t.Fatal("ready with no socket")
	}
}

// TestSocketModeReadinessAndReconnects: readiness follows the socket; a
// refused app token is retried with backoff without stopping anything;
// on Slack's disconnect the new connection opens before the old closes.
func TestSocketModeReadinessAndReconnects(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if err := h.bot.Ready(ctx); err != nil {
		t.Fatalf("HTTP mode not ready: %v", err)
	}
	h.slack.RefuseToken(appToken, "invalid_auth")
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.bot.RunSocketMode(runCtx, appToken) }()
	defer func() {
		cancel()
		<-done
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("the refused token was tried twice", func() bool { return len(h.slack.CallsTo("apps.connections.open")) >= 2 })
	select {
	case err := <-done:
		t.Fatalf("RunSocketMode gave up on invalid_auth: %v", err)
	default:
	}
	if h.bot.Ready(ctx) == nil || h.bot.SocketConnected() {
		t.Fatal("ready while the token is refused")
	}
	// Workers keep running meanwhile: a request still completes.
	r := h.request(alice, "Engineering", "while the socket is down", "1h")
	h.click(bob, h.approverMessage(r, slacktest.DMChannel(bob)), views.ActionApprove)
	h.settle()
	if h.get(r.ID).State != workflow.StateCompleted {
		t.Fatal("work stopped while the socket was down")
	}

	h.slack.RefuseToken(appToken, "")
	waitFor("connected", func() bool { return h.bot.Ready(ctx) == nil })
	gaps := h.slack.SocketGaps()

	// Slack asks for a reconnect and would close the old socket 3s later.
	before := h.slack.SocketConnections()
	if err := h.slack.DisconnectSocket(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor("a new connection", func() bool { return h.slack.SocketConnections() > before })
	waitFor("the old connection closed", func() bool { return h.slack.OpenSockets() == 1 })
	if g := h.slack.SocketGaps(); g != gaps {
		t.Errorf("%d moments without a connection during the reconnect", g-gaps)
	}
	if h.bot.Ready(ctx) != nil {
		t.Error("not ready after the reconnect")
	}
	wait, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	if _, err := h.slack.PushSlashCommand(wait, h.slack.SlashCommand(alice, "help")); err != nil {
		t.Errorf("after reconnect: %v", err)
	}

	// A dropped connection makes readiness false until it is back.
	h.slack.DropSocket()
	waitFor("reconnected after a drop", func() bool {
		return h.slack.OpenSockets() == 1 && h.bot.Ready(ctx) == nil && h.slack.SocketConnections() > before+1
	})
}

// TestNotificationsUnderSlackRateLimits: with the fake limiting like Slack
// (chat.update 50 a minute), two approvals in a row reach both requesters
// and every copy, paced to the tier, each copy rewritten at most once per
// state change.
func TestNotificationsUnderSlackRateLimits(t *testing.T) {
	h := newHarness(t, paced())
	h.slack.LimitLikeSlack()
	r1 := h.request(alice, "Engineering", "one", "1h")
	r2 := h.request(mallory, "Engineering", "two", "1h")
	h.slack.ResetCalls()
	h.click(bob, h.approverMessage(r1, slacktest.DMChannel(bob)), views.ActionApprove)
	h.click(bob, h.approverMessage(r2, slacktest.DMChannel(bob)), views.ActionApprove)
	copies := 0
	deadline := time.Now().Add(60 * time.Second)
	for {
		h.settle()
		done := 0
		for _, r := range []*workflow.Request{r1, r2} {
			refs, _ := h.svc.Messages(context.Background(), r.ID)
			copies = len(refs)
			final := 0
			for _, ref := range refs {
				if m, _ := h.slack.Message(ref.Channel, ref.TS); m.Updates > 0 && !strings.Contains(string(m.Blocks), "PostHog…") {
					final++
				}
			}
			if final == len(refs) && h.get(r.ID).State == workflow.StateCompleted {
				done++
			}
		}
		if done == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("copies not final after a minute: %d chat.update calls", len(h.slack.CallsTo("chat.update")))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, who := range []string{alice, mallory} {
		told := 0
		for _, m := range h.slack.Messages(slacktest.DMChannel(who)) {
			if strings.Contains(string(m.Blocks), "you are now a member") {
				told++
			}
		}
		if told != 1 {
			t.Errorf("%s was told %d times", who, told)
		}
	}
	updates := len(h.slack.CallsTo("chat.update"))
	if bound := 3 * copies * 2; updates > bound { // 1.5 × copies × 2 changes × 2 requests
		t.Errorf("%d chat.update calls for %d copies, bound %d", updates, copies, bound)
	}
	t.Logf("%d chat.update calls, %d answered 429", updates, h.slack.RateLimited("chat.update"))
}

// TestSlowUsersInfoDoesNotHoldTheAck: the approver's email for the audit
// entry is looked up within a short budget, so a slow users.info never
// makes the click's acknowledgement (and the stored decision) late.
func TestSlowUsersInfoDoesNotHoldTheAck(t *testing.T) {
	h := newHarness(t)
	r := h.request(alice, "Engineering", "please", "1h")
	h.slack.SetLatency("users.info", 2500*time.Millisecond)
	start := time.Now()
	res := h.click(bob, h.approverMessage(r, slacktest.DMChannel(bob)), views.ActionApprove)
	took := time.Since(start)
	if res.status != http.StatusOK || took > 1500*time.Millisecond {
		t.Fatalf("ack %d after %v", res.status, took)
	}
	got := h.get(r.ID)
	if got.State == workflow.StatePending {
		t.Fatal("approval not stored at the ack")
	}
	// Bob's email was looked up when his approver message was sent, so the
	// audit entry has it anyway.
	if len(got.Approvals) != 1 || got.Approvals[0].ApproverEmail != "bob@example.com" {
		t.Errorf("approvals %+v", got.Approvals)
	}
	h.slack.SetLatency("users.info", 0)
	h.settle()
}

// TestRetriedOwnerDMsReachEachOwnerOnce: when one owner's DM is rate
// limited, the others still get theirs at once, and the retry DMs only
// the one who missed it.
func TestRetriedOwnerDMsReachEachOwnerOnce(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	drift := &workflow.Drift{RoleID: h.roles["Engineering"].ID, RoleName: "Engineering", Added: []workflow.Member{{Email: "eve@example.com"}}}
	ev := workflow.Event{Type: workflow.EventDrift, Owners: []string{bob, carol}, Drift: drift}
	h.slack.RateLimitNext("chat.postMessage", 1, 0) // bob's
	if err := h.bot.Notify(ctx, ev); !workflow.IsTemporary(err) {
		t.Fatalf("first attempt: %v", err)
	}
	time.Sleep(1100 * time.Millisecond) // Slack's Retry-After: a second at least
	if err := h.bot.Notify(ctx, ev); err != nil {
		t.Fatalf("retry: %v", err)
	}
	for _, o := range []string{bob, carol} {
		n := 0
		for _, m := range h.slack.Messages(slacktest.DMChannel(o)) {
			if strings.Contains(string(m.Blocks), "eve@example.com") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s got the drift report %d times", o, n)
		}
	}
}
