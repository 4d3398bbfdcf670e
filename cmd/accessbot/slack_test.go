package main

import (
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/accessbot/accessbot/bot"
)

// TestServeChecksTheSlackToken: a token Slack refuses stops serve in one
// line naming SLACK_BOT_TOKEN (never the token); missing scopes are named.
func TestServeChecksTheSlackToken(t *testing.T) {
	w := newWorld(t)
	cmd := exec.Command(binary, "serve")
	cmd.Env = append(w.env(freePort(t)), "SLACK_BOT_TOKEN=notatoken")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "SLACK_BOT_TOKEN was refused by Slack (auth.test: invalid_auth)") || strings.Contains(string(out), "notatoken") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
	w.slack.SetScopes([]string{"commands", "chat:write", "im:write", "users:read"})
	cmd = exec.Command(binary, "serve")
	cmd.Env = w.env(freePort(t))
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "SLACK_BOT_TOKEN lacks the scopes users:read.email, files:write") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}

// TestReadinessFollowsTheSocket: in Socket Mode, /readyz and
// accessbot_slack_connected say whether the socket is up; a refused app
// token does not stop serve, whose workers keep going.
func TestReadinessFollowsTheSocket(t *testing.T) {
	w := newWorld(t)
	w.slack.RefuseToken("xapp-1-e2e", "invalid_auth")
	p := w.start("SLACK_APP_TOKEN=xapp-1-e2e")
	if code, body := p.get("/readyz", ""); code != http.StatusServiceUnavailable || !strings.Contains(body, "socket mode is not connected") {
		t.Fatalf("readyz while refused: %d %s", code, body)
	}
	if _, body := p.get("/metrics", ""); !strings.Contains(body, "accessbot_slack_connected 0") {
		t.Errorf("metric while refused")
	}
	w.slack.RefuseToken("xapp-1-e2e", "")
	waitUntil(t, "ready", 30*time.Second, func() bool {
		code, _ := p.get("/readyz", "")
		return code == http.StatusOK
	})
	if _, body := p.get("/metrics", ""); !strings.Contains(body, "accessbot_slack_connected 1") {
		t.Errorf("metric while connected")
	}
	if n := strings.Count(p.logs(), "could not connect"); n != 1 {
		t.Errorf("the refusal was logged %d times", n)
	}
	p.stop()
}

// TestRequiredScopesMatchTheManifest keeps bot.RequiredScopes and
// manifest.yaml in step.
func TestRequiredScopesMatchTheManifest(t *testing.T) {
	raw, err := os.ReadFile("../../manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		OAuth struct {
			Scopes struct {
				Bot []string `yaml:"bot"`
			} `yaml:"scopes"`
		} `yaml:"oauth_config"`
	}
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.OAuth.Scopes.Bot, bot.RequiredScopes) {
		t.Errorf("manifest %v, code %v", m.OAuth.Scopes.Bot, bot.RequiredScopes)
	}
}
