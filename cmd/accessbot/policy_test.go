package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/posthog/posthogtest"
)

const examplePolicy = "../../policy.example.yaml"

// TestPolicyExamplePasses: the example shipped in the repository is valid,
// with no secret and no PostHog.
func TestPolicyExamplePasses(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "policy", "check", examplePolicy)
	if code != 0 || errOut != "" || !strings.HasPrefix(out, examplePolicy+": valid, 4 roles (not looked up in PostHog") {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	// ACCESSBOT_POLICY_FILE is the default FILE.
	code, out, _ = runCLI(t, []string{"ACCESSBOT_POLICY_FILE=" + examplePolicy}, "policy", "check")
	if code != 0 || !strings.Contains(out, "valid, 4 roles") {
		t.Fatalf("exit %d: %q", code, out)
	}
}

func TestPolicyCheckErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	two := write("two.yaml", "roles:\n  - role: Engineering\n    approvals_required: two\n")
	zero := write("zero.yaml", "defaults:\n  pending_expiry: 0s\n")
	cases := []struct {
		name   string
		env    []string
		args   []string
		code   int
		stderr string
	}{
		{"not a whole number", nil, []string{two}, 1, two + ":3:25: approvals_required must be a whole number\n"},
		{"zero expiry", nil, []string{zero}, 1, zero + `:2:19: pending_expiry must be positive, got "0s"` + "\n"},
		{"missing file", nil, []string{filepath.Join(dir, "nope.yaml")}, 1, filepath.Join(dir, "nope.yaml") + ": cannot read policy file"},
		{"no file at all", nil, nil, 1, "accessbot policy check: no policy file: give FILE or set ACCESSBOT_POLICY_FILE\n"},
		{"key without organization", []string{"POSTHOG_PERSONAL_API_KEY=phx_secret"}, []string{examplePolicy}, 1,
			"accessbot policy check: POSTHOG_ORGANIZATION_ID is required to look the roles up in PostHog"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, c.env, append([]string{"policy", "check"}, c.args...)...)
			if code != c.code || out != "" || !strings.HasPrefix(errOut, c.stderr) || strings.Count(errOut, "\n") != 1 {
				t.Fatalf("exit %d\nstdout %q\nstderr %q\nwant   %q", code, out, errOut, c.stderr)
			}
			if strings.Contains(errOut, "phx_secret") {
				t.Fatal("the key leaked")
			}
		})
	}
}

// TestPolicyCheckAgainstPostHog: with PostHog variables set every role is
// looked up, and each missing one is named with its line.
func TestPolicyCheckAgainstPostHog(t *testing.T) {
	ph := posthogtest.NewServer()
	t.Cleanup(ph.Close)
	env := []string{"POSTHOG_HOST=" + ph.URL(), "POSTHOG_PERSONAL_API_KEY=" + ph.APIKey(),
		"POSTHOG_ORGANIZATION_ID=" + ph.OrganizationID()}
	ph.AddRole("engineering") // names match ignoring case
	code, out, errOut := runCLI(t, env, "policy", "check", examplePolicy)
	want := examplePolicy + ":21:11: PostHog has no role \"Viewer\" (it has \"engineering\"); fix " + examplePolicy + ":21\n" +
		examplePolicy + ":25:11: PostHog has no role \"Billing\" (it has \"engineering\"); fix " + examplePolicy + ":25\n" +
		examplePolicy + ":34:11: PostHog has no role \"Incident Response\" (it has \"engineering\"); fix " + examplePolicy + ":34\n"
	if code != 1 || out != "" || errOut != want {
		t.Fatalf("exit %d\nstdout %q\nstderr %q\nwant   %q", code, out, errOut, want)
	}

	ph.AddRole("Viewer")
	ph.AddRole("Incident Response")
	billing := ph.AddRole("Finance") // the policy may name a role by its id
	dir := t.TempDir()
	data, err := os.ReadFile(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	byID := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(byID, []byte(strings.Replace(string(data), "role: Billing", "role: "+billing.ID, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, env, "policy", "check", byID)
	if code != 0 || errOut != "" || out != byID+": valid, 4 roles, every one found in PostHog\n" {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}

	bad := append(env[:len(env):len(env)], "POSTHOG_PERSONAL_API_KEY=phx_wrong")
	code, _, errOut = runCLI(t, bad, "policy", "check", byID)
	if code != 1 || !strings.Contains(errOut, "POSTHOG_PERSONAL_API_KEY was refused by PostHog") || strings.Contains(errOut, "phx_wrong") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}
