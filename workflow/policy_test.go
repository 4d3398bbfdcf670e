package workflow

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParsePolicy(t *testing.T) {
	p, err := ParsePolicy("policy.yaml", []byte(`
defaults:
  owners: [U0ADMIN1]          # fallback approvers for roles with none
  approvals_required: 1
  pending_expiry: 72h
  reminder_after: 24h
  max_duration: permanent
roles:
  - role: Engineering         # PostHog role name or id
    owners: [U0LEAD01, U0LEAD02]
    approvals_required: 2
    max_duration: 168h
  - role: Viewer
    auto_approve: true        # still audited, still executed by the bot
  - role: 0190b3e1-8b8a-7000-8000-000000000001
    max_duration: 7d
    reminder_after: never
`))
	if err != nil {
		t.Fatal(err)
	}
	eng := p.RulesFor(Role{ID: "x", Name: "engineering"})
	if eng.ApprovalsRequired != 2 || eng.MaxDuration != 168*time.Hour || len(eng.Owners) != 2 || eng.PendingExpiry != 72*time.Hour {
		t.Errorf("Engineering rules %+v", eng)
	}
	viewer := p.RulesFor(Role{Name: "Viewer"})
	if !viewer.AutoApprove || viewer.ApprovalsRequired != 1 || len(viewer.Owners) != 0 || viewer.MaxDuration != 0 {
		t.Errorf("Viewer rules %+v", viewer)
	}
	byID := p.RulesFor(Role{ID: "0190b3e1-8b8a-7000-8000-000000000001", Name: "Renamed"})
	if byID.MaxDuration != 7*24*time.Hour || byID.ReminderAfter != 0 {
		t.Errorf("rules by id %+v", byID)
	}
	other := p.RulesFor(Role{Name: "Other"})
	if other.Owners != nil || other.ApprovalsRequired != 1 || other.ReminderAfter != 24*time.Hour {
		t.Errorf("default rules %+v", other)
	}
	if p.Hash == "" || p.Source != "policy.yaml" {
		t.Errorf("hash %q source %q", p.Hash, p.Source)
	}
}

func TestParsePolicyErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		line int
		want string
	}{
		{"syntax", "roles: [\n", 1, "]"},
		{"unknown key", "roles:\n  - role: Eng\n    owner: [U0LEAD01]\n", 3, `unknown field "owner"`},
		{"unknown top-level key", "defaults: {}\nrole: []\n", 2, `unknown field "role"`},
		{"zero approvals", "roles:\n  - role: Eng\n    approvals_required: 0\n", 3, "between 1 and 10"},
		{"approvals not a number", "defaults:\n  approvals_required: two\n", 2, "approvals_required must be a whole number"},
		{"bad duration", "roles:\n  - role: Eng\n\n    max_duration: forever\n", 4, `max_duration must be a duration such as 30m, 8h or 7d, or permanent, got "forever"`},
		{"permanent expiry", "defaults:\n  pending_expiry: permanent\n", 2, "pending_expiry"},
		{"negative duration", "defaults:\n  reminder_after: -1h\n", 2, "reminder_after"},
		{"missing role name", "roles:\n  - owners: [U0LEAD01]\n", 2, "needs a `role:`"},
		{"duplicate role", "roles:\n  - role: Eng\n  - role: eng\n", 3, "listed twice"},
		{"owner not a Slack id", "roles:\n  - role: Eng\n    owners: [U0LEAD01, bob]\n", 3, `owner "bob"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParsePolicy("policy.yaml", []byte(c.yaml))
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *PolicyError", err)
			}
			if pe.File != "policy.yaml" || pe.Line != c.line || !strings.Contains(pe.Reason, c.want) {
				t.Fatalf("got %q (line %d), want line %d mentioning %q", err, pe.Line, c.line, c.want)
			}
			if !strings.HasPrefix(err.Error(), "policy.yaml:") {
				t.Fatalf("error %q does not start with the file name", err)
			}
		})
	}
}

func TestLoadPolicyMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := LoadPolicy(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v", err)
	}
	if err := os.WriteFile(path, []byte("defaults:\n  approvals_required: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := LoadPolicy(path); err != nil || p.Defaults.ApprovalsRequired != 3 {
		t.Fatalf("LoadPolicy = %+v, %v", p, err)
	}
}

func TestDurationText(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "permanent", time.Hour: "1h", 8 * time.Hour: "8h",
		24 * time.Hour: "1d", 168 * time.Hour: "7d", 90 * time.Minute: "90m", 1500 * time.Millisecond: "1.5s"} {
		if got := DurationText(d); got != want {
			t.Errorf("DurationText(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestStateMachine(t *testing.T) {
	// The transitions of product.md, "Workflow rules".
	spec := map[[2]State]bool{
		{StatePending, StateApproved}: true, {StatePending, StateDenied}: true,
		{StatePending, StateCancelled}: true, {StatePending, StateExpired}: true,
		{StateApproved, StateExecuting}: true, {StateApproved, StateFailed}: true,
		{StateExecuting, StateCompleted}: true, {StateExecuting, StateFailed}: true,
		{StateCompleted, StateRevoked}: true,
	}
	for _, from := range AllStates {
		for _, to := range AllStates {
			if got := CanMove(from, to); got != spec[[2]State{from, to}] {
				t.Errorf("CanMove(%s, %s) = %v", from, to, got)
			}
		}
	}
}
