package main

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/posthog/posthogtest"
)

// Every way PostHog can refuse what the bot needs stops `serve` at start with
// one line saying what to fix, and nothing is written to PostHog.
func TestServePreflightFailuresNameWhatToFix(t *testing.T) {
	scopes := func(drop string) []string {
		var out []string
		for _, s := range posthogtest.DefaultScopes {
			if s != drop {
				out = append(out, s)
			}
		}
		return out
	}
	cases := []struct {
		name  string
		setup func(w *world) []string // extra environment
		say   string
	}{
		{"invalid key", func(w *world) []string { return []string{"POSTHOG_PERSONAL_API_KEY=phx_not_a_real_key"} },
			"POSTHOG_PERSONAL_API_KEY was refused by PostHog"},
		{"member, not admin", func(w *world) []string {
			return []string{"POSTHOG_PERSONAL_API_KEY=" + w.ph.AddAPIKey(posthog.LevelMember, posthogtest.DefaultScopes...)}
		}, "not an admin of the PostHog organization"},
		{"no organization:write", func(w *world) []string {
			return []string{"POSTHOG_PERSONAL_API_KEY=" + w.ph.AddAPIKey(posthog.LevelAdmin, scopes(posthogtest.ScopeOrganizationWrite)...)}
		}, "lacks the scope organization:write"},
		{"no organization_member:read", func(w *world) []string {
			return []string{"POSTHOG_PERSONAL_API_KEY=" + w.ph.AddAPIKey(posthog.LevelAdmin, scopes(posthogtest.ScopeOrganizationMemberRead)...)}
		}, "lacks the scope organization_member:read"},
		{"no organization:read", func(w *world) []string {
			return []string{"POSTHOG_PERSONAL_API_KEY=" + w.ph.AddAPIKey(posthog.LevelAdmin, posthogtest.ScopeOrganizationMemberRead)}
		}, "lacks the scope organization:read"},
		{"project-scoped key", func(w *world) []string {
			w.ph.SetKeyScopedProjects(w.ph.APIKey(), 1)
			return nil
		}, "scoped to projects"},
		{"key for other organizations", func(w *world) []string {
			w.ph.SetKeyScopedOrganizations(w.ph.APIKey(), w.ph.AddOrganization("Elsewhere"))
			return nil
		}, "limited to other organizations"},
		{"plan without role-based access", func(w *world) []string {
			w.ph.SetRoleBasedAccess(false)
			return nil
		}, "has no role-based access on its plan"},
		{"unknown organization", func(w *world) []string {
			return []string{"POSTHOG_ORGANIZATION_ID=0190b3e1-8b8a-7000-8000-00000000dead"}
		}, "POSTHOG_ORGANIZATION_ID: PostHog has no such organization"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			env := append(w.env(freePort(t)), c.setup(w)...)
			code, _, errOut := runCLI(t, env, "serve")
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			last := lines[len(lines)-1]
			if code == 0 || !strings.Contains(last, c.say) {
				t.Fatalf("exit %d, last line %q, want one naming %q\n%s", code, last, c.say, errOut)
			}
			if strings.Contains(errOut, w.ph.APIKey()) {
				t.Fatal("the key was printed")
			}
			for _, call := range w.ph.Calls() {
				if call.Method != http.MethodGet && call.Status < 300 {
					t.Fatalf("preflight changed PostHog: %s %s → %d", call.Method, call.Path, call.Status)
				}
			}
		})
	}
}

// @current is resolved once and pinned: switching the key owner's current
// organization later changes nothing for the bot.
func TestServePinsCurrentOrganization(t *testing.T) {
	w := newWorld(t)
	p := w.start("POSTHOG_ORGANIZATION_ID=@current")
	other := w.ph.AddOrganization("Other")
	w.ph.SetCurrentOrganization(other)
	w.ph.ResetCalls()
	w.approve(p, w.requestEngineering(p))
	waitUntil(t, "the PostHog membership", 15*time.Second, func() bool {
		return w.ph.HasMember(w.roles["Engineering"], w.uuids[e2eAlice])
	})
	for _, c := range w.ph.Calls() {
		if strings.Contains(c.Path, posthog.CurrentOrganization) || strings.Contains(c.Path, other) {
			t.Fatalf("a call after start used %s", c.Path)
		}
	}
	if !strings.Contains(p.logs(), w.ph.OrganizationID()) {
		t.Fatal("the pinned organization id is not logged")
	}
}

// TestServeWarnsOfADefaultRole: PostHog puts every new member in the
// organization's default role, bypassing approvals; serve says so at start.
func TestServeWarnsOfADefaultRole(t *testing.T) {
	w := newWorld(t)
	w.ph.SetDefaultRole(w.roles["Engineering"])
	p := w.start()
	const warning = "has a default role: every new member joins it without a request or approval"
	waitUntil(t, "the default-role warning", 15*time.Second, func() bool { return strings.Contains(p.logs(), warning) })
	for _, line := range strings.Split(p.logs(), "\n") {
		if strings.Contains(line, warning) && !strings.Contains(line, `"role_id":"`+w.roles["Engineering"]+`"`) {
			t.Fatalf("the warning does not name the role: %s", line)
		}
	}
}

// PostHog unreachable at start: the process serves (healthz), is not ready,
// executes nothing, and becomes ready once PostHog answers.
func TestServeStartsNotReadyWhilePostHogIsUnreachable(t *testing.T) {
	w := newWorld(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there yet
	p := w.start("POSTHOG_HOST=http://" + addr)
	if code, _ := p.get("/healthz", ""); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	code, body := p.get("/readyz", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "PostHog preflight") {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	// PostHog comes up behind that address.
	target, _ := url.Parse(w.ph.URL())
	proxyLn, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	srv := &http.Server{Handler: httputil.NewSingleHostReverseProxy(target)}
	go func() { _ = srv.Serve(proxyLn) }()
	t.Cleanup(func() { srv.Close() })
	waitUntil(t, "readiness once PostHog answers", 30*time.Second, func() bool {
		code, _ := p.get("/readyz", "")
		return code == 200
	})
}
