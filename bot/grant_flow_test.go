package bot_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/bot"
	"github.com/accessbot/accessbot/bot/slacktest"
	"github.com/accessbot/accessbot/bot/views"
	"github.com/accessbot/accessbot/workflow"
)

// testClock is a workflow clock the test moves.
type testClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().UTC().Add(c.off)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

func withClock(c *testClock) harnessOption {
	return func(w *workflow.Config, _ *bot.Config) { w.Clock = c }
}

func (h *harness) tick() {
	h.t.Helper()
	if err := h.svc.Tick(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.settle()
}

// lastDM is the newest message in user's DM that contains text.
func (h *harness) lastDM(user, text string) slacktest.Message {
	h.t.Helper()
	msgs := h.slack.Messages(slacktest.DMChannel(user))
	for i := len(msgs) - 1; i >= 0; i-- {
		if strings.Contains(string(msgs[i].Blocks), text) {
			return msgs[i]
		}
	}
	h.t.Fatalf("no DM to %s containing %q", user, text)
	return slacktest.Message{}
}

func (h *harness) ephemeralContains(user, text string) bool {
	for _, e := range h.ephemeralTo(user) {
		if strings.Contains(e, text) {
			return true
		}
	}
	return false
}

// A grant's end of life through Slack: the expiry warning DM, its Extend
// button routed to the owners, /access extend, then /access done.
func TestExpiryWarningExtendAndDoneThroughSlack(t *testing.T) {
	clock := &testClock{}
	h := newHarness(t, withClock(clock))
	r := h.request(alice, "Engineering", "incident follow-up", "8h")
	h.click(bob, h.approverMessage(r, slacktest.DMChannel(bob)), views.ActionApprove)
	h.settle()
	g := h.get(r.ID)
	if !g.Active() {
		t.Fatalf("grant is %s", g.State)
	}
	end := g.RevokeAt

	// Seven hours on, the 1h warning comes with Extend and I'm done.
	clock.Advance(7*time.Hour + time.Second)
	h.tick()
	warning := h.lastDM(alice, views.ActionExtend)
	if !strings.Contains(string(warning.Blocks), views.ActionDone) || !strings.Contains(string(warning.Blocks), "ends") {
		t.Fatalf("warning: %s", warning.Blocks)
	}
	h.tick()
	if again := h.lastDM(alice, views.ActionExtend); again.TS != warning.TS {
		t.Fatalf("warning sent twice: %s and %s", warning.TS, again.TS)
	}

	// Extend asks the owners; bob approves; the end moves, PostHog untouched.
	calls := len(h.ph.Calls())
	h.click(alice, warning, views.ActionExtend)
	h.settle()
	if !h.ephemeralContains(alice, "I asked the owners of *Engineering* to extend") {
		t.Fatalf("alice was told %v", h.ephemeralTo(alice))
	}
	ext, err := h.svc.ListMine(context.Background(), alice, 1)
	if err != nil || ext[0].Kind != workflow.KindExtend {
		t.Fatalf("no extension request: %v %v", ext, err)
	}
	m := h.approverMessage(ext[0], slacktest.DMChannel(bob))
	if !strings.Contains(string(m.Blocks), "to extend their access to *Engineering*") {
		t.Fatalf("bob's approver message: %s", m.Blocks)
	}
	h.click(bob, m, views.ActionApprove)
	h.settle()
	if got := h.get(g.ID).RevokeAt; !got.Equal(end.Add(8 * time.Hour)) {
		t.Fatalf("end %v, want %v", got, end.Add(8*time.Hour))
	}
	if n := len(h.ph.Calls()) - calls; n != 0 {
		t.Fatalf("an extension made %d PostHog calls", n)
	}
	h.lastDM(alice, "was extended")

	// /access extend with a length, then /access done: the pending extension
	// is withdrawn and the membership deleted.
	h.command(alice, "extend "+g.Ref()+" 2h")
	h.settle()
	if !h.ephemeralContains(alice, "extend #1 by 2 hours") {
		t.Fatalf("alice was told %v", h.ephemeralTo(alice))
	}
	h.command(bob, "done 1")
	h.settle()
	if !h.ephemeralContains(bob, "Only the person who holds #1") {
		t.Fatalf("bob was told %v", h.ephemeralTo(bob))
	}
	h.command(alice, "done 1")
	h.settle()
	if got := h.get(g.ID); got.State != workflow.StateRevoked || h.ph.HasMember(h.roles["Engineering"].ID, h.uuids[alice]) {
		t.Fatalf("after done: %s, member %v", got.State, h.ph.HasMember(h.roles["Engineering"].ID, h.uuids[alice]))
	}
	h.lastDM(alice, "Your access to *Engineering* ended")
	mine, _ := h.svc.ListMine(context.Background(), alice, 1)
	if mine[0].Kind != workflow.KindExtend || mine[0].State != workflow.StateCancelled {
		t.Fatalf("pending extension after done: %s %s", mine[0].Kind, mine[0].State)
	}
}

// An overdue revocation is shown to the holder and the owners, alarms
// owners and admins, and Retry now retries it.
func TestOverdueRevocationIsShownAlarmedAndRetriedFromSlack(t *testing.T) {
	h := newHarness(t, func(w *workflow.Config, _ *bot.Config) { w.RetryBase, w.RetryMax = time.Minute, time.Hour })
	r := h.request(alice, "Engineering", "incident follow-up", "8h")
	h.click(bob, h.approverMessage(r, slacktest.DMChannel(bob)), views.ActionApprove)
	h.settle()
	h.ph.FailNext(1, 403)
	h.command(bob, "revoke 1 incident over")
	h.settle()
	if g := h.get(r.ID); !g.Overdue() {
		t.Fatalf("grant after a refused DELETE: %s overdue=%v", g.State, g.Overdue())
	}
	for _, who := range []string{bob, carol, admin} {
		h.lastDM(who, "Revocation overdue")
	}
	h.command(alice, "list")
	h.settle()
	if !h.ephemeralContains(alice, "Revocation overdue") {
		t.Fatalf("alice's list: %v", h.ephemeralTo(alice))
	}
	alarm := h.lastDM(bob, "Revocation overdue")
	h.click(bob, alarm, views.ActionRetryRevoke)
	h.settle()
	if !h.ephemeralContains(bob, "Retrying the overdue revocation of #1") {
		t.Fatalf("bob was told %v", h.ephemeralTo(bob))
	}
	if g := h.get(r.ID); g.State != workflow.StateRevoked || h.ph.HasMember(h.roles["Engineering"].ID, h.uuids[alice]) {
		t.Fatalf("after retry: %s", g.State)
	}
}
