package bot_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/bot/slacktest"
	"github.com/accessbot/accessbot/bot/views"
	"github.com/accessbot/accessbot/workflow"
)

// TestSocketMode runs the request → approve flow over Socket Mode: the
// same handlers, acknowledged over the fake's websocket.
func TestSocketMode(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.bot.RunSocketMode(ctx, appToken) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("RunSocketMode: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("RunSocketMode did not stop")
		}
	}()
	wait, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	if err := h.slack.WaitSocket(wait); err != nil {
		t.Fatal(err)
	}
	if c := h.slack.CallsTo("apps.connections.open"); len(c) != 1 {
		t.Fatalf("%d apps.connections.open calls", len(c))
	}

	// Help is answered in the ack.
	ack, err := h.slack.PushSlashCommand(wait, h.slack.SlashCommand(alice, "help"))
	if err != nil || !strings.Contains(string(ack.Payload), "What `/access` can do") {
		t.Fatalf("help ack %s: %v", ack.Payload, err)
	}

	ack, err = h.slack.PushSlashCommand(wait, h.slack.SlashCommand(alice, "request Engineering"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ack.Payload) != 0 {
		t.Errorf("command ack carried %s", ack.Payload)
	}
	h.settle()
	v, ok := h.slack.LastModal(alice)
	if !ok {
		t.Fatal("no modal")
	}

	// Typeahead options come back in the ack.
	p, _ := h.slack.BlockSuggestion(alice, v, views.ActionRoleSelect, "fin")
	ack, err = h.slack.PushInteraction(wait, p)
	if err != nil || !strings.Contains(string(ack.Payload), `"Finance"`) {
		t.Errorf("options ack %s: %v", ack.Payload, err)
	}

	// A bad submission gets its errors in the ack.
	p, _ = h.slack.ViewSubmission(alice, v, map[string]string{views.BlockReason: " ", views.BlockDuration: "1h"})
	ack, err = h.slack.PushInteraction(wait, p)
	if err != nil || !strings.Contains(string(ack.Payload), `"response_action":"errors"`) || !strings.Contains(string(ack.Payload), `"reason"`) {
		t.Fatalf("errors ack %s: %v", ack.Payload, err)
	}
	p, _ = h.slack.ViewSubmission(alice, v, map[string]string{views.BlockReason: "over the socket", views.BlockDuration: "1d"})
	ack, err = h.slack.PushInteraction(wait, p)
	var sub struct {
		ResponseAction string `json:"response_action"`
	}
	if err != nil || json.Unmarshal(ack.Payload, &sub) != nil || sub.ResponseAction != "clear" {
		t.Fatalf("submit ack %s: %v", ack.Payload, err)
	}
	h.settle()
	reqs, _ := h.svc.ListMine(context.Background(), alice, 1)
	if len(reqs) != 1 {
		t.Fatal("no request stored")
	}
	r := reqs[0]

	p, _ = h.slack.ClickMessage(bob, h.approverMessage(r, slacktest.DMChannel(bob)), views.ActionApprove, "")
	if _, err := h.slack.PushInteraction(wait, p); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if r = h.get(r.ID); r.State != workflow.StateCompleted || !h.ph.HasMember(h.roles["Engineering"].ID, h.uuids[alice]) {
		t.Fatalf("state %s", r.State)
	}
	for _, ch := range []string{slacktest.DMChannel(bob), slacktest.DMChannel(carol), channel} {
		if m := h.approverMessage(r, ch); strings.Contains(string(m.Blocks), views.ActionApprove) {
			t.Errorf("%s still has buttons", ch)
		}
	}

	// App Home over events_api.
	if _, err := h.slack.PushEvent(wait, h.slack.AppHomeOpened(alice)); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if _, ok := h.slack.HomeView(alice); !ok {
		t.Error("no home published")
	}

	// A malformed envelope is acknowledged (so Slack does not resend it).
	if _, err := h.slack.PushEnvelope(wait, "interactive", map[string]any{"type": "block_actions"}); err != nil {
		t.Errorf("malformed envelope: %v", err)
	}

	// Slack asks for a reconnect; the bot comes back.
	if err := h.slack.DisconnectSocket(0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.slack.SocketConnections() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := h.slack.PushSlashCommand(wait, h.slack.SlashCommand(alice, "help")); err != nil {
		t.Errorf("after reconnect: %v", err)
	}
}
