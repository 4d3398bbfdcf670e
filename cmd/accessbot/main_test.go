package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// binary is accessbot built once for the tests that run it as a process.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "accessbot-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "accessbot")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("build accessbot: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runCLI runs the command in-process with env and returns exit code and output.
func runCLI(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := run(ctx, &cli{stdout: &out, stderr: &errOut, environ: env}, args)
	return code, out.String(), errOut.String()
}

func TestHelpOnEverySubcommand(t *testing.T) {
	cases := [][]string{{"--help"}, {"serve", "--help"}, {"migrate", "--help"}, {"audit", "--help"},
		{"audit", "export", "--help"}, {"audit", "verify", "--help"},
		{"audit", "keygen", "--help"}, {"audit", "checkpoint", "--help"}, {"demo", "--help"}, {"version", "--help"},
		{"policy", "--help"}, {"policy", "check", "--help"}, {"healthcheck", "--help"}}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(t, nil, args...)
			if code != 0 || !strings.Contains(out, "Usage: accessbot") || errOut != "" {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
			}
		})
	}
}

func TestCLIErrors(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"no command", nil, nil, 2, "Usage"},
		{"unknown command", nil, []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"unknown flag", nil, []string{"migrate", "--nope"}, 2, "flag provided but not defined"},
		{"unknown audit subcommand", nil, []string{"audit", "shred"}, 2, `unknown subcommand "shred"`},
		{"bad export format", nil, []string{"audit", "export", "--format", "xml"}, 1, "csv or jsonl"},
		{"bad since", nil, []string{"audit", "export", "--since", "yesterday"}, 1, "RFC 3339"},
		{"until before since", nil, []string{"audit", "export", "--since", "2026-02-01", "--until", "2026-01-01"}, 1, "must be after"},
		{"bad database url", []string{"DATABASE_URL=mysql://x"}, []string{"migrate"}, 1, "DATABASE_URL"},
		{"bad log level", []string{"ACCESSBOT_LOG_LEVEL=loud"}, []string{"migrate"}, 1, "ACCESSBOT_LOG_LEVEL"},
		{"bad duration", []string{"ACCESSBOT_SHUTDOWN_TIMEOUT=soon"}, []string{"migrate"}, 1, "ACCESSBOT_SHUTDOWN_TIMEOUT"},
		{"unmigrated database", []string{"DATABASE_URL=sqlite:" + emptyFile(t)}, []string{"audit", "verify"}, 1, "accessbot migrate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, c.env, c.args...)
			if code != c.code || !strings.Contains(out+errOut, c.want) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s\nwant %q", code, c.code, out, errOut, c.want)
			}
		})
	}
}

// emptyFile is an existing, empty (so unmigrated) SQLite file.
func emptyFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServeNamesMissingSettings(t *testing.T) {
	full := map[string]string{
		"SLACK_BOT_TOKEN":          "xoxb-1",
		"SLACK_SIGNING_SECRET":     "s",
		"POSTHOG_PERSONAL_API_KEY": "phx_1",
		"POSTHOG_ORGANIZATION_ID":  "@current",
	}
	cases := []struct {
		drop  string
		set   string
		want  string
		field string
	}{
		{drop: "SLACK_BOT_TOKEN", want: "SLACK_BOT_TOKEN is required"},
		{drop: "SLACK_SIGNING_SECRET", want: "SLACK_SIGNING_SECRET is required"},
		{drop: "POSTHOG_PERSONAL_API_KEY", want: "POSTHOG_PERSONAL_API_KEY is required"},
		{drop: "POSTHOG_ORGANIZATION_ID", want: "POSTHOG_ORGANIZATION_ID is required"},
		{set: "SLACK_APP_TOKEN=xoxb-wrong", want: "SLACK_APP_TOKEN must be an app-level token"},
		{set: "POSTHOG_HOST=ftp://x", want: "POSTHOG_HOST must be an http(s) URL"},
		{set: "ACCESSBOT_WORKERS=0", want: "ACCESSBOT_WORKERS must be between 1 and 100"},
		{set: "ACCESSBOT_WORKERS=many", want: "ACCESSBOT_WORKERS"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			var env []string
			for k, v := range full {
				if k != c.drop {
					env = append(env, k+"="+v)
				}
			}
			if c.set != "" {
				env = append(env, c.set)
			}
			code, out, errOut := runCLI(t, env, "serve")
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if code == 0 || len(lines) != 1 || !strings.Contains(lines[0], c.want) || out != "" {
				t.Fatalf("exit %d, stderr %q, want one line with %q", code, errOut, c.want)
			}
			for _, secret := range []string{"xoxb-1", "phx_1"} {
				if strings.Contains(errOut, secret) {
					t.Fatalf("a secret leaked: %s", errOut)
				}
			}
		})
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "accessbot ") || !strings.Contains(out, runtime.Version()) {
		t.Fatalf("exit %d: %q", code, out)
	}
}

// TestDemo runs the demo exactly as the README's first command does.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes a few seconds")
	}
	code, out, errOut := runCLI(t, nil, "demo")
	if code != 0 {
		t.Fatalf("demo exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"refused", "PostHog now lists alice", "denied", "revokes it", "audit log intact", "✓ every step"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
}
