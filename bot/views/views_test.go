package views

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/workflow"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares v, as indented JSON, with testdata/name.golden.json.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatalf("encode %s: %v", name, err)
	}
	// Nested Block Kit types marshal themselves with HTML escaping; undo it
	// so the files read like what Slack receives.
	got := []byte(strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(buf.String()))
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./bot/views -update to create it)", err)
	}
	if !bytes.Equal(bytes.TrimSpace(want), bytes.TrimSpace(got)) {
		t.Errorf("%s differs from %s (run with -update if the change is intended):\n%s", name, path, got)
	}
}

var (
	t0      = time.Date(2025, 3, 4, 9, 30, 0, 0, time.UTC)
	roleEng = workflow.Role{ID: "0190f0a0-eng", Name: "Engineering", Members: 12}
)

// fixture is a pending request with a reason that needs escaping.
func fixture() *workflow.Request {
	return &workflow.Request{
		ID: 7, Kind: workflow.KindAdd, State: workflow.StatePending,
		RequesterID: "U0ALICE", RequesterEmail: "alice@example.com",
		SubjectID: "U0ALICE", SubjectEmail: "alice@example.com", SubjectUUID: "uuid-alice",
		RoleID: roleEng.ID, RoleName: roleEng.Name,
		Reason:            "Debug the <billing> funnel & fix INC-42\nsecond line",
		Duration:          8 * time.Hour,
		ApprovalsRequired: 2,
		CreatedAt:         t0, UpdatedAt: t0, ExpiresAt: t0.Add(72 * time.Hour),
	}
}

func withState(r *workflow.Request, f func(r *workflow.Request)) *workflow.Request {
	c := *r
	f(&c)
	return &c
}

func states() map[string]*workflow.Request {
	p := fixture()
	decided := t0.Add(time.Hour)
	approvals := []workflow.Approval{{RequestID: 7, ApproverID: "U0BOB", At: decided}, {RequestID: 7, ApproverID: "U0CAROL", At: decided}}
	return map[string]*workflow.Request{
		"pending": p,
		"pending_one_approval": withState(p, func(r *workflow.Request) {
			r.Approvals = approvals[:1]
		}),
		"approved": withState(p, func(r *workflow.Request) {
			r.State, r.Approvals, r.DecidedBy, r.DecidedAt = workflow.StateApproved, approvals, "U0CAROL", decided
		}),
		"completed": withState(p, func(r *workflow.Request) {
			r.State, r.Approvals, r.DecidedBy, r.DecidedAt = workflow.StateCompleted, approvals, "U0CAROL", decided
			r.CompletedAt, r.RevokeAt = decided.Add(time.Minute), decided.Add(time.Minute+8*time.Hour)
		}),
		"failed": withState(p, func(r *workflow.Request) {
			r.State, r.Approvals, r.DecidedBy, r.DecidedAt = workflow.StateFailed, approvals, "U0CAROL", decided
			r.FailureReason = "PostHog said the role <Engineering> does not exist"
		}),
		"denied": withState(p, func(r *workflow.Request) {
			r.State, r.DecidedBy, r.DecidedAt, r.DecisionReason = workflow.StateDenied, "U0BOB", decided, "Use the *Viewer* role & ask again"
		}),
		"cancelled": withState(p, func(r *workflow.Request) {
			r.State, r.DecidedBy, r.DecidedAt, r.DecisionReason = workflow.StateCancelled, "U0ALICE", decided, "cancelled by the requester"
		}),
		"expired": withState(p, func(r *workflow.Request) {
			r.State, r.DecidedBy, r.DecidedAt = workflow.StateExpired, workflow.SystemActor, decided
		}),
		"revoked": withState(p, func(r *workflow.Request) {
			r.State, r.Approvals, r.DecidedBy, r.DecidedAt = workflow.StateRevoked, approvals, "U0CAROL", decided
			r.CompletedAt, r.RevokedAt, r.DecisionReason = decided, decided.Add(8*time.Hour), "the 8h grant ended"
		}),
		"auto_approved": withState(p, func(r *workflow.Request) {
			r.State, r.AutoApproved, r.DecidedBy, r.DecidedAt = workflow.StateApproved, true, workflow.SystemActor, t0
		}),
		"remove_other": withState(p, func(r *workflow.Request) {
			r.Kind, r.SubjectID, r.Duration, r.ApprovalsRequired = workflow.KindRemove, "U0DAVE", 0, 1
		}),
		"extend_pending": withState(p, func(r *workflow.Request) {
			r.ID, r.Kind, r.GrantID, r.Duration, r.Reason = 9, workflow.KindExtend, 7, 4*time.Hour, "extend #7 by 4h"
		}),
		"extended": withState(p, func(r *workflow.Request) {
			r.ID, r.Kind, r.GrantID, r.Duration, r.Reason = 9, workflow.KindExtend, 7, 4*time.Hour, "extend #7 by 4h"
			r.State, r.Approvals, r.DecidedBy, r.DecidedAt = workflow.StateCompleted, approvals, "U0CAROL", decided
			r.CompletedAt, r.RevokeAt = decided, decided.Add(12*time.Hour)
		}),
		"overdue": withState(p, func(r *workflow.Request) {
			r.State, r.Approvals, r.DecidedBy, r.DecidedAt = workflow.StateCompleted, approvals, "U0CAROL", decided
			r.CompletedAt, r.RevokeAt = decided.Add(time.Minute), decided.Add(time.Minute+8*time.Hour)
			r.RevokeQueued, r.DecisionReason, r.OverdueSince = true, "the grant's time ran out <@U0EVIL>", decided.Add(8*time.Hour+2*time.Minute)
		}),
	}
}

func TestApproverMessageGolden(t *testing.T) {
	for name, r := range states() {
		t.Run(name, func(t *testing.T) {
			m := ApproverMessage(r, ApproverOptions{})
			golden(t, "approver_"+name, m)
			hasButtons := strings.Contains(mustJSON(t, m), ActionApprove)
			if hasButtons != (r.State == workflow.StatePending) {
				t.Errorf("state %s: buttons shown = %v", r.State, hasButtons)
			}
		})
	}
	golden(t, "approver_reminder", ApproverMessage(fixture(), ApproverOptions{Reminder: true}))
}

func TestRequesterMessagesGolden(t *testing.T) {
	golden(t, "requester_pending", RequesterMessage(fixture(), []string{"U0BOB", "U0CAROL"}))
	s := states()
	golden(t, "requester_denied", RequesterMessage(s["denied"], nil))
	events := map[string]workflow.EventType{
		"approved": workflow.EventApproved, "auto_approved": workflow.EventApproved, "denied": workflow.EventDenied,
		"cancelled": workflow.EventCancelled, "expired": workflow.EventExpired, "completed": workflow.EventCompleted,
		"failed": workflow.EventFailed, "revoked": workflow.EventRevoked, "extended": workflow.EventExtended,
	}
	for name, ev := range events {
		m, ok := RequesterUpdate(ev, s[name])
		if !ok {
			t.Fatalf("no requester update for %s", name)
		}
		golden(t, "requester_update_"+name, m)
	}
	if _, ok := RequesterUpdate(workflow.EventReminder, s["pending"]); ok {
		t.Error("requesters are not told about reminders")
	}
	golden(t, "owners_failure", OwnersFailure(s["failed"]))
	golden(t, "drift", Drift(&workflow.Drift{RoleID: roleEng.ID, RoleName: "Eng & Ops",
		Added:   []workflow.Member{{UUID: "u1", Email: "mallory@example.com", Name: "Mallory <M>"}},
		Removed: []workflow.Member{{UUID: "u2", Email: "bob@example.com"}}}))
}

func TestRequestModalGolden(t *testing.T) {
	roles := []workflow.Role{roleEng, {ID: "r-viewer", Name: "Viewer"}}
	durations := []time.Duration{time.Hour, 8 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 0}
	golden(t, "modal_request", RequestModal(RequestModalInput{Kind: workflow.KindAdd, Requester: "U0ALICE", Roles: roles, Durations: durations}))
	golden(t, "modal_request_prefilled", RequestModal(RequestModalInput{Kind: workflow.KindAdd, Requester: "U0ALICE", Roles: roles,
		Role: &roleEng, Durations: durations[:2]}))
	golden(t, "modal_request_external", RequestModal(RequestModalInput{Kind: workflow.KindAdd, Requester: "U0ALICE", External: true,
		Durations: durations, Notice: "There is no role called \"Eng\"; pick one below."}))
	golden(t, "modal_remove_other", RequestModal(RequestModalInput{Kind: workflow.KindRemove, Requester: "U0BOB", Subject: "U0ALICE",
		Roles: roles, Role: &roleEng}))
	golden(t, "modal_deny", DenyModal(fixture()))
}

func TestRequestModalShape(t *testing.T) {
	many := make([]workflow.Role, 150)
	for i := range many {
		many[i] = workflow.Role{ID: "r" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), Name: "Role"}
	}
	m := RequestModal(RequestModalInput{Kind: workflow.KindAdd, Roles: many})
	js := mustJSON(t, m)
	if !strings.Contains(js, `"external_select"`) || strings.Contains(js, `"static_select","placeholder":{"type":"plain_text","text":"Pick a role"`) {
		t.Errorf("more than %d roles should give an external select:\n%s", MaxStaticOptions, js)
	}
	rm := RequestModal(RequestModalInput{Kind: workflow.KindRemove, Roles: many[:3]})
	if strings.Contains(mustJSON(t, rm), BlockDuration) {
		t.Error("the removal modal has no duration")
	}
	if !slack.ValidateUniqueBlockID(m) {
		t.Error("block ids not unique")
	}
	meta, err := ParseRequestMetadata(rm.PrivateMetadata)
	if err != nil || meta.Kind != workflow.KindRemove {
		t.Errorf("metadata %q: %+v %v", rm.PrivateMetadata, meta, err)
	}
}

func TestRoleOptions(t *testing.T) {
	roles := []workflow.Role{{ID: "1", Name: "Data Engineering"}, {ID: "2", Name: "Engineering"}, {ID: "3", Name: "Viewer"}}
	got := RoleOptions(roles, "eng")
	var names []string
	for _, o := range got.Options {
		names = append(names, o.Text.Text)
	}
	if strings.Join(names, ",") != "Engineering,Data Engineering" {
		t.Errorf("eng: %v", names)
	}
	if n := len(RoleOptions(roles, "").Options); n != 3 {
		t.Errorf("empty query: %d options", n)
	}
	if n := len(RoleOptions(roles, "nothing").Options); n != 0 {
		t.Errorf("no match: %d options", n)
	}
	var many []workflow.Role
	for i := 0; i < 250; i++ {
		many = append(many, workflow.Role{ID: strings.Repeat("i", i+1), Name: "Role"})
	}
	if n := len(RoleOptions(many, "ro").Options); n != MaxStaticOptions {
		t.Errorf("many: %d options", n)
	}
	golden(t, "options_eng", got)
}

func TestListsGolden(t *testing.T) {
	s := states()
	mine := []*workflow.Request{s["pending"], s["denied"], s["completed"], s["remove_other"]}
	golden(t, "list", RequestList(mine))
	golden(t, "list_empty", RequestList(nil))
	golden(t, "pending", PendingList([]*workflow.Request{s["pending"], withState(s["remove_other"], func(r *workflow.Request) { r.ID = 8 })}, nil))
	golden(t, "pending_empty", PendingList(nil, nil))
	golden(t, "pending_overdue", PendingList([]*workflow.Request{s["extend_pending"]}, []*workflow.Request{s["overdue"]}))
	golden(t, "list_grants", RequestList([]*workflow.Request{s["extended"], s["overdue"], s["completed"]}))
	golden(t, "expiry_warning", ExpiryWarning(s["completed"], s["completed"].RevokeAt.Add(-time.Hour)))
	golden(t, "revocation_overdue", RevocationOverdue(s["overdue"]))
	golden(t, "roles", RolesList([]workflow.RoleInfo{
		{Role: roleEng, Owners: []string{"U0BOB", "U0CAROL"}, Rules: workflow.Rules{ApprovalsRequired: 2, MaxDuration: 7 * 24 * time.Hour}},
		{Role: workflow.Role{ID: "r-viewer", Name: "Viewer <read only>", Members: 1}, Rules: workflow.Rules{ApprovalsRequired: 1, AutoApprove: true}},
	}))
	golden(t, "owners", OwnersList(roleEng, []string{"U0BOB"}))
	golden(t, "owners_changed", OwnersChanged(roleEng, "U0CAROL", true, []string{"U0BOB", "U0CAROL"}))
	golden(t, "help", Help())
	golden(t, "home", Home(HomeInput{Mine: mine[1:3], Pending: []*workflow.Request{s["pending"]}}))
	golden(t, "home_overdue", Home(HomeInput{Mine: []*workflow.Request{s["overdue"]}, Overdue: []*workflow.Request{s["overdue"]}}))
	golden(t, "home_empty", Home(HomeInput{}))
}

func TestListLimits(t *testing.T) {
	var many []*workflow.Request
	for i := 0; i < 60; i++ {
		r := fixture()
		r.ID = int64(i + 1)
		many = append(many, r)
	}
	for name, blocks := range map[string]int{
		"list":    len(RequestList(many).Blocks),
		"pending": len(PendingList(many, many).Blocks),
	} {
		if blocks > maxMessageBlocks {
			t.Errorf("%s: %d blocks", name, blocks)
		}
	}
	if n := len(Home(HomeInput{Mine: many, Pending: many, Overdue: many}).Blocks.BlockSet); n > maxViewBlocks {
		t.Errorf("home: %d blocks", n)
	}
	var roles []workflow.RoleInfo
	for i := 0; i < 2000; i++ {
		roles = append(roles, workflow.RoleInfo{Role: workflow.Role{ID: "x", Name: strings.Repeat("r", 40)}})
	}
	if n := len(RolesList(roles).Blocks); n > maxMessageBlocks {
		t.Errorf("roles: %d blocks", n)
	}
}

func TestEscape(t *testing.T) {
	if got := Escape("a & <b> <@U1>"); got != "a &amp; &lt;b&gt; &lt;@U1&gt;" {
		t.Error(got)
	}
	js := mustJSON(t, ApproverMessage(fixture(), ApproverOptions{}))
	if strings.Contains(js, "<billing>") {
		t.Error("reason not escaped")
	}
}

func TestDurations(t *testing.T) {
	for _, d := range []time.Duration{time.Hour, 8 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 0, 36 * time.Hour, 90 * time.Minute} {
		got, err := ParseDurationValue(DurationValue(d))
		if err != nil || got != d {
			t.Errorf("%v: round trip gave %v, %v", d, got, err)
		}
	}
	labels := map[time.Duration]string{time.Hour: "1 hour", 8 * time.Hour: "8 hours", 24 * time.Hour: "1 day", 7 * 24 * time.Hour: "7 days", 0: "Permanent"}
	for d, want := range labels {
		if got := DurationLabel(d); got != want {
			t.Errorf("%v: %q", d, got)
		}
	}
	if _, err := ParseDurationValue("-1h"); err == nil {
		t.Error("negative accepted")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
