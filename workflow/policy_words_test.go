package workflow

import (
	"testing"
	"time"
)

// TestPolicyErrorsInPlainWords: what `accessbot policy check` and `serve`
// print for the mistakes people make, exactly, as file:line:col: reason.
func TestPolicyErrorsInPlainWords(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"roles:\n  - { role: Engineering, approvals_required: two }\n",
			"policy.yaml:2:46: approvals_required must be a whole number"},
		{"roles:\n  - role: Engineering\n    approvals_required: 1.5\n",
			"policy.yaml:3:25: approvals_required must be a whole number"},
		{"defaults:\n  pending_expiry: 0s\n",
			`policy.yaml:2:19: pending_expiry must be positive, got "0s"`},
		{"defaults:\n  pending_expiry: -1h\n",
			`policy.yaml:2:19: pending_expiry must be positive, got "-1h"`},
		{"defaults:\n  max_duration: -1h\n",
			`policy.yaml:2:17: max_duration must be positive (or permanent), got "-1h"`},
		{"defaults:\n  reminder_after: -1h\n",
			`policy.yaml:2:19: reminder_after must be positive (or never), got "-1h"`},
		{"defaults:\n  pending_expiry: soon\n",
			`policy.yaml:2:19: pending_expiry must be a duration such as 30m, 8h or 7d, got "soon"`},
		{"roles:\n  - role: Eng\n    auto_approve: yes please\n",
			"policy.yaml:3:19: auto_approve must be true or false"},
		{"roles:\n  - role: Eng\n    owners: U0ABC\n",
			"policy.yaml:3:13: owners must be a list, like [a, b] or one `- item` per line"},
		{"roles:\n  - role: [Eng]\n",
			"policy.yaml:2:11: role must be a single value, not a list or a mapping"},
		{"defaults: 5\n",
			"policy.yaml:1:11: defaults must be a mapping of settings (key: value lines)"},
		{"roles:\n  role: Eng\n",
			"policy.yaml:2:7: roles must be a list, like [a, b] or one `- item` per line"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			_, err := ParsePolicy("policy.yaml", []byte(c.yaml))
			if err == nil || err.Error() != c.want {
				t.Fatalf("got  %v\nwant %s", err, c.want)
			}
		})
	}
}

// TestReminderZeroMeansNever: "0", "0s" and "never" all switch reminders off.
func TestReminderZeroMeansNever(t *testing.T) {
	for _, v := range []string{"0", "0s", "never"} {
		p, err := ParsePolicy("policy.yaml", []byte("defaults:\n  reminder_after: "+v+"\n"))
		if err != nil || p.Defaults.ReminderAfter != 0 {
			t.Fatalf("%s: %v, %v", v, p, err)
		}
	}
	p, err := ParsePolicy("policy.yaml", []byte("defaults:\n  reminder_after: 2h\n"))
	if err != nil || p.Defaults.ReminderAfter != 2*time.Hour {
		t.Fatalf("%v, %v", p, err)
	}
}
