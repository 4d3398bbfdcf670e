package sandbox

import (
	"context"
	"testing"

	"github.com/accessbot/accessbot/bot/slacktest"
	"github.com/accessbot/accessbot/posthog/posthogtest"
)

// testConfig is a Config over fresh fakes; the bot URL points nowhere, so
// only rendering works with it. The end-to-end tests, with the real bot,
// are in cmd/accessbot (sandbox_test.go, sandbox_browser_test.go).
func testConfig(t *testing.T) Config {
	t.Helper()
	sl, ph := slacktest.NewServer(), posthogtest.NewServer()
	t.Cleanup(sl.Close)
	t.Cleanup(ph.Close)
	return Config{
		Slack: sl, PostHog: ph, BotURL: "http://127.0.0.1:1", SigningSecret: "secret",
		People:  []Person{{ID: "U0ALICE", Name: "Alice Nguyen", Email: "alice@example.com", About: "engineer"}},
		Channel: "C0APPROVALS", ChannelName: "access-approvals",
		Audit: func(context.Context) (AuditView, error) {
			return AuditView{Verdict: "audit log intact: 0 entries verified", OK: true}, nil
		},
	}
}

func TestNewChecksConfig(t *testing.T) {
	good := testConfig(t)
	for name, mutate := range map[string]func(*Config){
		"no slack":  func(c *Config) { c.Slack = nil },
		"no bot":    func(c *Config) { c.BotURL = "" },
		"no secret": func(c *Config) { c.SigningSecret = "" },
		"no people": func(c *Config) { c.People = nil },
		"no audit":  func(c *Config) { c.Audit = nil },
	} {
		c := good
		mutate(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(good); err != nil {
		t.Fatal(err)
	}
}
