package bot_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/bot/slacktest"
	"github.com/accessbot/accessbot/bot/views"
	"github.com/accessbot/accessbot/workflow"
)

// reply runs a command and returns everything the caller was shown: the
// ack body and the ephemeral replies that followed.
func (h *harness) reply(user, text string) (int, string) {
	h.t.Helper()
	before := len(h.slack.Ephemerals(user))
	res := h.command(user, text)
	h.settle()
	out := readable(res.body)
	for _, e := range h.slack.Ephemerals(user)[before:] {
		out += "\n" + e.Text + " " + string(e.Blocks)
	}
	return res.status, out
}

// readable re-encodes JSON without HTML escaping, as people read it.
func readable(b []byte) string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return string(b)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return buf.String()
}

func TestCommands(t *testing.T) {
	h := newHarness(t)
	pending := h.request(alice, "Engineering", "please", "1h")
	h.ph.AddMembership(h.roles["Finance"].ID, h.uuids[mallory])

	cases := []struct {
		name, user, text string
		says             []string
		not              []string
	}{
		{"help", alice, "help", []string{`"response_type":"ephemeral"`, "What `/access` can do"}, nil},
		{"HELP is case-insensitive", alice, "HELP", []string{"What `/access` can do"}, nil},
		{"unknown", alice, "frobnicate now", []string{`"response_type":"ephemeral"`, "I don't know `frobnicate`", "What `/access` can do"}, nil},
		{"escaped unknown", alice, "&lt;script&gt;", []string{"I don't know `&lt;script&gt;`"}, nil},
		{"list", alice, "list", []string{"Your requests", "#1", "Engineering", "waiting for approval", views.ActionCancel}, nil},
		{"list is empty", mallory, "list", []string{"You have no requests yet"}, nil},
		{"pending for an owner", bob, "pending", []string{"1 request is waiting for your decision", views.ActionApprove, views.ActionDeny}, nil},
		{"pending for someone else", mallory, "pending", []string{"Nothing is waiting for your decision"}, []string{views.ActionApprove}},
		{"roles", alice, "roles", []string{"PostHog roles", "Engineering", "<@U0BOB>", "Data &amp; Analytics", "approved automatically", "needs 2 approvals", "at most 7 days"}, nil},
		{"owners", alice, "owners engineering", []string{"*Engineering* is owned by <@U0BOB>, <@U0CAROL>"}, nil},
		{"owners of an unknown role", alice, "owners Nope", []string{"There is no PostHog role called"}, nil},
		{"owners of a role with spaces and an ampersand", alice, "owners Data &amp; Analytics", []string{"*Data &amp; Analytics* is owned by <@U0ADMIN>"}, nil},
		{"owners add by a non-admin", bob, "owners add Engineering <@U0MALLORY|mallory>", []string{"Only bot admins can change role owners"}, nil},
		{"owners add", admin, "owners add Engineering <@U0MALLORY|mallory>", []string{"<@U0MALLORY> is now an owner of *Engineering*"}, nil},
		{"owners after add", alice, "owners Engineering", []string{"<@U0MALLORY>"}, nil},
		{"owners add twice", admin, "owners add Engineering <@U0MALLORY>", []string{"already owns Engineering"}, nil},
		{"owners remove", admin, "owners remove Engineering <@U0MALLORY>", []string{"<@U0MALLORY> is no longer an owner of *Engineering*"}, nil},
		{"owners add without a mention", admin, "owners add Engineering", []string{"Name the user with a mention"}, nil},
		{"cancel someone else's", mallory, "cancel 1", []string{"Only the person who asked can cancel #1"}, nil},
		{"cancel unknown", alice, "cancel #99", []string{"There is no request #99"}, nil},
		{"cancel without id", alice, "cancel", []string{"Say which request to cancel"}, nil},
		{"cancel bad id", alice, "cancel seven", []string{"`seven` is not a request id"}, nil},
		{"cancel with #", alice, "cancel #1", []string{"Cancelled #1 (Engineering)"}, nil},
		{"cancel again", alice, "cancel 1", []string{"#1 was cancelled by the requester"}, nil},
		{"audit by a non-admin", alice, "audit", []string{"Only bot admins can export the audit log"}, nil},
		{"audit with a bad start", admin, "audit yesterday", []string{"I can't read `yesterday` as a start"}, nil},
		{"remove without role", alice, "remove", []string{"Say which role"}, nil},
		{"request for someone else", alice, "request Engineering <@U0BOB>", []string{"only ask for access for yourself"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, out := h.reply(c.user, c.text)
			if status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
			for _, want := range c.says {
				if !strings.Contains(out, want) {
					t.Errorf("reply lacks %q:\n%s", want, out)
				}
			}
			for _, no := range c.not {
				if strings.Contains(out, no) {
					t.Errorf("reply has %q:\n%s", no, out)
				}
			}
		})
	}
	if r := h.get(pending.ID); r.State != workflow.StateCancelled {
		t.Errorf("request #1 is %s", r.State)
	}
	// The requester's copy and every approver copy show the cancellation.
	m := h.approverMessage(pending, channel)
	if !strings.Contains(string(m.Blocks), "Cancelled") || strings.Contains(string(m.Blocks), views.ActionApprove) {
		t.Errorf("channel copy: %s", m.Blocks)
	}
}

func TestCommandsOpenModals(t *testing.T) {
	h := newHarness(t)
	h.ph.AddMembership(h.roles["Engineering"].ID, h.uuids[alice])
	cases := []struct {
		name, user, text string
		has, hasNot      []string
	}{
		{"empty", alice, "", []string{`"static_select"`, views.BlockDuration, `\"kind\":\"add\"`}, []string{"initial_option"}},
		{"request ROLE prefilled", alice, "request finance", []string{`"initial_option"`, `"text":"Finance"`, h.roles["Finance"].ID}, nil},
		{"request ROLE with spaces", alice, "request Data &amp; Analytics", []string{`"initial_option":{"text":{"emoji":false,"text":"Data & Analytics"`}, nil},
		{"request unknown ROLE", alice, "request Nope", []string{"There is no PostHog role called “Nope”"}, []string{"initial_option"}},
		{"remove ROLE", alice, "remove Engineering", []string{"Remove access", `\"kind\":\"remove\"`, `"initial_option"`}, []string{views.ActionDurationSelect}},
		{"remove ROLE @user", bob, "remove Engineering <@U0ALICE|alice>", []string{"Ask to remove <@U0ALICE>", `\"subject\":\"U0ALICE\"`}, []string{views.ActionDurationSelect}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := h.openModal(c.user, c.text)
			js := string(v.JSON)
			for _, want := range c.has {
				if !strings.Contains(js, want) {
					t.Errorf("modal lacks %s:\n%s", want, js)
				}
			}
			for _, no := range c.hasNot {
				if strings.Contains(js, no) {
					t.Errorf("modal has %s:\n%s", no, js)
				}
			}
		})
	}

	// A removal goes through the owners like a request.
	v := h.openModal(bob, "remove Engineering <@U0ALICE>")
	res := h.submit(bob, v, map[string]string{views.BlockReason: "left the team"})
	if res.json(t)["response_action"] != "clear" {
		t.Fatalf("removal: %s", res.body)
	}
	h.settle()
	reqs, _ := h.svc.ListMine(context.Background(), bob, 1)
	r := reqs[0]
	if r.Kind != workflow.KindRemove || r.SubjectID != alice {
		t.Fatalf("removal stored as %+v", r)
	}
	h.click(carol, h.approverMessage(r, slacktest.DMChannel(carol)), views.ActionApprove)
	h.settle()
	if h.ph.HasMember(h.roles["Engineering"].ID, h.uuids[alice]) {
		t.Error("alice is still a member")
	}
	// Mallory may not remove alice.
	v = h.openModal(mallory, "remove Engineering <@U0BOB>")
	res = h.submit(mallory, v, map[string]string{views.BlockReason: "because"})
	if errs, _ := res.json(t)["errors"].(map[string]any); errs == nil || !strings.Contains(errs["role"].(string), "Only the owners of Engineering") {
		t.Errorf("mallory's removal: %s", res.body)
	}
}

// TestRevokeCommand: an owner ends a grant early from Slack; the membership
// leaves PostHog and the requester is told.
func TestRevokeCommand(t *testing.T) {
	h := newHarness(t)
	r := h.request(alice, "Engineering", "on call", "8h")
	if res := h.click(bob, h.approverMessage(r, slacktest.DMChannel(bob)), views.ActionApprove); res.status != http.StatusOK {
		t.Fatalf("approve: %d", res.status)
	}
	h.settle()
	if !h.ph.HasMember(h.roles["Engineering"].ID, h.uuids[alice]) {
		t.Fatal("not granted")
	}
	for _, c := range []struct{ user, text, says string }{
		{mallory, "revoke 1", "Only the owners of Engineering"},
		{bob, "revoke 99", "There is no request #99"},
		{bob, "revoke 1 incident over", "Revoking #1"},
		{bob, "revoke 1", "is not an active grant"},
	} {
		if _, out := h.reply(c.user, c.text); !strings.Contains(out, c.says) {
			t.Errorf("/access %s by %s: %s", c.text, c.user, out)
		}
	}
	if h.ph.HasMember(h.roles["Engineering"].ID, h.uuids[alice]) {
		t.Fatal("still a member after revoke")
	}
	if got := h.get(r.ID); got.State != workflow.StateRevoked || got.DecisionReason != "incident over" {
		t.Fatalf("state %s reason %q", got.State, got.DecisionReason)
	}
	found := false
	for _, m := range h.slack.Messages(slacktest.DMChannel(alice)) {
		found = found || strings.Contains(m.Text, "ended")
	}
	if !found {
		t.Error("alice was not told her access ended")
	}
}

// TestRevokeCommandWhileBeingAdded: an owner revokes a grant approved but
// not yet carried out; it is told so, nothing is sent to PostHog, and the
// requester and every copy say so (grant rule 8).
func TestRevokeCommandWhileBeingAdded(t *testing.T) {
	h := newHarness(t)
	r := h.request(alice, "Engineering", "on call", "8h")
	if res := h.click(bob, h.approverMessage(r, slacktest.DMChannel(bob)), views.ActionApprove); res.status != http.StatusOK {
		t.Fatalf("approve: %d", res.status)
	}
	if err := h.bot.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := h.get(r.ID).State; st != workflow.StateApproved {
		t.Fatalf("before the revoke the grant is %s, want approved", st)
	}
	before := len(h.slack.Ephemerals(bob))
	h.command(bob, "revoke 1 plans changed")
	if err := h.bot.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	var told string
	for _, e := range h.slack.Ephemerals(bob)[before:] {
		told += e.Text
	}
	if !strings.Contains(told, "Revoking #1, which is still being carried out") || !strings.Contains(told, "will not keep Engineering") {
		t.Fatalf("bob was told %q", told)
	}
	if _, out := h.reply(bob, "revoke 1"); !strings.Contains(out, "already to be revoked as soon as PostHog has added it") {
		t.Errorf("second revoke: %s", out)
	}
	h.settle()
	if h.ph.HasMember(h.roles["Engineering"].ID, h.uuids[alice]) {
		t.Fatal("still a member after a revoke made while being added")
	}
	// Nothing had been sent to PostHog: nothing is.
	if got := h.get(r.ID); got.State != workflow.StateFailed || got.DecisionReason != "plans changed" {
		t.Fatalf("state %s reason %q", got.State, got.DecisionReason)
	}
	if n := h.membershipCreates(); n != 0 {
		t.Errorf("%d membership creates, want 0", n)
	}
	found := false
	for _, m := range h.slack.Messages(slacktest.DMChannel(alice)) {
		found = found || strings.Contains(m.Text, "was revoked before it was carried out: plans changed. Nothing was changed in PostHog.")
	}
	if !found {
		t.Errorf("alice was not told her request was revoked: %v", h.slack.Messages(slacktest.DMChannel(alice)))
	}
	copyText := string(h.approverMessage(r, slacktest.DMChannel(bob)).Blocks)
	if !strings.Contains(copyText, "then revoked before it was carried out: plans changed. Nothing was changed in PostHog.") {
		t.Errorf("bob's copy reads %s", copyText)
	}
}

func TestAuditExportGoesToTheAdminsDM(t *testing.T) {
	h := newHarness(t)
	h.request(alice, "Engineering", "please", "1h")
	_, out := h.reply(admin, "audit 2020-01-01")
	if !strings.Contains(out, "I sent the audit log") {
		t.Fatalf("reply: %s", out)
	}
	files := h.slack.Files()
	if len(files) != 1 {
		t.Fatalf("%d files", len(files))
	}
	f := files[0]
	if !f.Completed || len(f.Channels) != 1 || f.Channels[0] != slacktest.DMChannel(admin) || !strings.HasSuffix(f.Name, ".csv") {
		t.Errorf("file %+v", f)
	}
	rows, err := csv.NewReader(strings.NewReader(string(f.Content))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != strings.Join(workflow.AuditCSVHeader, ",") || len(rows) < 2 || rows[1][4] != "request_created" {
		t.Errorf("csv:\n%s", f.Content)
	}
	if len(h.slack.CallsTo("files.getUploadURLExternal")) != 1 || len(h.slack.CallsTo("files.completeUploadExternal")) != 1 {
		t.Error("not the files.uploadV2 flow")
	}
	// The export itself is audited.
	_, out = h.reply(admin, "audit 7d")
	if f := h.slack.Files()[1]; !strings.Contains(string(f.Content), "audit_exported") {
		t.Errorf("second export lacks the first: %s / %s", out, f.Content)
	}
}

func TestCommandRepliesFallBackWhenResponseURLFails(t *testing.T) {
	h := newHarness(t)
	h.slack.FailNext("response_url", 1, "")
	status, _ := h.reply(alice, "list")
	if status != http.StatusOK {
		t.Fatal(status)
	}
	if n := len(h.slack.CallsTo("chat.postEphemeral")); n != 1 {
		t.Errorf("%d chat.postEphemeral calls", n)
	}
}
