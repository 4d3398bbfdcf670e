package main

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestConfigValidation: every address, duration and count is checked when the
// configuration is read, and a bad one is named in one line — before anything
// starts, so nothing reaches a panic later.
func TestConfigValidation(t *testing.T) {
	cases := []struct {
		set  string
		want string // "" = accepted
	}{
		{"ACCESSBOT_SCHEDULER_INTERVAL=0s", "ACCESSBOT_SCHEDULER_INTERVAL must be between 100ms and 1h, got 0s (the scheduler ends grants"},
		{"ACCESSBOT_SCHEDULER_INTERVAL=0", "ACCESSBOT_SCHEDULER_INTERVAL must be between"},
		{"ACCESSBOT_SCHEDULER_INTERVAL=-5s", "ACCESSBOT_SCHEDULER_INTERVAL must be between 100ms and 1h, got -5s"},
		{"ACCESSBOT_SCHEDULER_INTERVAL=2h", "ACCESSBOT_SCHEDULER_INTERVAL must be between"},
		{"ACCESSBOT_SCHEDULER_INTERVAL=30", `ACCESSBOT_SCHEDULER_INTERVAL "30" is not a duration such as 30s, 5m or 1h`},
		{"ACCESSBOT_SCHEDULER_INTERVAL=10s", ""},
		{"ACCESSBOT_RECONCILE_INTERVAL=0", ""},
		{"ACCESSBOT_RECONCILE_INTERVAL=0s", ""},
		{"ACCESSBOT_RECONCILE_INTERVAL=-1m", "ACCESSBOT_RECONCILE_INTERVAL must be 0 (never) or at least 1s, got -1m0s"},
		{"ACCESSBOT_RECONCILE_INTERVAL=1ms", "ACCESSBOT_RECONCILE_INTERVAL must be 0 (never) or at least 1s"},
		{"ACCESSBOT_RECONCILE_INTERVAL=1h", ""},
		{"ACCESSBOT_SHUTDOWN_TIMEOUT=0s", "ACCESSBOT_SHUTDOWN_TIMEOUT must be between 1s and 10m, got 0s"},
		{"ACCESSBOT_SHUTDOWN_TIMEOUT=-1s", "ACCESSBOT_SHUTDOWN_TIMEOUT must be between"},
		{"ACCESSBOT_SHUTDOWN_TIMEOUT=1h", "ACCESSBOT_SHUTDOWN_TIMEOUT must be between"},
		{"ACCESSBOT_SHUTDOWN_TIMEOUT=soon", `ACCESSBOT_SHUTDOWN_TIMEOUT "soon" is not a duration`},
		{"ACCESSBOT_WORKERS=0", "ACCESSBOT_WORKERS must be between 1 and 100, got 0"},
		{"ACCESSBOT_WORKERS=-3", "ACCESSBOT_WORKERS must be between 1 and 100, got -3"},
		{"ACCESSBOT_WORKERS=1000", "ACCESSBOT_WORKERS must be between 1 and 100"},
		{"ACCESSBOT_WORKERS=four", `ACCESSBOT_WORKERS "four" is not a whole number`},
		{"ACCESSBOT_WORKERS=1", ""},
		{"POSTHOG_REQUESTS_PER_MINUTE=0", "POSTHOG_REQUESTS_PER_MINUTE must be between 1 and 480"},
		{"POSTHOG_REQUESTS_PER_MINUTE=500", "POSTHOG_REQUESTS_PER_MINUTE must be between 1 and 480"},
		{"POSTHOG_REQUESTS_PER_HOUR=4801", "POSTHOG_REQUESTS_PER_HOUR must be between 1 and 4800"},
		{"POSTHOG_REQUESTS_PER_MINUTE=fast", `POSTHOG_REQUESTS_PER_MINUTE "fast" is not`},
		{"POSTHOG_REQUESTS_PER_MINUTE=120", ""},
		{"ACCESSBOT_LISTEN=8080", `ACCESSBOT_LISTEN must be an address such as :8080 or 127.0.0.1:8080, got "8080"`},
		{"ACCESSBOT_LISTEN=:http-alt", `ACCESSBOT_LISTEN: port "http-alt" is not a number`},
		{"ACCESSBOT_LISTEN=:99999", `ACCESSBOT_LISTEN: port "99999" is not a number from 0 to 65535`},
		{"ACCESSBOT_LISTEN=local host:80", `ACCESSBOT_LISTEN: "local host" is not an IP address or host name`},
		{"ACCESSBOT_LISTEN=[::1]:8080", ""},
		{"ACCESSBOT_LISTEN=localhost:8080", ""},
		{"POSTHOG_HOST=us.posthog.com", `POSTHOG_HOST must be an http(s) URL, got "us.posthog.com"`},
		{"SLACK_API_URL=ftp://slack", "SLACK_API_URL must be an http(s) URL"},
	}
	for _, c := range cases {
		t.Run(c.set, func(t *testing.T) {
			_, err := loadConfig([]string{c.set})
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && err == nil:
				t.Fatalf("accepted, want %q", c.want)
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Fatalf("got %q\nwant %q", err, c.want)
			}
		})
	}
}

func TestConfigDefaultsAreValid(t *testing.T) {
	cfg, err := loadConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SchedulerInterval != 30*time.Second || cfg.ReconcileInterval != 15*time.Minute || cfg.ShutdownTimeout != 25*time.Second {
		t.Fatalf("defaults changed: %+v", cfg)
	}
}

// TestServeStopsOnZeroSchedulerInterval is the case: the process
// used to log "accessbot serving" and then panic in time.NewTicker.
func TestServeStopsOnZeroSchedulerInterval(t *testing.T) {
	env := []string{"SLACK_BOT_TOKEN=xoxb-1", "SLACK_SIGNING_SECRET=s", "POSTHOG_PERSONAL_API_KEY=phx_1",
		"POSTHOG_ORGANIZATION_ID=@current", "ACCESSBOT_SCHEDULER_INTERVAL=0s"}
	code, out, errOut := runCLI(t, env, "serve")
	want := "accessbot serve: ACCESSBOT_SCHEDULER_INTERVAL must be between 100ms and 1h, got 0s"
	if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, want) {
		t.Fatalf("exit %d\nstdout %q\nstderr %q\nwant one line starting %q", code, out, errOut, want)
	}
}

// TestVersionFromLdflags: a release build (make build sets main.version)
// prints its version and the Go toolchain, as README documents.
func TestVersionFromLdflags(t *testing.T) {
	defer func(v string) { version = v }(version)
	version = "v1.2.0"
	code, out, _ := runCLI(t, nil, "version")
	if want := "accessbot v1.2.0 " + runtime.Version() + "\n"; code != 0 || out != want {
		t.Fatalf("exit %d: %q, want %q", code, out, want)
	}
}
